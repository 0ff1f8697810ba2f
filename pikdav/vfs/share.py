"""A share link as a source: someone's shared folder, read anonymously, read-only.

The share's state (open, expired, blocked…) is kept for the status page and ``pikdav check``;
a change of state is logged once, with what to do, not with every request. A refusal PikPak
gave is remembered for a short while, so that clients polling a dead share do not ask
PikPak again with every request.

With ``save_to`` (a :class:`ShareSaver`), a file is served from a copy restored into an
account's own drive: a shared file above some size plays only 40-50 % through the share's
link, the owner's copy plays whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from pikdav.logtext import client_text
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import PikPakError, QuotaExceeded, ShareError, ShareRegionBlocked
from pikdav.pikpak.shares import SharedFolder
from pikdav.pikpak.types import File, Link, Quota

log = logging.getLogger(__name__)

REFUSAL_MEMORY = 15.0  # seconds a share's refusal is answered without asking PikPak again

T = TypeVar("T")

OPEN = "OK"
UNKNOWN = "not read yet"


@dataclass(frozen=True)
class ShareStatus:
    """A share's state as a person reads it: ``state`` is ``OK``, ``not read yet`` or
    PikPak's refusal (``EXPIRED``, ``NOT_FOUND``, ``SENSITIVE_RESOURCE``,
    ``PASS_CODE_ERROR``…); ``advice`` says what to do about it."""

    name: str
    share_id: str
    state: str
    advice: str
    files_at_root: int | None
    pass_code_used: bool
    checked_at: float | None

    @property
    def ok(self) -> bool:
        return self.state == OPEN


class ShareSource:
    """A source over one shared link (see :class:`pikdav.vfs.source.Source`); no write verbs,
    so a mount over it is read-only."""

    kind = "share"
    refuses_whole = True

    def __init__(
        self,
        name: str,
        folder: SharedFolder,
        *,
        root_id: str = "",
        transcoded: bool = False,
        saver: ShareSaver | None = None,
    ) -> None:
        """``root_id``: the share's folder shown as the mount's root; ``transcoded``: serve
        a file's transcoded copy when it has one (``use_transcoding_address``)."""
        self.name = name
        self.folder = folder
        self.root_id = root_id
        self.transcoded = transcoded
        self.saver = saver
        self._lock = threading.Lock()
        self._state = UNKNOWN
        self._advice = ""
        self._files: int | None = None
        self._checked: float | None = None
        self._refusal: ShareError | None = None
        self._refused_at = 0.0

    # ------------------------------------------------------------------ Source
    def list_folder(self, folder_id: str) -> Iterable[File]:
        files = self._reading(lambda: self.folder.list_folder(folder_id))
        if folder_id == self.root_id:
            self._seen(OPEN, "", len(files))
        if self.saver is not None:
            self.saver.remember(files)
        return files

    def link(self, item_id: str) -> Link:
        if self.saver is not None:
            saved = self._reading(lambda: self.saver.saved_link(item_id))
            if saved is not None:
                return saved
        return self._reading(lambda: self.folder.download_link(item_id, transcoded=self.transcoded))

    def quota(self) -> Quota | None:
        return None  # a share has no quota of its own

    def listing_ttl_of(self, folder_id: str, default: float) -> float:
        return default

    def share_statuses(self) -> list[ShareStatus]:
        return [self.status()]

    def signed_in_session(self) -> None:
        return None

    def writable(self) -> None:
        return None  # someone else's content: nothing of ours is written onto it

    # ------------------------------------------------------------------ state
    def status(self) -> ShareStatus:
        with self._lock:
            return ShareStatus(
                self.name,
                self.folder.share_id,
                self._state,
                self._advice,
                self._files,
                bool(self.folder.pass_code),
                self._checked,
            )

    def check(self) -> ShareStatus:
        """Read the share's root now (as ``pikdav check`` does) and say how it is."""
        with self._lock:
            self._refusal = None
        try:
            self.list_folder(self.root_id)
        except ShareError:
            pass  # the status says it
        except PikPakError as exc:
            # Not the share's answer (PikPak unreachable, say): said, but not remembered as
            # the share's state.
            status = self.status()
            return ShareStatus(
                status.name,
                status.share_id,
                "UNREADABLE",
                str(exc),
                None,
                status.pass_code_used,
                time.time(),
            )
        return self.status()

    def _reading(self, read: Callable[[], T]) -> T:
        with self._lock:
            refusal = self._refusal
            if refusal is not None and time.monotonic() - self._refused_at < REFUSAL_MEMORY:
                # The same answer again; a fresh traceback, or the old one would grow.
                raise refusal.with_traceback(None)
        try:
            return read()
        except ShareError as exc:
            with self._lock:
                self._refusal, self._refused_at = exc, time.monotonic()
            self._seen(_state_of(exc), exc.rule.log if exc.rule else str(exc))
            raise

    def _seen(self, state: str, advice: str, files: int | None = None) -> None:
        with self._lock:
            changed = state != self._state
            self._state, self._advice, self._checked = state, advice, time.time()
            if files is not None or state != OPEN:
                self._files = files
            if state == OPEN:
                self._refusal = None
        if not changed:
            return
        if state == OPEN:
            log.info("share %s (%s): open", self.name, self.folder.share_id)
        else:
            log.warning(
                "share %s (%s) cannot be read: %s (%s)",
                self.name,
                self.folder.share_id,
                advice,
                state,
            )


