"""What a mount shows: a *source* of PikPak items, seen as folders of files.

A source is a small protocol: list a folder, give an item's download link, tell the quota.
A writable source adds the write verbs. The own drive of an account (:class:`DriveSource`) is
the first kind; a share link, read-only and without a login, is a second class behind the same
protocol, not a second path through the mount or the DAV layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.types import File, Link, Quota
from pikdav.pikpak.upload import Uploader


@runtime_checkable
class Source(Protocol):
    """Items to read: folders by id (``""`` is the source's root), links by item id."""

    kind: str  # what the status page and the log call it: "drive", "share"

    # A source may also define ``listing_ttl_of(folder_id, default) -> float`` to keep some
    # folders fresher than the mount's listing_ttl (a share list's folders follow its file).

    def list_folder(self, folder_id: str) -> Iterable[File]: ...

    def link(self, item_id: str) -> Link: ...

    def quota(self) -> Quota | None: ...


@runtime_checkable
class WritableSource(Source, Protocol):
    """A source that can change: folders, names, places, the trash, new content."""

    def mkdir(self, parent_id: str, name: str) -> File: ...

    def rename(self, item_id: str, name: str) -> File: ...

    def move(self, ids: list[str], parent_id: str) -> None: ...

    def trash(self, ids: list[str]) -> None: ...

    def untrash(self, ids: list[str]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def upload(self, parent_id: str, name: str, path: Path, *, size: int, gcid: str) -> File: ...

    def copy_by_hash(self, parent_id: str, name: str, size: int, gcid: str) -> File: ...


class DriveSource:
    """An account's own drive: read-write, through its signed-in session."""

    kind = "drive"

    def __init__(self, drive: Drive, uploader: Uploader | None = None) -> None:
        self.drive = drive
        self.uploader = uploader or Uploader(drive)

    # ------------------------------------------------------------------ reading
    def list_folder(self, folder_id: str) -> Iterable[File]:
        return self.drive.iter_folder(folder_id)

    def link(self, item_id: str) -> Link:
        return self.drive.download_link(item_id)

    def quota(self) -> Quota | None:
        return self.drive.about()

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

    def upload(self, parent_id: str, name: str, path: Path, *, size: int, gcid: str) -> File:
        return self.uploader.upload_file(parent_id, name, path, size=size, gcid=gcid)

    def copy_by_hash(self, parent_id: str, name: str, size: int, gcid: str) -> File:
        return self.uploader.copy_by_hash(parent_id, name, size, gcid)
