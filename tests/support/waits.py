"""Bounded waits for an event (a state, a log line, a file), instead of fixed sleeps."""

from __future__ import annotations

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
