"""Several ``pikdav serve`` processes on one Redis, and a real HAProxy in round robin in front
of them, as a household or a team runs them (see the README's "Several instances")."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.command import _HASH as DAV_HASH
from tests.support.command import DAV_PASSWORD, DAV_USER, Running, start
from tests.support.waits import wait_for_port
from tests.support.web import free_port

PIKPAK_USER, PIKPAK_PASSWORD = "alice@example.com", "correct horse"


def instance_config(
    path: Path,
    emulator,
    redis_url: str | None,
    *,
    password: str = PIKPAK_PASSWORD,
    server: dict[str, Any] | None = None,
    **mount: Any,
) -> Path:
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "threads": 64, **(server or {})},
        "state_dir": str(path / "state"),
        "accounts": {
            "main": {
                "username": PIKPAK_USER,
                "password": password,
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
            }
        },
        "mounts": [{"name": "pikpak", "download": "proxy", **mount}],
        "users": {DAV_USER: {"password_hash": DAV_HASH}},
    }
    if redis_url is not None:
        config["redis"] = redis_url
    path.mkdir(parents=True, exist_ok=True)
    file = path / "config.yaml"
    file.write_text(yaml.safe_dump(config))
    return file


@contextmanager
def instances(
    tmp_path: Path, emulator, redis_url: str | None, count: int = 3, **options: Any
) -> Iterator[list[Running]]:
    """``count`` gateways, each its own process and state_dir, sharing ``redis_url``."""
    configs = [
        instance_config(tmp_path / f"instance{i}", emulator, redis_url, **options)
        for i in range(count)
    ]
    with ThreadPoolExecutor(count) as pool:
        started = list(
            pool.map(
                lambda c: start("serve", "-c", str(c), log_path=c.parent / "pikdav.log"), configs
            )
        )
    try:
        yield started
    finally:
        for running in started:
            if running.proc.poll() is None:
                running.stop()


HAPROXY_CONFIG = """\
global
    maxconn 1024
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    # keep-alive on both sides; every request is still balanced on its own (no
    # prefer-last-server), and idle connections to the instances are reused
    http-reuse always
{options}frontend dav
    bind 127.0.0.1:{port}
    default_backend pikdav
backend pikdav
    balance roundrobin
{servers}
"""


@contextmanager
def haproxy(workdir: Path, backends: list[str], *, forwardfor: bool = False) -> Iterator[str]:
    """A real HAProxy on a free loopback port, round robin over ``backends`` (base URLs);
    ``forwardfor``: it adds the client's address to X-Forwarded-For, as a reverse proxy does."""
    binary = shutil.which("haproxy")
    assert binary, "haproxy is missing: install Debian's haproxy (.ci/run does)"
    port = free_port()
    servers = "\n".join(
        f"    server i{i} {url.split('://')[1].strip('/')}" for i, url in enumerate(backends)
    )
    config = workdir / "haproxy.cfg"
    options = "    option forwardfor\n" if forwardfor else ""
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers, options=options))
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (workdir / "haproxy.log").open("w")
    proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    try:
        wait_for_port(port, "haproxy", proc, died=(workdir / "haproxy.log").read_text)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def requests_served(running: Running) -> int:
    """How many requests an instance has logged (one line each)."""
    return sum(1 for line in running.log().splitlines() if "pikdav.requests:" in line)


__all__ = ["DAV_PASSWORD", "DAV_USER", "haproxy", "instances", "requests_served"]
