"""Transfers in progress: proxied streams and PUTs, for the status page and the metrics.

Delivery registers a stream when it starts sending a file's bytes, the provider a PUT when its
body starts to arrive; each counts its bytes as they pass and is dropped when it ends.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

STREAM, PUT = "stream", "put"
# The phases of a PUT: its body arrives (and is hashed as it does), then goes to PikPak.
RECEIVING, UPLOADING = "receiving", "uploading"


@dataclass
class Transfer:
    id: int
    kind: str  # STREAM or PUT
    client: str  # the client's address
    path: str
    total: int | None  # bytes expected, when known
    phase: str = ""
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def advance(self, count: int) -> None:
        self.done += count  # one thread moves a transfer's bytes: no lock needed

    def rate(self) -> float:
        """Bytes per second since it started."""
        return self.done / max(time.monotonic() - self.started, 1e-3)


class Transfers:
    """The registry (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, Transfer] = {}
        self._ids = itertools.count(1)
        self._streamed = 0  # bytes of the streams that ended
        self.redirects = 0  # GETs answered with a redirect to PikPak's link

    def start(
        self, kind: str, client: str, path: str, total: int | None, phase: str = ""
    ) -> Transfer:
        transfer = Transfer(next(self._ids), kind, client, path, total, phase)
        with self._lock:
            self._active[transfer.id] = transfer
        return transfer

    def end(self, transfer: Transfer) -> None:
        with self._lock:
            if self._active.pop(transfer.id, None) is not None and transfer.kind == STREAM:
                self._streamed += transfer.done

    def redirected(self) -> None:
        with self._lock:
            self.redirects += 1

    def streamed_bytes(self) -> int:
        """Bytes proxied to clients so far, streams still running included."""
        with self._lock:
            running = sum(t.done for t in self._active.values() if t.kind == STREAM)
            return self._streamed + running

    def active(self, kind: str | None = None) -> list[Transfer]:
        with self._lock:
            found = list(self._active.values())
        return [t for t in found if kind is None or t.kind == kind]
