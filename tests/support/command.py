"""The real ``pikdav`` command as a user runs it: a config on the emulator, a process that
prints its address, a stop by signal, and raw HTTP connections to hold open meanwhile."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .gateway import _HASH, DAV_PASSWORD, DAV_USER

PIKDAV = [sys.executable, "-m", "pikdav.cli"]


def write_config(
    tmp_path: Path,
    emulator,
    password: str | None = "correct horse",
    *,
    name: str = "config.yaml",
    mount: dict | None = None,
    **server,
) -> str:
    """A config file in ``tmp_path`` (its path): alice's account on ``emulator`` (or at a base
    URL), one mount ``pikpak`` (proxied, and the keys of ``mount``), the DAV user alice, and
    the ``server`` keys given; ``password=None`` leaves the account's password out."""
    base = emulator if isinstance(emulator, str) else emulator.base_url
    config = {
        "server": {"host": "127.0.0.1", "port": 0, **server},
        "state_dir": str(tmp_path / "state"),
        "accounts": {
            "main": {
                "username": "alice@example.com",
                "password": password,
                "user_api": base,
                "drive_api": base,
            }
        },
        "mounts": [{"name": "pikpak", "download": "proxy", **(mount or {})}],
        "users": {DAV_USER: {"password_hash": _HASH}},
    }
    if password is None:
        del config["accounts"]["main"]["password"]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


@dataclass
class Running:
    """A started ``pikdav`` process; its log (stderr) goes to a file, so it never blocks."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    output: str  # what it printed before its address

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
        """Send `sig`; the exit code and the seconds it took to exit."""
        began = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start(
    *args: str,
    log_path: Path,
    timeout: float = 60,
    command: list[str] = PIKDAV,
    cwd: Path | None = None,
) -> Running:
    """Run ``pikdav ARGS`` and wait until it prints the http(s):// address it serves on
    (``command``: another ``pikdav``, an installed one, say)."""
    proc = subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
    )
    printed = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        printed.append(line)
        found = re.search(r"https?://[^\s/]+", line)
        if found:
            return Running(proc, found.group() + "/", log_path, "".join(printed))
    proc.kill()
    proc.wait()
    raise AssertionError(f"pikdav {' '.join(args)} printed no address:\n{''.join(printed)}")


def check(tmp_path: Path, config: dict) -> subprocess.CompletedProcess[str]:
    """``pikdav check`` of ``config`` (written to ``tmp_path``), with no proxy from the
    environment: what the config says is all it goes by."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        [*PIKDAV, "check", "-c", str(path)], capture_output=True, text=True, timeout=60, env=env
    )


def basic(user: str = DAV_USER, password: str = DAV_PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_request(
    url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    source: str | None = None,
    rcvbuf: int | None = None,
    timeout: float = 30,
) -> tuple[socket.socket, bytes]:
    """Send one request on a new connection; return the socket and the bytes up to the end of
    the answer's head (the body is left unread, for the caller to read or to hold)."""
    parts = urlsplit(url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source is not None:
        sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect((parts.hostname, parts.port))
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            break
        head += data
    return sock, head


def read_to_end(sock: socket.socket, limit: float = 30) -> int:
    """Read until the server closes the connection; the number of bytes read."""
    total = 0
    sock.settimeout(limit)
    while data := sock.recv(1 << 20):
        total += len(data)
    return total


def content_length(head: bytes) -> int:
    found = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert found, head
    return int(found.group(1))


def end_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """Terminate ``proc`` (if it still runs), and kill it after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
