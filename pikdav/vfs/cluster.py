"""State that several gateways behind one load balancer share, on one Redis (the top-level
``redis:`` setting): the link to Redis, whether it answers, and the change notices that keep
every instance's listings and links coherent.

Every instance talks to Redis through one :class:`Cluster`. A call that Redis does not
answer marks it down (one log line), and the caller gets :class:`ClusterDown`, which the
DAV layer answers with 503 and the reason. A listener thread holds the pub/sub connection; it
notices when Redis comes back (one log line) and then tells every tree to forget what it has
cached, because change notices sent meanwhile may have been missed.

Listings themselves stay in each instance (no bulk data goes through Redis); only the ids of
the folders and files a write touched do.

Read your own writes, whichever instance reads: every notice carries the next number of its
channel (``seq:<channel>``, counted up and published in one step on Redis, before the write is
answered), and each instance remembers the last number it has applied. Before a request reads
what a mount has cached, :meth:`Cluster.catch_up` asks Redis for the channels' numbers and
waits until the notices up to them have been applied here; a client that wrote through one
instance and reads through another at once (litmus does, behind a round-robin balancer) never
sees the state before its write.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..pikpak import redisconn
from ..pikpak.http import shown_url
from .errors import MountError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "pikdav:"
_RETRY = 0.5  # seconds between tries to reach Redis again while it is down
_CATCH_UP = 1.0  # seconds a request waits for notices on their way, then drops the caches

# Count the channel's notices up and publish this one with its number, in one step: numbers
# reach every listener in order. ARGV[1] is the notice as a JSON object.
_PUBLISH = """
local n = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], '{"seq":' .. n .. ',' .. string.sub(ARGV[1], 2))
return n
"""


def _unreachable() -> tuple[type[Exception], ...]:
    """What says Redis cannot be reached; any other error of Redis is a fault of the request,
    not a reason to refuse every change on this instance. (An ``except`` clause evaluates
    this only when something was raised: the package is imported only where Redis is used.)"""
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


def _any_error() -> type[Exception]:
    import redis

    return redis.RedisError


class ClusterDown(MountError):
    """Redis, which holds what the instances share, does not answer; the message says so."""


@dataclass(frozen=True)
class ClusterStatus:
    """What the status page shows about the shared state."""

    where: str  # the Redis address, without a password
    up: bool
    since: float  # Unix time of the last change of ``up``
    problem: str  # why it is down ("" while up)


class Cluster:
    """One instance's link to the shared Redis (see the module docstring)."""

    def __init__(self, url: str, *, timeout: float = redisconn.TIMEOUT) -> None:
        self.url = url
        self.where = shown_url(url)
        self.instance = secrets.token_hex(6)  # tells this instance's own notices apart
        self.client = redisconn.connect(url, timeout=timeout)
        self._guard = threading.Lock()
        self._up = True
        self._since = time.time()
        self._problem = ""
        self._channels: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._on_return: list[Callable[[], None]] = []
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._publish = self.client.register_script(_PUBLISH)
        # The number of the last notice applied here, by channel key (this instance's own
        # included); told when it grows.
        self._applied: dict[str, int] = {}
        self._applying = threading.Condition()

    def __repr__(self) -> str:
        return f"Cluster({self.where})"

    def key(self, *parts: str) -> str:
        return PREFIX + ":".join(parts)

    # ------------------------------------------------------------------ health
    @property
    def up(self) -> bool:
        return self._up

    def status(self) -> ClusterStatus:
        with self._guard:
            return ClusterStatus(self.where, self._up, self._since, self._problem)

    def check(self) -> None:
        """:class:`ClusterDown` now while Redis is known to be down."""
        if not self._up:
            raise self._down_error()

    def _down_error(self) -> ClusterDown:
        return ClusterDown(
            "the shared state (Redis) is unreachable; changes are refused until it is back"
        )

    def call(self, action: Callable[[redis.Redis], T]) -> T:
        """``action(client)``; a Redis that does not answer marks the state down and raises
        :class:`ClusterDown`."""
        try:
            result = action(self.client)
        except _unreachable() as exc:
            self.went_down(exc)
            raise self._down_error() from None
        return result

    def went_down(self, exc: Exception) -> None:
        with self._guard:
            if not self._up:
                return
            self._up, self._since = False, time.time()
            self._problem = f"{type(exc).__name__}: {exc}"
        log.error(
            "the shared state at %s is unreachable (%s): reads are served from local "
            "caches, changes answer 503 until it is back",
            self.where,
            self._problem,
        )

    def _came_back(self) -> None:
        with self._guard:
            if self._up:
                return
        # Forget first, then say "up": no request may read a cache that missed notices
        # while Redis was away (catch_up trusts the caches as soon as Redis is up).
        for forget in list(self._on_return):
            forget()
        with self._guard:
            self._up, self._since, self._problem = True, time.time(), ""
        log.warning("the shared state at %s is reachable again: full service", self.where)

    # ------------------------------------------------------------------ change notices
    def on_notice(self, channel: str, handle: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handle(message)`` for every notice another instance sends on ``channel``."""
        self._channels[self.key(channel)] = handle

    def on_return(self, forget: Callable[[], None]) -> None:
        """Call ``forget()`` when Redis is back after being down (notices may be lost)."""
        self._on_return.append(forget)

    def notify(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the other instances; a Redis that does not answer is logged
        (by :meth:`went_down`) and not raised: the change is done, and every instance forgets
        its caches when Redis is back."""
        body = json.dumps({"from": self.instance, **message})
        try:
            self._publish(keys=[self.key("seq", channel), self.key(channel)], args=[body])
        except _unreachable() as exc:
            self.went_down(exc)

    def catch_up(self, channels: list[str]) -> None:
        """Return once every notice sent on ``channels`` before now has been applied here
        (see the module docstring). Waits at most ``_CATCH_UP`` seconds; notices later than
        that make every cache here forget what it holds, so nothing stale is served. While
        Redis is down this returns at once (reads are served from the local caches)."""
        keys = [self.key(c) for c in channels if self.key(c) in self._channels]
        if not keys or not self._up or not self._subscribed.is_set():
            return
        try:
            numbers = self.client.mget([self.key("seq", k[len(PREFIX) :]) for k in keys])
        except _unreachable() as exc:
            self.went_down(exc)
            return
        wanted = {k: int(n or 0) for k, n in zip(keys, numbers, strict=True)}

        def applied() -> bool:
            return all(self._applied.get(k, 0) >= n for k, n in wanted.items())

        with self._applying:
            if self._applying.wait_for(applied, timeout=_CATCH_UP):
                return
            for k, n in wanted.items():
                self._applied[k] = max(self._applied.get(k, 0), n)
        log.warning(
            "change notices from the other instances are late (over %.0f s): forgetting the "
            "cached listings and links",
            _CATCH_UP,
        )
        for forget in list(self._on_return):
            forget()

    def _numbered_from_now(self) -> None:
        """Take the channels' current numbers as applied: called by the listener once
        subscribed, before it delivers anything, when this instance holds nothing it must
        keep from before (it starts, or Redis came back and every cache is forgotten next).
        Taken as they are, not as a maximum: a Redis that lost its keys counts from 1 again."""
        keys = list(self._channels)
        numbers = self.client.mget([self.key("seq", k[len(PREFIX) :]) for k in keys])
        with self._applying:
            for k, n in zip(keys, numbers, strict=True):
                self._applied[k] = int(n or 0)
            self._applying.notify_all()

    def start(self) -> None:
        """Listen for notices (after every :meth:`on_notice`), until :meth:`close`."""
        if self._listener is None and self._channels:
            self._listener = threading.Thread(
                target=self._listen, name="pikdav-cluster", daemon=True
            )
            self._listener.start()
            self._subscribed.wait(timeout=redisconn.TIMEOUT)

    def close(self) -> None:
        """Stop listening; the listener (a daemon thread) ends within ``_RETRY`` seconds,
        quietly, whatever Redis does meanwhile."""
        self._stopping.set()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            pubsub = self.client.pubsub()
            try:
                pubsub.subscribe(*self._channels)
                self._confirmed(pubsub)  # only then is no notice published from now on missed
                self._numbered_from_now()
                self._subscribed.set()
                self._came_back()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=_RETRY)
                    if message is not None:
                        self._deliver(message)
                    elif not self._up:
                        self.client.ping()  # a call failed elsewhere: is it back?
                        self._came_back()
            except _any_error() as exc:
                if self._stopping.is_set():
                    break
                self.went_down(exc)
                self._stopping.wait(_RETRY)
            finally:
                try:
                    pubsub.close()
                except _any_error():
                    pass

    def _confirmed(self, pubsub: Any) -> None:
        """Wait until Redis has confirmed every channel's SUBSCRIBE: a notice published
        before that, from another connection, would not reach this one."""
        waiting = len(self._channels)
        deadline = time.monotonic() + redisconn.TIMEOUT
        while waiting and not self._stopping.is_set():
            message = pubsub.get_message(timeout=_RETRY)
            if message is not None and message.get("type") == "subscribe":
                waiting -= 1
            elif message is not None:
                self._deliver(message)
            elif time.monotonic() > deadline:
                import redis

                raise redis.TimeoutError("Redis did not confirm the subscription")

    def _deliver(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return  # the answers to SUBSCRIBE and the like
        channel = message.get("channel", b"")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        handle = self._channels.get(channel)
        try:
            data = json.loads(message.get("data") or b"{}")
        except ValueError:
            log.warning("ignoring a change notice on %s that is not JSON", channel)
            return
        if handle is None or not isinstance(data, dict):
            return
        if data.get("from") != self.instance:  # this instance applied its own already
            try:
                handle(data)
            except Exception:  # one bad notice must not end the listener
                log.exception("could not apply a change notice on %s", channel)
        seq = data.get("seq")
        if isinstance(seq, int):
            with self._applying:
                self._applied[channel] = max(self._applied.get(channel, 0), seq)
                self._applying.notify_all()
