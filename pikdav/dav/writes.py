"""Writing through the gateway: PUT bodies spooled and hashed, then uploaded; replacing,
moving, copying and deleting with PikPak's own operations.

PikPak cannot overwrite a file in place, so replacing one goes like this: the new content
is uploaded under a hidden temporary name in the same folder (``.pikdav-put-…``; PikPak
keeps it pending, invisible, until every byte is there), then the old file is moved out of
the way (to the trash, or deleted when it was empty or the mount does not use the trash)
and the new one is renamed into place. Readers see the old content until that last step;
between the two calls (a fraction of a second) the name is briefly free. A crash between
them leaves the new content under its ``.pikdav-put-…`` name and the old one in PikPak's
trash: nothing is lost, and pikdav hides such leftovers from listings.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wsgidav.dav_error import (
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
)

from pikdav.pikpak.errors import PikPakError
from pikdav.pikpak.gcid import GcidHasher
from pikdav.pikpak.types import File
from pikdav.pikpak.upload import Uploader, gcid_of_file
from pikdav.vfs.tree import HIDDEN_PREFIX, Entry

if TYPE_CHECKING:
    from .provider import Mount

log = logging.getLogger(__name__)

TEMP_PREFIX = HIDDEN_PREFIX
SPACE_MARGIN = 64 << 20  # keep this much free on the spool disk


@dataclass(frozen=True)
class SpoolSettings:
    directory: str | None = None  # None: the system's temporary folder
    max_size: int | None = None  # bytes; larger uploads get 413


def size_hint(environ: dict) -> int | None:
    """The announced body size: Content-Length, or Finder's X-Expected-Entity-Length when it
    sends a chunked body."""
    for key in ("CONTENT_LENGTH", "HTTP_X_EXPECTED_ENTITY_LENGTH"):
        value = environ.get(key)
        if value not in (None, ""):
            try:
                return max(0, int(value))
            except ValueError:
                continue
    return None


class SpoolFile:
    """The file-like object WsgiDAV writes a PUT body into: a temporary file on disk,
    hashed (GCID) as it arrives when the size is announced."""

    def __init__(self, settings: SpoolSettings, expected: int | None, exact: bool = False) -> None:
        self.settings = settings
        self.expected = expected
        self.exact = exact  # Content-Length: a body of any other size is a broken upload
        if settings.max_size is not None and expected is not None and expected > settings.max_size:
            raise DAVError(
                HTTP_REQUEST_ENTITY_TOO_LARGE, f"uploads are limited to {settings.max_size} bytes"
            )
        directory = settings.directory or tempfile.gettempdir()
        if expected is not None and shutil.disk_usage(directory).free < expected + SPACE_MARGIN:
            raise DAVError(
                HTTP_INSUFFICIENT_STORAGE, "the gateway has no room to receive this file"
            )
        fd, name = tempfile.mkstemp(prefix="pikdav-put-", dir=directory)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self._hasher = GcidHasher(expected) if expected is not None else None
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.settings.max_size is not None and self.size > self.settings.max_size:
            raise DAVError(
                HTTP_REQUEST_ENTITY_TOO_LARGE,
                f"uploads are limited to {self.settings.max_size} bytes",
            )
        self._out.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return len(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if not self.closed:
            self._out.close()
            self.closed = True

    @property
    def complete(self) -> bool:
        """False when the client went away before sending the Content-Length it announced
        (the server then sees an early end of the body, not an error)."""
        return not self.exact or self.size == self.expected

    def gcid(self) -> str:
        if self._hasher is not None and self.size == self.expected:
            return self._hasher.hexdigest()
        return gcid_of_file(self.path, self.size)  # chunked body: a second pass

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def temp_name(kind: str, name: str) -> str:
    return f"{TEMP_PREFIX}{kind}-{secrets.token_hex(4)}-{name}"[:250]


class Writer:
    """The write operations of one mount, each ending with the cache invalidations it needs."""

    def __init__(self, mount: Mount, uploader: Uploader | None = None) -> None:
        self.mount = mount
        self.drive = mount.drive
        self.tree = mount.tree
        self.uploader = uploader or Uploader(mount.drive)

    # ------------------------------------------------------------------ put
    def store(self, folder: Entry, name: str, spool: SpoolFile, old: Entry | None) -> Entry:
        """Upload a spooled body as ``folder/name``, replacing ``old`` if it exists."""
        gcid = spool.gcid()
        try:
            if old is None:
                made = self.uploader.upload_file(
                    folder.id, name, spool.path, size=spool.size, gcid=gcid
                )
                if made.name != name:  # someone else created the name meanwhile
                    return self._swap_in(folder, name, made, self._current(folder, name))
                return self._done(folder, made)
            made = self.uploader.upload_file(
                folder.id, temp_name("put", name), spool.path, size=spool.size, gcid=gcid
            )
            return self._swap_in(folder, name, made, old)
        finally:
            spool.discard()

    def create_empty(self, folder: Entry, name: str) -> Entry:
        """An empty file (LOCK on an unmapped URL creates one, as RFC 4918 says)."""
        empty = Path(tempfile.mkstemp(prefix="pikdav-empty-")[1])
        try:
            made = self.uploader.upload_file(folder.id, name, empty, size=0)
        finally:
            empty.unlink(missing_ok=True)
        return self._done(folder, made)

    def _current(self, folder: Entry, name: str) -> Entry | None:
        self.tree.folder_changed(folder.id)
        return self.tree.child(folder, name)

    def _swap_in(self, folder: Entry, name: str, made: File, old: Entry | None) -> Entry:
        if old is not None and old.id != made.id:
            self.discard(old, folder)
        renamed = self.drive.rename(made.id, name)
        return self._done(folder, renamed)

    def _done(self, folder: Entry, item: File) -> Entry:
        self.tree.folder_changed(folder.id)
        return Entry.from_file(item)

    # ------------------------------------------------------------------ delete
    def discard(self, entry: Entry, parent: Entry) -> None:
        """DELETE, or an item making way for another: to the trash, unless the mount does
        not use it or it is an empty file (nothing to recover, and Explorer makes one before
        every copy)."""
        if not self.mount.use_trash or (not entry.is_folder and entry.size == 0):
            self.drive.delete([entry.id])
        else:
            self.drive.trash([entry.id])
        self.tree.item_changed(entry, parent.id)

    # ------------------------------------------------------------------ mkcol
    def mkdir(self, parent: Entry, name: str) -> Entry:
        made = self.drive.mkdir(parent.id, name)
        self.tree.folder_changed(parent.id)
        if made.name != name:  # PikPak numbered it: the name was taken after all
            self.drive.delete([made.id])
            raise DAVError(405, "the name is taken")
        return Entry.from_file(made)

    # ------------------------------------------------------------------ move
    def move(
        self,
        entry: Entry,
        parent: Entry,
        dest_parent: Entry,
        dest_name: str,
        existing: Entry | None,
    ) -> None:
        """Move (and rename) in two calls, so the item is never missing: first into the
        destination folder (PikPak numbers the name if it clashes there), then renamed."""
        if existing is not None:
            self.discard(existing, dest_parent)
        if dest_parent.id != parent.id:
            self.drive.move([entry.id], dest_parent.id)
        if dest_name != entry.name or dest_parent.id != parent.id:
            self._rename_after_move(entry, dest_parent, dest_name)
        self.tree.item_changed(entry, parent.id)
        self.tree.folder_changed(dest_parent.id)

    def _rename_after_move(self, entry: Entry, dest_parent: Entry, dest_name: str) -> None:
        try:
            self.drive.rename(entry.id, dest_name)
        except PikPakError as exc:
            if exc.reason != "file_rename_to_same_name":
                raise

    # ------------------------------------------------------------------ copy
    def copy(
        self,
        entry: Entry,
        parent: Entry,
        dest_parent: Entry,
        dest_name: str,
        existing: Entry | None,
        *,
        recursive: bool,
    ) -> None:
        if existing is not None:
            self.discard(existing, dest_parent)
        if entry.is_folder:
            self._copy_folder(entry, parent, dest_parent, dest_name, recursive)
        else:
            self._copy_file(entry, dest_parent, dest_name)
        self.tree.folder_changed(dest_parent.id)

    def _copy_file(self, entry: Entry, dest_parent: Entry, dest_name: str) -> None:
        """PikPak knows the content by its hash: a copy is an instant upload, any folder."""
        self.uploader.copy_by_hash(
            dest_parent.id, dest_name, entry.size, entry.etag, source_id=entry.id
        )

    def _copy_folder(
        self, entry: Entry, parent: Entry, dest_parent: Entry, dest_name: str, recursive: bool
    ) -> None:
        target = self.mkdir(dest_parent, dest_name)
        if not recursive:
            return
        for child in self.tree.children(entry):
            if child.is_folder:
                self._copy_folder(child, entry, target, child.name, True)
            else:
                self._copy_file(child, target, child.name)
