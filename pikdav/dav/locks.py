"""WsgiDAV's in-memory lock storage, made safe for many threads at once.

``LockStorageDict`` guards itself with a read-write lock, but a read purges what it finds
expired: ``get_lock_list`` walks the dictionary and, for an expired lock below the path,
deletes it from inside that walk (``RuntimeError: dictionary changed size during iteration``,
a 500 for the PROPFIND that asked); two readers that both purge ask to upgrade at once and
one gets ``ValueError: Inevitable dead lock``. Here one re-entrant mutex covers every call,
and the walk is over a copy.
"""

from __future__ import annotations

import threading

from wsgidav import util
from wsgidav.lock_man.lock_manager import normalize_lock_root
from wsgidav.lock_man.lock_storage import LockStorageDict


class SafeLockStorage(LockStorageDict):
    """A :class:`LockStorageDict` whose every method holds one re-entrant mutex."""

    def __init__(self) -> None:
        super().__init__()
        self._mutex = threading.RLock()

    def open(self) -> None:
        with self._mutex:
            super().open()

    def close(self) -> None:
        with self._mutex:
            super().close()

    def cleanup(self) -> None:
        with self._mutex:
            super().cleanup()

    def clear(self) -> None:
        with self._mutex:
            super().clear()

    def get(self, token: str):
        with self._mutex:
            return super().get(token)

    def create(self, path: str, lock: dict):
        with self._mutex:
            return super().create(path, lock)

    def refresh(self, token: str, *, timeout):
        with self._mutex:
            return super().refresh(token, timeout=timeout)

    def delete(self, token: str):
        with self._mutex:
            return super().delete(token)

    def get_lock_list(self, path: str, *, include_root, include_children, token_only):
        """The valid locks of ``path`` (and of the paths below it, with
        ``include_children``); expired ones are purged on the way, after the walk."""
        with self._mutex:
            root = f"URL2TOKEN:{normalize_lock_root(path)}"
            tokens: list[str] = []
            for key, listed in list(self._dict.items()):
                if (include_root and key == root) or (
                    include_children and util.is_child_uri(root, key)
                ):
                    tokens.extend(listed)
            found = []
            for token in tokens:
                lock = self.get(token)  # None when expired (and purged now)
                if lock:
                    found.append(lock["token"] if token_only else lock)
            return found
