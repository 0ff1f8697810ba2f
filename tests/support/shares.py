"""Shares in the emulator and gateways with share mounts, for tests and benchmarks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pikdav.assembly import build_app, build_mounts, make_server
from pikdav.config import parse_config
from pikdav.emulator import Emulator
from tests.support.gateway import _HASH, DAV_USER, PIKPAK_PASSWORD, PIKPAK_USER, Gateway
from tests.support.pikpak_raw import control


def add_file(emulator: Emulator, path: str, size: int = 0, *, seed: int = 1, **extra) -> dict:
    """A file in alice's drive (synthetic bytes of ``size``, or ``content``)."""
    body = {"username": PIKPAK_USER, "path": path, "size": size, "seed": seed, **extra}
    return control(emulator.base_url, "files", body)


def make_share(emulator: Emulator, *paths: str, pass_code: str = "") -> dict:
    """alice shares ``paths``: ``{"share_id", "share_url", "pass_code"}``."""
    body = {"username": PIKPAK_USER, "paths": list(paths), "pass_code": pass_code}
    return control(emulator.base_url, "shares", body)


def set_share_status(emulator: Emulator, share_id: str, status: str) -> None:
    control(emulator.base_url, "shares", {"share_id": share_id, "status": status})


def share_mount(emulator: Emulator, name: str, share: str, **keys: Any) -> dict:
    """A share mount's settings; connection settings written on the mount."""
    return {
        "name": name,
        "share": share,
        "user_api": emulator.base_url,
        "drive_api": emulator.base_url,
        **keys,
    }


def account(emulator: Emulator) -> dict:
    return {
        "username": PIKPAK_USER,
        "password": PIKPAK_PASSWORD,
        "user_api": emulator.base_url,
        "drive_api": emulator.base_url,
    }


def start_share_gateway(
    emulator: Emulator,
    state_dir: Path,
    mounts: list[dict],
    *,
    accounts: dict | None = None,
    server: dict | None = None,
    admin: bool = False,
) -> Gateway:
    """A gateway with these ``mounts`` (and ``accounts``: none unless given); ``admin``:
    its user may open the status page."""
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "threads": 16, **(server or {})},
        "state_dir": str(state_dir),
        "mounts": mounts,
        "users": {DAV_USER: {"password_hash": _HASH, "mounts": ["*"], "admin": admin}},
    }
    if accounts:
        data["accounts"] = accounts
    config = parse_config(data, "test-config.yaml", base_dir=state_dir)
    built = build_mounts(config)
    http = make_server(config, build_app(config, built))
    http.prepare()
    thread = threading.Thread(target=http.serve, daemon=True)
    thread.start()
    host, port = http.bind_addr[:2]
    return Gateway(f"http://{host}:{port}", emulator, config, http, thread, built)