class ShareSaver:
    """Serves a share's files from copies restored into an account's own drive, in
    ``save_folder``. A saved copy is found again by name and hash (also after a restart),
    so a file is restored once. A restore that fails for lack of space is the client's
    answer (507); any other failure falls back to the share's own link, with a warning."""

    def __init__(self, folder: SharedFolder, drive: Drive, save_folder: str) -> None:
        self.folder = folder
        self.drive = drive
        self.save_folder = save_folder
        self._lock = threading.Lock()  # one restore at a time: never the same file twice
        self._known: dict[str, File] = {}  # the share's files by id, from its listings
        self._saved: dict[str, str] = {}  # share file id -> the saved copy's id
        self._folder_id: str | None = None

    def remember(self, files: Iterable[File]) -> None:
        for item in files:
            if not item.is_folder:
                self._known[item.id] = item

    def saved_link(self, item_id: str) -> Link | None:
        """The own drive's link of the saved copy (restoring it first if need be); None
        when the share's own link must do."""
        try:
            with self._lock:
                copy = self._saved.get(item_id) or self._save(item_id)
            return self.drive.download_link(copy)
        except QuotaExceeded:
            log.warning(
                "share %s: no room in the drive to save %s into %r; free space, or remove "
                "save_to to read the share directly",
                self.folder.share_id,
                item_id,
                self.save_folder,
            )
            raise
        except ShareError:
            raise
        except PikPakError as exc:
            log.warning(
                "share %s: cannot save %s into the drive (%s); serving the share's own link, "
                "which may stop at PikPak's play limit",
                self.folder.share_id,
                item_id,
                exc,
            )
            return None

    def _save(self, item_id: str) -> str:
        shared = self._known.get(item_id) or self.folder.file_info(item_id).file
        folder_id = self._target()
        copy = self._find(folder_id, shared)
        if copy is None:
            task = self.folder.restore([item_id], self.drive.session, folder_id)
            self.drive.wait_task(task)
            log.info(
                "share %s: saved %s into %r",
                self.folder.share_id,
                client_text(shared.name),
                self.save_folder,
            )
            copy = self._find(folder_id, shared)
            if copy is None:
                raise PikPakError(f"the restored copy of {shared.name!r} is not in the drive")
        self._saved[item_id] = copy.id
        return copy.id

    def _find(self, folder_id: str, shared: File) -> File | None:
        files = [f for f in self.drive.iter_folder(folder_id) if not f.is_folder]
        same = [f for f in files if f.hash == shared.hash and f.size == shared.size]
        # PikPak names a second item of a name "name(1)": the same name first.
        return next((f for f in same if f.name == shared.name), same[0] if same else None)

    def _target(self) -> str:
        """The id of ``save_folder`` in the drive, made when missing."""
        if self._folder_id is None:
            parent = ""
            for name in [p for p in self.save_folder.split("/") if p]:
                found = next(
                    (f for f in self.drive.iter_folder(parent) if f.is_folder and f.name == name),
                    None,
                )
                parent = (found or self.drive.mkdir(parent, name)).id
            self._folder_id = parent
        return self._folder_id


def _state_of(exc: ShareError) -> str:
    """PikPak's ``share_status`` of a refusal; a region block comes in words only."""
    if isinstance(exc, ShareRegionBlocked):
        return "REGION_BLOCKED"
    return exc.reason if exc.reason and exc.reason.isupper() else "REFUSED"
