"""The one builder of Redis clients: the token store (``token_store: redis://…``) and the state
several instances share (the top-level ``redis:``) reach Redis the same way."""

from __future__ import annotations

import redis

TIMEOUT = 2.0  # seconds a Redis call may take before Redis counts as down


def connect(url: str, *, timeout: float = TIMEOUT) -> redis.Redis:
    """A client for ``url`` (redis://, rediss:// or unix://); it connects on first use."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
