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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import AuthError
from .types import Token


@dataclass(frozen=True)
class StoredAuth:
    platform: str
    device_id: str
    username: str = ""
    token: Token | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "device_id": self.device_id,
            "username": self.username,
            "token": dataclasses.asdict(self.token) if self.token else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredAuth:
        token = data.get("token")
        return cls(
            platform=str(data.get("platform", "web")),
            device_id=str(data.get("device_id", "")),
            username=str(data.get("username", "")),
            token=Token(**token) if isinstance(token, dict) else None,
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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
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
                "`pikdav login` again"
            ) from None

    def save(self, auth: StoredAuth) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(auth.to_json(), indent=1).encode()
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # The rename is durable only once the directory entry is.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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
    """For several hosts: one Redis key per account and a Redis lock around refreshes."""

    # Longer than a refresh can take with its retries (RetryPolicy.seconds), so the lock
    # cannot expire while its holder still refreshes.
    def __init__(self, url: str, name: str, lock_timeout: float = 180.0) -> None:
        try:
            import redis
        except ImportError:
            raise TokenStoreError(
                "token_store is a redis:// URL but the redis package is missing; "
                "install pikdav[redis]"
            ) from None
        self._redis = redis.Redis.from_url(url)
        self._key = f"pikdav:auth:{name}"
        self._lock_timeout = lock_timeout
        safe = url.split("@")[-1]  # never show a password in the URL
        self.description = f"redis {safe} key {self._key}"

    def load(self) -> StoredAuth | None:
        raw = self._redis.get(self._key)
        return StoredAuth.from_json(json.loads(raw)) if raw else None

    def save(self, auth: StoredAuth) -> None:
        self._redis.set(self._key, json.dumps(auth.to_json()))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        lock = self._redis.lock(
            self._key + ":lock", timeout=self._lock_timeout, blocking_timeout=self._lock_timeout
        )
        if not lock.acquire():
            raise TokenStoreError(f"could not take the refresh lock in {self.description}")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                lock.release()


def open_store(spec: str | None, default_path: Path, name: str) -> TokenStore:
    """``None`` → the default file; ``redis://…`` → Redis; ``memory`` → nothing kept;
    anything else is a file path."""
    if not spec:
        return FileTokenStore(default_path)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisTokenStore(spec, name)
    if spec == "memory":
        return MemoryTokenStore()
    return FileTokenStore(spec)
