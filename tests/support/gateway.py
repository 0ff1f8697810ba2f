"""A pikdav gateway on loopback in front of an emulator, for tests and benchmarks."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pikdav.assembly import build_app, build_mounts, cluster_of, make_server
from pikdav.config import Config, parse_config
from pikdav.dav.auth import hash_password
from pikdav.emulator import Emulator

DAV_USER, DAV_PASSWORD = "alice", "wonderland"
PIKPAK_USER, PIKPAK_PASSWORD = "alice@example.com", "correct horse"
_HASH = hash_password(DAV_PASSWORD)


@dataclass
class Gateway:
    url: str
    emulator: Emulator
    config: Config
    server: Any
    thread: threading.Thread
    mounts: list

    @property
    def auth(self) -> tuple[str, str]:
        return DAV_USER, DAV_PASSWORD

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)
        cluster = cluster_of(self.mounts)
        if cluster is not None:
            cluster.close()


def start_gateway(emulator: Emulator, state_dir: Path, **mount: Any) -> Gateway:
    server_opts = mount.pop("server", {})
    # Keys of the account to add, or to leave out (given as None).
    account_opts = mount.pop("account_options", {})
    redis = mount.pop("redis", None)  # the Redis several instances share
    users = mount.pop("users", None) or {DAV_USER: {"password_hash": _HASH, "mounts": ["*"]}}
    top = {key: mount.pop(key) for key in ("notify", "cache") if key in mount}
    data = {
        "server": {"host": "127.0.0.1", "port": 0, "threads": 32, **server_opts},
        "state_dir": str(state_dir),
        "accounts": {
            "main": {
                "username": PIKPAK_USER,
                "password": PIKPAK_PASSWORD,
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
                **account_opts,
            }
        },
        "mounts": [{"name": "pikpak", "account": "main", **mount}],
        "users": users,
        **top,
    }
    account = data["accounts"]["main"]
    data["accounts"]["main"] = {k: v for k, v in account.items() if v is not None}
    if redis is not None:
        data["redis"] = redis
    config = parse_config(data, "test-config.yaml")
    mounts = build_mounts(config)
    server = make_server(config, build_app(config, mounts))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    return Gateway(f"http://{host}:{port}", emulator, config, server, thread, mounts)


def dav(gw: Gateway, method: str, path: str, **kw: Any) -> requests.Response:
    """One DAV request to ``gw`` as its user (another ``auth=`` may be given), within 60 s."""
    kw.setdefault("auth", gw.auth)
    kw.setdefault("timeout", 60)
    return requests.request(method, gw.url + path, **kw)
