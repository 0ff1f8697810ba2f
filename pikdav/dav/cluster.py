"""What several instances behind one load balancer share on Redis at the DAV level: WsgiDAV's
locks (its own :class:`LockStorageRedis`, on our connection), dead properties within the caps
of :mod:`.limits`, and the ban on password guessing.

While Redis is down (see :class:`pikdav.vfs.cluster.Cluster`): LOCK, UNLOCK and PROPPATCH
answer 503 with the reason; a PROPFIND is still answered, without lock discovery and dead
properties (every write needs Redis anyway, so a lock unseen meanwhile protects nothing
that could be written); bans are counted by each instance alone until Redis is back.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from wsgidav import util
from wsgidav.dav_error import HTTP_SERVICE_UNAVAILABLE, DAVError
from wsgidav.lock_man.lock_manager import LockManager
from wsgidav.lock_man.lock_storage_redis import LockStorageRedis
from wsgidav.prop_man.property_manager import PropertyManager

from pikdav.vfs.cluster import Cluster, ClusterDown

from . import limits
from .auth import LIFT_ALL, FailedLogins, LoginFailures
from .deadprops import PLANNED, property_size
from .errors import dav_error
from .logtext import client_text

log = logging.getLogger(__name__)

T = TypeVar("T")


def _changing(cluster: Cluster, action: Callable[[redis.Redis], T]) -> T:
    """A change on Redis, or 503 with the reason."""
    try:
        cluster.check()
        return cluster.call(action)
    except ClusterDown as exc:
        raise dav_error(exc, "changing the shared state") from None


def _reading(cluster: Cluster, action: Callable[[redis.Redis], T], otherwise: T) -> T:
    """A read on Redis, or ``otherwise`` while it is down."""
    if not cluster.up:
        return otherwise
    try:
        return cluster.call(action)
    except ClusterDown:
        return otherwise


class ClusterLocks(LockStorageRedis):
    """WsgiDAV's Redis lock storage on the shared connection (it only takes host and port;
    this one also works with rediss:// and unix:// URLs), answering 503 while Redis is down."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster

    def __repr__(self) -> str:
        return f"ClusterLocks({self.shared.where})"

    def open(self) -> None:
        self._redis = self.cluster.client

    def close(self) -> None:
        pass  # the connection is the shared state's

    def get(self, token):
        return _reading(self.cluster, lambda _: super(ClusterLocks, self).get(token), None)

    def get_lock_list(self, path, *, include_root, include_children, token_only):
        def read(_):
            return super(ClusterLocks, self).get_lock_list(
                path,
                include_root=include_root,
                include_children=include_children,
                token_only=token_only,
            )

        return _reading(self.cluster, read, [])

    def create(self, path, lock):
        return _changing(self.cluster, lambda _: super(ClusterLocks, self).create(path, lock))

    def refresh(self, token, *, timeout):
        return _changing(
            self.cluster, lambda _: super(ClusterLocks, self).refresh(token, timeout=timeout)
        )

    def delete(self, token):
        return _changing(self.cluster, lambda _: super(ClusterLocks, self).delete(token))


class ClusterLockManager(LockManager):
    """WsgiDAV's lock manager, with its check for a conflicting lock and the new lock made one
    step for every instance (a Redis lock around them): WsgiDAV's own guard is per process,
    and two instances asked at once would each grant an exclusive lock."""

    GRANTING_FOR = 10.0  # seconds the guard may be held: a check and a create, on Redis

    def __init__(self, storage: ClusterLocks) -> None:
        super().__init__(storage)
        self.cluster = storage.cluster
        self._guard = self.cluster.key("locks", "granting")

    def acquire(self, **request: Any) -> dict[str, Any]:
        guard = self.cluster.client.lock(
            self._guard, timeout=self.GRANTING_FOR, blocking_timeout=self.GRANTING_FOR
        )
        if not _changing(self.cluster, lambda _: guard.acquire()):
            raise DAVError(HTTP_SERVICE_UNAVAILABLE, "locks are busy; try again")
        try:
            return super().acquire(**request)
        finally:
            try:
                guard.release()
            except redis.RedisError:
                pass  # it expires by itself


