"""Changing a mount's drive: uploads, replacing, moving, copying, deleting, each followed by
the cache invalidations it needs (in ``finally``: a half-done change still drops what it
touched).

PikPak cannot overwrite in place, so an item that must make way for another (the old version
of a replaced file, the destination of a MOVE or COPY with ``Overwrite: T``) is first moved to
the trash; only once the new item has its name is the old one deleted for good (when the mount
does not use the trash, or it was an empty file), and if the change fails it is restored from
the trash. Every upload, new file or replacement, goes up under a hidden temporary name in the
same folder (``.pikdav-put-…``; PikPak keeps it pending, invisible, until every byte is there)
and is renamed into place once complete: readers see the old content until the rename, and
between trashing the old version and the rename (a fraction of a second) the name is free. A
crash there leaves the new content under its hidden name (until the next start removes it:
the PUT was never answered, a background upload goes up again) and the old one in PikPak's
trash: nothing acknowledged is lost; a crash before leaves a pending file under a hidden
name only, so the real name stays free for the next try. Such leftovers are written down,
and removed at a stop or at the next start (see :mod:`.temporaries`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from pikdav.logtext import client_text
from pikdav.pikpak.errors import Conflict, PikPakError, Stopped
from pikdav.pikpak.gcid import gcid_of_bytes
from pikdav.pikpak.types import File

from .errors import NameTaken
from .source import WritableSource
from .temporaries import Temporaries, Temporary
from .tree import HIDDEN_PREFIX, DriveTree, Entry

log = logging.getLogger(__name__)


class Body(Protocol):
    """A received upload body on local disk (see :mod:`.spool`)."""

    path: Path
    size: int

    def gcid(self) -> str: ...


def temp_name(kind: str, name: str) -> str:
    return f"{HIDDEN_PREFIX}{kind}-{secrets.token_hex(4)}-{name}"[:250]


class TreeWriter:
    def __init__(
        self,
        source: WritableSource,
        tree: DriveTree,
        *,
        use_trash: bool = True,
        temporaries: Temporaries | None = None,
    ) -> None:
        """``temporaries``: where the hidden uploads in flight are written down (None: not
        at all; a command beside the server uploads nothing)."""
        self.source = source
        self.tree = tree
        self.use_trash = use_trash
        self.temporaries = temporaries

    # ------------------------------------------------------------------ making way
    def _keep_permanently(self, entry: Entry) -> bool:
        return self.use_trash and (entry.is_folder or entry.size > 0)

    @contextlib.contextmanager
    def _making_way(self, entry: Entry | None, parent: Entry) -> Iterator[None]:
        """Trash ``entry`` for the duration of a change; restore it if the change fails,
        delete it for good after success when it is not worth keeping."""
        if entry is None:
            yield
            return
        self.source.trash([entry.id])
        self.tree.item_changed(entry, parent.id)
        try:
            yield
        except BaseException:
            with contextlib.suppress(PikPakError):
                self.source.untrash([entry.id])
                log.info(
                    "restored %s from the trash after a failed change", client_text(entry.name)
                )
            raise
        if not self._keep_permanently(entry):
            self.source.delete([entry.id])

    # ------------------------------------------------------------------ put
    def store(
        self,
        folder: Entry,
        name: str,
        body: Body,
        old: Entry | None,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Entry:
        """Upload ``body`` as ``folder/name``, replacing ``old`` if it exists.

        The content always goes up under a hidden temporary name and is renamed into place
        once complete: an upload cut by a crash leaves PikPak a pending file, invisible in
        listings but holding its name, and that must never be the real name (the next
        upload of it, a resumed background one too, could not take it).

        ``stop`` (a background upload that was deleted or replaced meanwhile), once set,
        gives the upload up at its next step and deletes what it made: nothing takes the
        name. It is looked at last just before the rename. ``progress`` is told the bytes
        the store has taken so far."""
        hidden = temp_name("put", name)
        temps = self.temporaries
        temp = temps.making(folder.id, hidden) if temps else Temporary("", folder.id, hidden)
        try:
            made = self.source.upload(
                folder.id,
                hidden,
                body.path,
                size=body.size,
                gcid=body.gcid(),
                # A sync PUT stops when the gateway does (its temporary is then deleted).
                stop=stop if stop is not None else temp.abandoned,
                progress=progress,
                made=temp.made,
            )
            unwanted = stop is not None and stop.is_set()
            if unwanted or not temp.may_rename():
                with contextlib.suppress(PikPakError):
                    self.source.delete([made.id])
                    temp.gone()
                why = "the file is no longer wanted" if unwanted else "the gateway is stopping"
                raise Stopped(f"the upload of {name} was given up: {why}")
            entry = self._swap_in(folder, name, made, old)
            temp.gone()
            return entry
        except BaseException:
            temp.ended()
            raise
        finally:
            self.tree.folder_changed(folder.id)

    def _swap_in(self, folder: Entry, name: str, made: File, old: Entry | None) -> Entry:
        try:
            try:
                with self._making_way(old, folder):
                    return Entry.from_file(self.source.rename(made.id, name))
            except NameTaken:
                raise
            except Conflict:
                # The name was taken meanwhile: replace a file, never a folder.
                self.tree.folder_changed(folder.id)
                clash = self.tree.child(folder, name, stored_only=True)
                if clash is None or clash.is_folder or (old is not None and clash.id == old.id):
                    raise NameTaken("the name is taken") from None
                with self._making_way(clash, folder):
                    return Entry.from_file(self.source.rename(made.id, name))
        except BaseException:
            with contextlib.suppress(PikPakError):
                self.source.delete([made.id])  # no hidden leftover when the swap failed
            raise

    def create_empty(self, folder: Entry, name: str) -> Entry:
        """An empty file (LOCK on an unmapped URL creates one, as RFC 4918 says)."""
        with tempfile.NamedTemporaryFile(prefix="pikdav-empty-") as empty:
            made = self.source.upload(
                folder.id, name, Path(empty.name), size=0, gcid=gcid_of_bytes(b"")
            )
        self.tree.folder_changed(folder.id)
        return Entry.from_file(made)

    # ------------------------------------------------------------------ delete, mkcol
    def delete(self, entry: Entry, parent: Entry) -> None:
        """To the trash, unless the mount does not use it or it is an empty file (nothing
        to recover, and Explorer makes one before every copy)."""
        try:
            if self._keep_permanently(entry):
                self.source.trash([entry.id])
            else:
                self.source.delete([entry.id])
        finally:
            self.tree.item_changed(entry, parent.id)

    def mkdir(self, parent: Entry, name: str) -> Entry:
        try:
            made = self.source.mkdir(parent.id, name)
            if made.name != name:  # PikPak numbered it: the name was taken after all
                self.source.delete([made.id])
                raise NameTaken("the name is taken")
            return Entry.from_file(made)
        finally:
            self.tree.folder_changed(parent.id)

    # ------------------------------------------------------------------ move, copy
    def move(
        self,
        entry: Entry,
        parent: Entry,
        dest_parent: Entry,
        dest_name: str,
        existing: Entry | None,
    ) -> None:
        """Into the destination folder first (PikPak numbers the name if it clashes there),
        then renamed: two calls, and the item always exists."""
        try:
            with self._making_way(existing, dest_parent):
                if dest_parent.id != parent.id:
                    self.source.move([entry.id], dest_parent.id)
                if dest_name != entry.name or dest_parent.id != parent.id:
                    self.source.rename(entry.id, dest_name)
        finally:
            self.tree.item_changed(entry, parent.id)
            self.tree.folder_changed(dest_parent.id)

    def copy(
        self,
        entry: Entry,
        dest_parent: Entry,
        dest_name: str,
        existing: Entry | None,
        *,
        recursive: bool,
    ) -> None:
        try:
            with self._making_way(existing, dest_parent):
                if entry.is_folder:
                    self._copy_folder(entry, dest_parent, dest_name, recursive)
                else:
                    self._copy_file(entry, dest_parent, dest_name)
        finally:
            self.tree.folder_changed(dest_parent.id)

    def _copy_file(self, entry: Entry, dest_parent: Entry, dest_name: str) -> None:
        """PikPak knows the content by its hash: a copy is an instant upload, any folder."""
        self.source.copy_by_hash(dest_parent.id, dest_name, entry.size, entry.etag)

    def _copy_folder(
        self, entry: Entry, dest_parent: Entry, dest_name: str, recursive: bool
    ) -> None:
        target = self.mkdir(dest_parent, dest_name)
        if not recursive:
            return
        for child in self.tree.children(entry):
            if child.is_folder:
                self._copy_folder(child, target, child.name, True)
            else:
                self._copy_file(child, target, child.name)
