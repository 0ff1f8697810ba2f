"""A real SOCKS5 server (Debian's ``microsocks``) on a free loopback port, for a test.

``bind`` is the address its outgoing connections leave from: the emulator behind it then
tells a call that came through the proxy (from that address) from one that came directly.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .command import end_process
from .waits import wait_for_port
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
        wait_for_port(port, "microsocks", proc)
        yield SocksProxy("127.0.0.1", port, user, password)
    finally:
        end_process(proc, timeout=5)