class ClusterPropertyManager(PropertyManager):
    """Dead properties on Redis: a hash per resource (name → XML), a set of the resources
    that have any, and the bytes held in all; the caps are those of the in-memory store."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self._urls = cluster.key("props", "urls")
        self._held = cluster.key("props", "held")

    def __repr__(self) -> str:
        return f"ClusterPropertyManager({self.shared.where})"

    def _key(self, url: str) -> str:
        return self.cluster.key("props", "of", url)

    @staticmethod
    def _sizes(r: redis.Redis, key: str) -> dict[str, int]:
        return {n.decode(): property_size(n.decode(), v) for n, v in r.hgetall(key).items()}

    def held(self) -> int:
        """Bytes of dead properties held, names included (0 while Redis is down)."""
        return _reading(self.cluster, lambda r: int(r.get(self._held) or 0), 0)

    # ------------------------------------------------------------------ reading
    def get_properties(self, norm_url, environ=None):
        def read(r: redis.Redis) -> list[str]:
            return [n.decode() for n in r.hkeys(self._key(norm_url))]

        return _reading(self.cluster, read, [])

    def get_property(self, norm_url, name, environ=None):
        return _reading(self.cluster, lambda r: r.hget(self._key(norm_url), name), None)

    def any_properties(self, urls: Iterable[str]) -> bool:
        """Whether any of ``urls`` has a dead property (one round trip)."""

        def read(r: redis.Redis) -> bool:
            if not r.scard(self._urls):
                return False
            with r.pipeline(transaction=False) as p:
                for url in urls:
                    p.exists(self._key(url))
                return any(p.execute())

        return _reading(self.cluster, read, False)

    # ------------------------------------------------------------------ changing
    def write_property(self, norm_url, name, property_value, dry_run=False, environ=None):
        size = property_size(name, property_value)
        planned: dict[tuple[str, str], int] = (
            environ.setdefault(PLANNED, {}) if environ is not None else {}
        )

        def write(r: redis.Redis) -> None:
            stored = self._sizes(r, self._key(norm_url))
            others = {n: s for n, s in stored.items() if n != name}
            others.update({n: s for (u, n), s in planned.items() if u == norm_url and n != name})
            limits.check_dead_property(
                size,
                resource_total=sum(others.values()) + size,
                store_total=int(r.get(self._held) or 0) - stored.get(name, 0) + size,
            )
            if dry_run:
                planned[(norm_url, name)] = size
                return
            with r.pipeline() as p:
                p.hset(self._key(norm_url), name, property_value)
                p.sadd(self._urls, norm_url)
                p.incrby(self._held, size - stored.get(name, 0))
                p.execute()

        _changing(self.cluster, write)

    def remove_property(self, norm_url, name, dry_run=False, environ=None):
        def remove(r: redis.Redis) -> None:
            key = self._key(norm_url)
            value = r.hget(key, name)
            if dry_run or value is None:
                return
            with r.pipeline() as p:
                p.hdel(key, name)
                p.decrby(self._held, property_size(name, value))
                p.execute()
            if not r.exists(key):
                r.srem(self._urls, norm_url)

        _changing(self.cluster, remove)

    def _drop(self, r: redis.Redis, url: str) -> None:
        freed = sum(self._sizes(r, self._key(url)).values())
        with r.pipeline() as p:
            p.delete(self._key(url))
            p.srem(self._urls, url)
            p.decrby(self._held, freed)
            p.execute()

    def remove_properties(self, norm_url, environ=None):
        _changing(self.cluster, lambda r: self._drop(r, norm_url))

    def _copy(self, r: redis.Redis, src_url: str, dest_url: str) -> None:
        props = r.hgetall(self._key(src_url))
        self._drop(r, dest_url)
        if not props:
            return
        with r.pipeline() as p:
            p.hset(self._key(dest_url), mapping=props)
            p.sadd(self._urls, dest_url)
            p.incrby(self._held, sum(property_size(n.decode(), v) for n, v in props.items()))
            p.execute()

    def copy_properties(self, src_url, dest_url, environ=None):
        def copy(r: redis.Redis) -> None:
            added = sum(self._sizes(r, self._key(src_url)).values())
            replaced = sum(self._sizes(r, self._key(dest_url)).values())
            if int(r.get(self._held) or 0) + added - replaced > limits.DEAD_PROPERTIES_MAX:
                # The copy itself is done; only its dead properties are not kept.
                log.warning("the dead properties of %s were not copied: the store is full", src_url)
                return
            self._copy(r, src_url, dest_url)

        _changing(self.cluster, copy)

    def move_properties(self, src_url, dest_url, with_children, environ=None):
        def move(r: redis.Redis) -> None:
            urls = [u.decode() for u in r.smembers(self._urls)]
            moving = [
                u
                for u in urls
                if (util.is_equal_or_child_uri(src_url, u) if with_children else u == src_url)
            ]
            for url in moving:
                target = dest_url + url[len(src_url) :]
                self._copy(r, url, target)
                self._drop(r, url)

        _changing(self.cluster, move)


class ClusterFailedLogins(FailedLogins):
    """The ban on password guessing, counted for every instance on Redis: failed logins of
    an address in a sorted set per address, a ban as a key that expires with it. While Redis
    is down, each instance counts alone (the in-memory ban)."""

    def __init__(self, cluster: Cluster, settings: LoginFailures) -> None:
        super().__init__(settings.max, settings.window, settings.ban)
        self.cluster = cluster
        # Addresses whose failures this instance counted: a login that works clears their
        # count (others' counts fade after ``window``), and every other login costs no call.
        self._counted: set[str] = set()

    def _failures(self, ip: str) -> str:
        return self.cluster.key("logins", "failed", ip)

    def _banned(self, ip: str) -> str:
        return self.cluster.key("logins", "banned", ip)

    def record_failure(self, ip: str) -> bool:
        if self.max_failures <= 0:
            return False
        now = time.time()

        def count(r: redis.Redis) -> bool:
            key = self._failures(ip)
            with r.pipeline() as p:
                p.zremrangebyscore(key, "-inf", now - self.window)
                p.zadd(key, {f"{now:.6f}-{secrets.token_hex(4)}": now})
                p.zcard(key)
                p.expire(key, int(self.window) + 1)
                failures = p.execute()[2]
            if failures < self.max_failures:
                return False
            with r.pipeline() as p:
                p.delete(key)
                p.set(self._banned(ip), "1", ex=max(1, int(self.ban)))
                p.execute()
            return True

        try:
            started = self.cluster.call(count)
        except ClusterDown:
            return super().record_failure(ip)
        with self._lock:
            if len(self._counted) < self._max_clients:
                self._counted.add(ip)
        if started:
            self.log_ban(ip, " on any instance")
        return started

    def record_success(self, ip: str) -> None:
        super().record_success(ip)
        with self._lock:
            if ip not in self._counted:
                return
            self._counted.discard(ip)
        _reading(self.cluster, lambda r: r.delete(self._failures(ip)), 0)

    def retry_after(self, ip: str) -> int:
        left = self._left_anywhere(ip)
        if left > 0 and self.take_lift_requests():
            left = self._left_anywhere(ip)
        return left

    def _left_anywhere(self, ip: str) -> int:
        local = super().retry_after(ip)
        cluster = _reading(self.cluster, lambda r: r.ttl(self._banned(ip)), 0)
        return max(local, cluster if cluster > 0 else 0)

    def _shared_bans(self) -> dict[str, int]:
        """The addresses banned on Redis, with their seconds left."""
        prefix = self._banned("")

        def scan(r: redis.Redis) -> dict[str, int]:
            found = {}
            for key in r.scan_iter(match=prefix + "*", count=500):
                name = key.decode() if isinstance(key, bytes) else key
                left = r.ttl(name)
                if left > 0:
                    found[name[len(prefix) :]] = left
            return found

        return _reading(self.cluster, scan, {})

    def banned(self) -> list[tuple[str, int]]:
        """Every instance's bans (on Redis) and this one's own (counted while Redis was down)."""
        found = dict(super().banned())
        for ip, left in self._shared_bans().items():
            found[ip] = max(found.get(ip, 0), left)
        return sorted(found.items())

    def lift(self, ip: str) -> bool:
        """End the ban on ``ip`` for every instance (and this one's own)."""
        local = super().lift(ip)
        removed = _reading(self.cluster, lambda r: r.delete(self._banned(ip)), 0)
        if removed and not local:
            log.info("the ban on %s was lifted by an admin", client_text(ip))
        return local or bool(removed)

    def _lift_asked(self, addresses: set[str], asked_at: float) -> list[str]:
        lifted = set(super()._lift_asked(addresses, asked_at))
        now = time.time()
        for ip, left in self._shared_bans().items():
            began = now - (self.ban - left)
            if (ip in addresses or LIFT_ALL in addresses) and began <= asked_at:
                if _reading(self.cluster, lambda r, ip=ip: r.delete(self._banned(ip)), 0):
                    lifted.add(ip)
        return sorted(lifted)


class SharedSecret:
    """A random key that every instance on the Redis uses (the status page signs its forms'
    CSRF tokens with it, so a page served by one instance may be posted to another behind
    a load balancer): made by the first instance that asks, read by the others. While Redis
    cannot be reached, this process's own key stands in, and a form is then accepted by the
    instance that served it alone."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self._key = cluster.key("secret", name)
        self._own = secrets.token_bytes(32)
        self._found: bytes | None = None

    def __call__(self) -> bytes:
        if self._found is None:

            def made_or_read(r: redis.Redis) -> Any:
                r.set(self._key, secrets.token_hex(32), nx=True)
                return r.get(self._key)

            value = _reading(self.cluster, made_or_read, None)
            if value is None:
                return self._own
            self._found = bytes.fromhex(value.decode() if isinstance(value, bytes) else value)
        return self._found


def cluster_dav_state(cluster: Cluster, login_failures: LoginFailures) -> dict[str, Any]:
    """The WsgiDAV settings and pikdav's own that put locks, dead properties, bans and the
    status page's CSRF key on ``cluster``."""
    return {
        "lock_storage": ClusterLocks(cluster),  # its manager is replaced by cluster_locks()
        "property_manager": ClusterPropertyManager(cluster),
        "failed_logins": ClusterFailedLogins(cluster, login_failures),
        "csrf_key": SharedSecret(cluster, "csrf"),
    }


def cluster_locks(dav: Any, provider: Any) -> None:
    """Put the app's lock storage (a :class:`ClusterLocks`) under a :class:`ClusterLockManager`
    (WsgiDAV makes a plain manager of whatever storage it is given)."""
    manager = ClusterLockManager(dav.lock_manager.storage)
    dav.lock_manager = manager
    provider.set_lock_manager(manager)
