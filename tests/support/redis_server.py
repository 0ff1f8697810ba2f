"""A real redis-server on a free loopback port, started and stopped by a test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .waits import wait_for_port
from .web import free_port


class RedisProcess:
    """A redis-server that a test may stop and start again on the same port; with
    ``persistent``, writes go to an append-only file, which a stop (SIGTERM: Redis writes and
    syncs it before exiting) leaves complete, so a restart keeps them. The file is synced
    once a second, not at every write: a sync per write on a slow disk outlasts the
    gateway's 2 s Redis timeout."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: install Debian's redis-server (.ci/run does)"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        durable = ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            *(durable if persistent else ["--appendonly", "no"]), "--dir", str(workdir),
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, "redis-server", self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextmanager
def redis_process(workdir: Path, *, persistent: bool = False) -> Iterator[RedisProcess]:
    server = RedisProcess(workdir, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    with redis_process(workdir) as server:
        yield server.url
