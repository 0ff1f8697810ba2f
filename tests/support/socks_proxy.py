"""A real SOCKS5 server (Debian's ``microsocks``) on a free loopback port, for a test.

``bind`` is the address its outgoing connections leave from: the emulator behind it then
tells a call that came through the proxy (from that address) from one that came directly.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .web import free_port


@dataclass(frozen=True)
class SocksProxy:
    host: str
    port: int
    user: str | None
    password: str | None

    def url(self, scheme: str = "socks5h") -> str:
        login = f"{self.user}:{self.password}@" if self.user else ""
        return f"{scheme}://{login}{self.host}:{self.port}"


@contextmanager
def socks_proxy(
    *, bind: str, user: str | None = None, password: str | None = None
) -> Iterator[SocksProxy]:
    binary = shutil.which("microsocks")
    assert binary, "microsocks is missing: install Debian's microsocks (.ci/run does)"
    port = free_port()
    cmd = [binary, "-i", "127.0.0.1", "-p", str(port), "-b", bind]
    if user:
        cmd += ["-u", user, "-P", password or ""]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"microsocks exited with {proc.returncode}"
                assert time.monotonic() < deadline, "microsocks did not start listening"
                time.sleep(0.05)
        yield SocksProxy("127.0.0.1", port, user, password)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
