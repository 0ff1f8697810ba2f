"""The one builder of Redis clients: the token store (``token_store: redis://…``) and the state
several instances share (the top-level ``redis:``) reach Redis the same way.

The ``redis`` package is imported only by a gateway that uses Redis (it costs about 10 MiB
of memory): here, and in the functions that catch its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

TIMEOUT = 2.0  # seconds a Redis call may take before Redis counts as down


def connect(url: str, *, timeout: float = TIMEOUT) -> redis.Redis:
    """A client for ``url`` (redis://, rediss:// or unix://); it connects on first use."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
