"""Where an account's tokens and device id live between runs, shared by processes.

PikPak's refresh tokens are single-use: the moment a refresh succeeds, the old one is dead.
So a store must (1) be written before a new token is used, atomically, so a crash leaves
either the old or the new token and never half a file, and (2) offer a lock that every
process sharing the store takes around "re-read, refresh, save", so that one refresh
serves them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pikdav.durable import write_durably

from . import redisconn
from .errors import AuthError, StoreUnreachable
from .http import shown_url
from .retry import STORE_SAVE, Again
from .types import Token


@dataclass(frozen=True)
class LoginPause:
    """Sign-ins stopped until ``until`` (Unix time) after a failure that asking again
    cannot fix. Kept with the login, so every process sharing the store honours it and
    `pikdav check` can show it; a new login written to the store ends it."""

    kind: str  # a key of errors.LOGIN_PAUSES
    problem: str  # what went wrong, safe to show (no secret)
    since: float
    until: float
    failures: int = 1  # pauses in a row: each lasts longer than the one before

    def active(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.until

    @classmethod
    def from_json(cls, data: Any) -> LoginPause | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                kind=str(data.get("kind", "other")),
                problem=str(data.get("problem", "")),
                since=float(data.get("since", 0.0)),
                until=float(data.get("until", 0.0)),
                failures=max(1, int(data.get("failures", 1))),
            )
        except (TypeError, ValueError):
            return None  # a pause we cannot read is no reason to refuse the login


@dataclass(frozen=True)
class StoredAuth:
    platform: str
    device_id: str
    username: str = ""
    token: Token | None = None
    pause: LoginPause | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "platform": self.platform,
            "device_id": self.device_id,
            "username": self.username,
            "token": dataclasses.asdict(self.token) if self.token else None,
        }
        if self.pause is not None:
            data["pause"] = dataclasses.asdict(self.pause)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredAuth:
        # Files written before pauses existed have no "pause" key; older pikdav versions
        # ignore the key when they read newer files.
        token = data.get("token")
        return cls(
            platform=str(data.get("platform", "web")),
            device_id=str(data.get("device_id", "")),
            username=str(data.get("username", "")),
            token=Token(**token) if isinstance(token, dict) else None,
            pause=LoginPause.from_json(data.get("pause")),
        )


class TokenStore(Protocol):
    description: str

    def load(self) -> StoredAuth | None: ...

    def save(self, auth: StoredAuth) -> None: ...

    def locked(self) -> contextlib.AbstractContextManager[None]: ...


class TokenStoreError(AuthError):
    """The store cannot be read or written; the message says which file and why."""


class FileTokenStore:
    """A JSON file (mode 0600) written by rename, and a sidecar lock file (flock)."""

    def __init__(self, path: str | Path, login: str = "pikdav login") -> None:
        self.path = Path(path).expanduser()
        self.login = login  # the command that writes a new login, for error messages
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.description = f"file {self.path}"

    def load(self) -> StoredAuth | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read the token store {self.path}: {exc}") from None
        try:
            return StoredAuth.from_json(json.loads(text))
        except (ValueError, TypeError) as exc:
            raise TokenStoreError(
                f"the token store {self.path} is damaged ({exc}); delete it and run "
                f"`{self.login}` again"
            ) from None

    def save(self, auth: StoredAuth) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_durably(self.path, json.dumps(auth.to_json(), indent=1).encode())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class MemoryTokenStore:
    """For one process that keeps nothing (tests, the demo)."""

    def __init__(self, auth: StoredAuth | None = None) -> None:
        import threading

        self._auth = auth
        self._lock = threading.RLock()
        self.description = "memory (not kept)"

    def load(self) -> StoredAuth | None:
        return self._auth

    def save(self, auth: StoredAuth) -> None:
        self._auth = auth

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield


class RedisTokenStore:
    """For several hosts: one Redis key per account and a Redis lock around refreshes.

    A Redis that does not answer is :class:`StoreUnreachable`: the session then keeps using
    a token that still works, and refreshes nothing until Redis is back."""

    # Longer than a refresh can take with its retries (RetryPolicy.seconds), so the lock
    # cannot expire while its holder still refreshes.
    def __init__(
        self, url: str, name: str, lock_timeout: float = 180.0, save_for: float = 30.0
    ) -> None:
        import redis  # only a gateway with a Redis token store needs it

        self._errors = redis.RedisError
        self._redis = redisconn.connect(url)
        self._key = f"pikdav:auth:{name}"
        self._lock_timeout = lock_timeout
        self._save_for = save_for
        self.description = f"redis {shown_url(url)} key {self._key}"

    def _unreachable(self, exc: Exception) -> StoreUnreachable:
        return StoreUnreachable(
            f"the shared token store ({self.description}) does not answer ({exc}); "
            "no token is refreshed without its lock"
        )

    def load(self) -> StoredAuth | None:
        try:
            raw = self._redis.get(self._key)
        except self._errors as exc:
            raise self._unreachable(exc) from None
        return StoredAuth.from_json(json.loads(raw)) if raw else None

    def save(self, auth: StoredAuth) -> None:
        # A rotated refresh token that does not reach Redis is lost to the other instances
        # (PikPak killed the old one already), so a save keeps trying for a while.
        def attempt() -> None:
            try:
                self._redis.set(self._key, json.dumps(auth.to_json()))
            except self._errors as exc:
                raise Again(self._unreachable(exc)) from None

        dataclasses.replace(STORE_SAVE, seconds=self._save_for).run(attempt)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        lock = self._redis.lock(
            self._key + ":lock", timeout=self._lock_timeout, blocking_timeout=self._lock_timeout
        )
        try:
            taken = lock.acquire()
        except self._errors as exc:
            raise self._unreachable(exc) from None
        if not taken:
            raise TokenStoreError(f"could not take the refresh lock in {self.description}")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                lock.release()


REDIS_SCHEMES = ("redis", "rediss", "unix")
MEMORY = "memory"


def store_kind(spec: str | None) -> str:
    """Which kind of store ``spec`` names: ``"redis"`` (a redis://, rediss:// or unix://
    URL), ``"memory"`` (nothing kept) or ``"file"`` (None: the default file; else a path)."""
    if spec and spec.partition("://")[0] in REDIS_SCHEMES and "://" in spec:
        return "redis"
    if spec == MEMORY:
        return "memory"
    return "file"


def open_store(
    spec: str | None, default_path: Path, name: str, login: str = "pikdav login"
) -> TokenStore:
    """The store ``spec`` names (see :func:`store_kind`): ``None`` is the default file.
    ``login`` is the command a message tells a person to run."""
    kind = store_kind(spec)
    if kind == "redis":
        return RedisTokenStore(spec, name)
    if kind == "memory":
        return MemoryTokenStore()
    return FileTokenStore(spec or default_path, login)
