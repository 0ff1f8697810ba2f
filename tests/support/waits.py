"""Bounded waits for an event (a state, a log line, a file), instead of fixed sleeps."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    what: str | Callable[[], str] = "the condition",
    seconds: float = 30,
    every: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail saying
    ``what`` did not happen (a callable: what to say, then) when ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {seconds:g} s")
        time.sleep(every)
    return value


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_for_port(
    port: int,
    what: str,
    proc: subprocess.Popen | None = None,
    seconds: float = 10,
    died: Callable[[], str] | None = None,
) -> None:
    """Wait until ``what`` (the process ``proc``, when given) listens on ``port``; fail at
    once when ``proc`` exits first, saying ``died()`` (its log, say) if given."""

    def up() -> bool:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(died() if died else f"{what} exited with {proc.returncode}")
        return listening(port)

    wait_until(up, f"{what} did not start listening", seconds)


def request_lines(caplog, containing: str, count: int) -> list[str] | None:
    """The gateway's request log lines (``pikdav.requests``) that contain ``containing``, once
    there are at least ``count`` of them (else None, for ``wait_until``). The front door writes a
    request's line after the answer is out, so a client may read the answer before it."""
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "pikdav.requests" and containing in r.getMessage()
    ]
    return lines if len(lines) >= count else None
