"""What a mount shows: a *source* of PikPak items, seen as folders of files.

A source is a small protocol: list a folder, give an item's download link, tell the quota.
A writable source adds the write verbs. The own drive of an account (:class:`DriveSource`) is
the first kind; a share link, read-only and without a login, is a second class behind the same
protocol, not a second path through the mount or the DAV layer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.types import ORIGINAL, File, Link, Quota
from pikdav.pikpak.upload import Uploader

if TYPE_CHECKING:
    from pikdav.pikpak.session import Session

    from .share import ShareStatus


@runtime_checkable
class Source(Protocol):
    """Items to read: folders by id (``""`` is the source's root), links by item id."""

    kind: str  # what the status page and the log call it: "drive", "share"
    # Someone else's content that can refuse as a whole (a share expires, is blocked): its
    # root is read before anything below it is answered, so the refusal reaches every client.
    refuses_whole: bool

    def list_folder(self, folder_id: str) -> Iterable[File]: ...

    def link(self, item_id: str) -> Link: ...

    def quota(self) -> Quota | None: ...

    def listing_ttl_of(self, folder_id: str, default: float) -> float:
        """Seconds a listing of ``folder_id`` is kept (``default``: the mount's listing_ttl);
        a share list keeps its own folders fresher, as its file may change."""
        ...

    def share_statuses(self) -> list[ShareStatus]:
        """The state of each share the source shows (none for an own drive)."""
        ...

    def signed_in_session(self) -> Session | None:
        """The signed-in session of the account whose drive this is (None for a share, read
        without a login), for the status page's account lines."""
        ...

    def writable(self) -> WritableSource | None:
        """This source when it can change (an own drive); None when it is someone else's
        content, read-only (a share)."""
        ...


@runtime_checkable
class WritableSource(Source, Protocol):
    """A source that can change: folders, names, places, the trash, new content."""

    def mkdir(self, parent_id: str, name: str) -> File: ...

    def rename(self, item_id: str, name: str) -> File: ...

    def move(self, ids: list[str], parent_id: str) -> None: ...

    def trash(self, ids: list[str]) -> None: ...

    def untrash(self, ids: list[str]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def upload(
        self,
        parent_id: str,
        name: str,
        path: Path,
        *,
        size: int,
        gcid: str,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
        made: Callable[[File], None] | None = None,
    ) -> File: ...

    def copy_by_hash(self, parent_id: str, name: str, size: int, gcid: str) -> File: ...


class DriveSource:
    """An account's own drive: read-write, through its signed-in session.

    ``link_kind`` (see :data:`~pikdav.pikpak.types.LINK_KINDS`) says which of a file's
    links is read. With ``transcoded`` a video is shown as PikPak plays it: its size and
    ETag are the transcode's, so PROPFIND announces the bytes a GET returns; PikPak lists
    no media, so that costs one file request per video when its folder is listed."""

    kind = "drive"
    refuses_whole = False

    def __init__(
        self, drive: Drive, uploader: Uploader | None = None, *, link_kind: str = ORIGINAL
    ) -> None:
        self.drive = drive
        self.uploader = uploader or Uploader(drive)
        self.link_kind = link_kind

    # ------------------------------------------------------------------ reading
    def list_folder(self, folder_id: str) -> Iterable[File]:
        items = self.drive.iter_folder(folder_id)
        if self.link_kind != "transcoded":
            return items
        return [self._as_played(item) for item in items]

    def _as_played(self, item: File) -> File:
        if item.is_folder or item.category != "VIDEO":
            return item
        transcode = self.drive.get_file(item.id).transcode
        if transcode is None:
            return item
        etag = transcode.content_hash or f"{item.id}-transcoded-{transcode.size}"
        return replace(item, size=transcode.size, hash=etag)

    def link(self, item_id: str) -> Link:
        return self.drive.download_link(item_id, self.link_kind)

    def quota(self) -> Quota | None:
        return self.drive.about()

    def listing_ttl_of(self, folder_id: str, default: float) -> float:
        return default

    def share_statuses(self) -> list[ShareStatus]:
        return []

    def signed_in_session(self) -> Session | None:
        return self.drive.session

    def writable(self) -> DriveSource:
        return self

    # ------------------------------------------------------------------ writing
    def mkdir(self, parent_id: str, name: str) -> File:
        return self.drive.mkdir(parent_id, name)

    def rename(self, item_id: str, name: str) -> File:
        return self.drive.rename(item_id, name)

    def move(self, ids: list[str], parent_id: str) -> None:
        self.drive.move(ids, parent_id)

    def trash(self, ids: list[str]) -> None:
        self.drive.trash(ids)

    def untrash(self, ids: list[str]) -> None:
        self.drive.untrash(ids)

    def delete(self, ids: list[str]) -> None:
        self.drive.delete(ids)

    def upload(
        self,
        parent_id: str,
        name: str,
        path: Path,
        *,
        size: int,
        gcid: str,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
        made: Callable[[File], None] | None = None,
    ) -> File:
        return self.uploader.upload_file(
            parent_id, name, path, size=size, gcid=gcid, stop=stop, progress=progress, made=made
        )

    def copy_by_hash(self, parent_id: str, name: str, size: int, gcid: str) -> File:
        return self.uploader.copy_by_hash(parent_id, name, size, gcid)
