"""A mount: one source of PikPak items (an own drive, a share) seen as paths, with everything
the mount keeps for it — its cached tree, its writer, its waiting uploads, Finder's side files
and its quota — behind the verbs the DAV layer needs. It is put together from parts (see
:mod:`pikdav.vfs.parts`): how it reads, how it writes (none: read-only), its drop folder.

The DAV layer asks; the mount decides: whether an upload waits in the background or goes up
at once, what a DELETE of a file still uploading means, that a file still uploading cannot be
moved, which names are the gateway's own, where only the quota lives.
"""

from __future__ import annotations

import io
import logging
from typing import BinaryIO

from pikdav.pikpak.cdn import Stopping
from pikdav.pikpak.errors import LoginPaused, PikPakError
from pikdav.pikpak.types import Link, Quota, Task

from .cache import TtlCache
from .cluster import Cluster
from .disk import is_away
from .errors import BodyCut, FromCache, NotAllowed, ReadOnly, StillUploading
from .names import HIDDEN_PREFIX, is_probe, unfit_character
from .offline import MAX_DROP, DropFolder, Offline, is_own
from .parts import Reading, Writing
from .share import ShareStatus
from .sidefiles import SideFiles, SideStore
from .source import Source
from .spool import SpoolFile
from .tree import LISTING_TTL, DriveTree, Entry
from .writer import TreeWriter

log = logging.getLogger(__name__)

QUOTA_TTL = 60.0  # seconds a mount's quota is kept before PikPak is asked again


class Mount:
    """One source seen as paths, put together from the parts it has: it asks them, never
    what kind its source is."""

    def __init__(
        self,
        name: str,
        source: Source,
        *,
        reading: Reading,
        writing: Writing | None = None,
        offline: Offline | None = None,
        root_id: str = "",
        listing_ttl: float = LISTING_TTL,
        finder_hints: bool = True,
        cluster: Cluster | None = None,
        read_only: bool = False,
    ) -> None:
        """The mount ``name`` shows ``source`` from its folder ``root_id`` (its listings
        kept ``listing_ttl`` seconds), read as ``reading`` says and, when ``writing`` is
        given and the source can change, changed as it says (else the mount is read-only);
        ``offline``: the account's offline downloads it may start and show, and its drop
        folder; ``finder_hints``: Finder's hint files (no Spotlight, no QuickLook
        thumbnails) are answered at the mount's root (see :mod:`pikdav.dav.clients`);
        ``cluster``: the Redis that several instances share (changes are refused while it
        is down, and invalidations reach every instance); ``read_only``: clients change
        nothing, while ``writing`` still finishes what an earlier writable run acknowledged
        (its background uploads) and removes its uploads' temporaries."""
        self.name = name
        self.source = source
        self.finder_hints = finder_hints
        self.cluster = cluster
        self.reading = reading
        writable = source.writable()
        # Someone else's content (a share): nothing of ours is written onto it, not even a
        # dead property or a lock.
        self.foreign = writable is None
        self.writing = writing if writable is not None else None
        self.read_only = read_only or self.writing is None
        self.pending = self.writing.pending if self.writing is not None else None
        # Where Finder's metadata files are kept (a read-only mount keeps none).
        self.side_files: SideFiles = (
            self.writing.side_files if self.writing is not None else SideStore()
        )
        self._quota: TtlCache[Quota] = TtlCache(1)
        self.tree = DriveTree(
            source,
            root_id,
            listing_ttl,
            waiting=self.pending,
            route=reading.route,
            cluster=cluster,
            channel=name,
            disk=reading.disk,
            scope=reading.disk_scope,
            memory=reading.memory,
        )
        self.offline = offline.tasks if offline is not None else None
        # Links put into the offline folder become tasks (see vfs.offline).
        self.drop = (
            DropFolder(
                offline, self.tree, make=None if self.read_only else self._folder_for, mount=name
            )
            if offline is not None and offline.folder_path is not None
            else None
        )
        self.writer: TreeWriter | None = None
        if self.writing is not None and writable is not None:
            self.writer = self.writing.start(writable, self.tree)

    @property
    def offline_folder(self) -> str | None:
        """Where links dropped become tasks (a path below the root; None: no such folder)."""
        return self.drop.path if self.drop is not None else None

    def give_up_uploads(self) -> None:
        """At a stop: the uploads still going up are given up, their temporaries deleted."""
        if self.writing is not None:
            self.writing.give_up()

    # ------------------------------------------------------------------ reading
    @property
    def root(self) -> Entry:
        return self.tree.root

    def is_root(self, entry: Entry) -> bool:
        return entry.is_folder and entry.id == self.tree.root_id and not entry.name

    def caught_up(self) -> None:
        """With other instances on one Redis: return once this instance has applied every
        change they made to this mount before now (a request calls it before it reads, so
        a client reads its own writes whichever instance it reaches)."""
        if self.cluster is not None:
            channels = [self.tree.channel]
            if self.pending is not None:
                channels.append(self.pending.channel)
            self.cluster.catch_up(channels)

    def resolve(self, names: list[str], *, looking: bool = False) -> Entry | None:
        """The entry at ``names`` below the mount's root, or None. When a client is only
        ``looking`` (GET, HEAD, PROPFIND), a name that clients probe for in every folder
        (``._x``, ``desktop.ini``…) is looked up in cached listings alone, so a probe never
        costs an upstream call (a real file of that name is found once its folder is listed)."""
        probe = looking and bool(names) and is_probe(names[-1])
        if not probe and self.drop is not None:
            self.drop.make()
        if not names and self.source.refuses_whole:
            # A share that cannot be read answers at its root too (its refusal, e.g. an
            # expired share), not only when a client lists it.
            self.tree.listing(self.tree.root_id)
        entry = self.tree.resolve("/".join(names), cached_only=probe)
        if entry is None and self.drop is not None and names and not probe:
            parent = self.tree.resolve("/".join(names[:-1]))
            if parent is not None and self.drop.is_it(parent):
                entry = next((e for e in self.children(parent) if e.name == names[-1]), None)
        return entry

    def children(self, folder: Entry) -> tuple[Entry, ...]:
        found = self.tree.children(folder)
        return self.drop.children(folder, found) if self.drop is not None else found

    def child(self, folder: Entry, name: str) -> Entry | None:
        found = self.tree.child(folder, name)
        if found is None and self.drop is not None and self.drop.is_it(folder):
            found = next((e for e in self.children(folder) if e.name == name), None)
        return found

    def link(self, entry: Entry, *, fresh: bool = False) -> Link:
        if entry.uploading and self.pending is not None:
            self.pending.not_elsewhere(entry)  # PikPak has no link for it yet
        if self.tree.disk is None:
            return self.tree.link(entry, fresh=fresh)
        outage = self.tree.outage
        if not outage.try_now():
            # PikPak is away: a link kept from before may still reach the download servers.
            kept = None if fresh else self.tree.cached_link(entry)
            if kept is not None:
                return kept
            raise self._from_cache("this part of the file is not in it")
        try:
            link = self.tree.link(entry, fresh=fresh)
        except PikPakError as exc:
            if not is_away(exc) or isinstance(exc, LoginPaused):
                raise  # a paused sign-in says what to do about it itself
            outage.began(exc)
            raise self._from_cache("this part of the file is not in it") from exc
        return link  # (maybe cached: only a listing fetched says that PikPak is back)

    def _from_cache(self, what: str) -> FromCache:
        outage = self.tree.outage
        return FromCache(
            f"PikPak is away ({outage.reason}); the mount serves from its disk cache "
            f"and {what}; try again shortly",
            outage.retry_after(),
        )

    def cached(self, entry: Entry, start: int = 0) -> bool:
        """Whether the byte at ``start`` of the entry is in a block cache (memory or disk):
        a read from there needs no link."""
        return self.reading.cached(entry, start)

    def open(
        self, entry: Entry, start: int = 0, end: int | None = None, stop: Stopping | None = None
    ) -> BinaryIO:
        """The file's bytes from ``start`` to ``end`` (exclusive; None: to its end), as a
        seekable reader: from local disk while it waits to be uploaded, else from PikPak's
        download servers (ended at once by ``stop``)."""
        if self.drop is not None and is_own(entry):
            return io.BytesIO(self.drop.content(entry)[start:end])
        local = self.pending.local_file(entry) if self.pending is not None else None
        if local is not None:
            return open(local, "rb")

        def link(fresh: bool) -> Link:
            return self.link(entry, fresh=fresh)

        return self.reading.open(entry, link, start, end, stop)

    def quota(self) -> Quota | None:
        """The source's quota (None for a source without one, or when PikPak cannot say)."""
        if self.tree.outage.active and not self.tree.outage.try_now():
            return self._quota.get("about")  # PikPak is away: not asked again yet
        try:
            return self._quota.fetch("about", lambda: (self.source.quota(), QUOTA_TTL))
        except PikPakError as exc:
            # A pause on sign-ins is logged once when it starts, not with every PROPFIND.
            quiet = isinstance(exc, LoginPaused)
            (log.debug if quiet else log.warning)(
                "mount %s: cannot read the quota: %s", self.name, exc
            )
            return None

    def offline_tasks(self) -> list[Task]:
        """The account's offline tasks. While PikPak is away and the mount serves from its
        cache, PikPak is not asked (a status page would wait through the retries): the
        outage is the answer, as :class:`FromCache`."""
        assert self.offline is not None
        if self.tree.outage.active and not self.tree.outage.try_now():
            raise self._from_cache("offline tasks are listed once PikPak answers")
        return self.offline.list()

    def quota_at(self, entry: Entry) -> Quota | None:
        """RFC 4331 quota: only a mount's root has one (elsewhere the property does not
        exist), and only a source with a quota (an own drive) gives one."""
        return self.quota() if self.is_root(entry) else None

    def share_statuses(self) -> list[ShareStatus]:
        """The state of each share this mount shows (one for a share link, one per share of
        a share list; none for an own drive), for the status page and ``pikdav check``."""
        return self.source.share_statuses()

    # ------------------------------------------------------------------ side files
    def keeps_locally(self, name: str) -> bool:
        """Whether a file of this name stays on the gateway (Finder's metadata) instead of
        going to PikPak."""
        return self.writing is not None and self.writing.keeps_locally(name)

    # ------------------------------------------------------------------ writing
    def _writer(self, name: str | None = None) -> TreeWriter:
        if self.read_only or self.writer is None:
            raise ReadOnly("this folder is read-only")
        if self.tree.outage.active and not self.tree.outage.try_now():
            raise self._from_cache("changes are refused until PikPak answers")
        if self.cluster is not None:
            # A change the other instances might not hear of is no change to make.
            self.cluster.check()
        if name is not None and name.startswith(HIDDEN_PREFIX):
            raise NotAllowed(f"names starting with {HIDDEN_PREFIX} are the gateway's own")
        return self.writer

    def check_writable(self, name: str | None = None) -> None:
        """ReadOnly or NotAllowed now, before a client sends a body, if a change to ``name``
        (None: to the mount) would be refused."""
        self._writer(name)

    def receive(self, size: int | None, *, exact: bool) -> SpoolFile:
        """A place for an upload's body to arrive (``size`` announced, ``exact`` when any
        other size means the upload was cut)."""
        self._writer()
        assert self.writing is not None
        return SpoolFile(self.writing.spool, size, exact=exact)

    def store(
        self, folder: Entry, name: str, body: SpoolFile, old: Entry | None, user: str = ""
    ) -> Entry:
        """The received ``body`` becomes ``folder/name`` (replacing ``old``): uploaded now,
        or, on a mount with background uploads, taken over to be uploaded from local disk
        (the caller may answer as soon as this returns: the body survives a crash).
        ``user``: who put it (a drop of links counts against that user's minute)."""
        writer = self._writer(name)
        drop = self.drop if self.drop is not None and self.drop.takes(folder, name) else None
        if drop is None:
            self._not_own(old)  # a link dropped again replaces its receipt
        body.close()
        if not body.complete:
            body.discard()
            raise BodyCut("the upload ended before its announced length")
        if drop is not None:
            try:
                with open(body.path, "rb") as links:
                    data = links.read(MAX_DROP + 1)
            finally:
                body.discard()  # a drop is never stored: its links become tasks
            return drop.drop(folder, name, data, user)
        if self.pending is not None:
            return self.pending.add(folder, name, body.path, body.size, body.gcid())
        try:
            return writer.store(folder, name, body, old)
        finally:
            body.discard()

    def create_empty(self, folder: Entry, name: str) -> Entry:
        return self._writer(name).create_empty(folder, name)

    def mkdir(self, parent: Entry, name: str) -> Entry:
        return self._writer(name).mkdir(parent, name)

    def delete(self, entry: Entry, parent: Entry) -> None:
        """To the trash or for good (see :class:`TreeWriter`). A file still uploading is
        cancelled, and the stored version it was to replace goes too."""
        writer = self._writer()
        self._not_own(entry)
        if entry.uploading and self.pending is not None:
            self.pending.not_elsewhere(entry)  # only its owner can cancel it
            self.pending.cancel(parent.id, entry.name)
            stored = self.tree.child(parent, entry.name, stored_only=True)
            if stored is not None:
                writer.delete(stored, parent)
            return
        writer.delete(entry, parent)

    def move(
        self, entry: Entry, parent: Entry, dest_parent: Entry, name: str, existing: Entry | None
    ) -> None:
        writer = self._writer(name)
        self._not_own(entry, existing)
        self._not_uploading(entry, existing)
        writer.move(entry, parent, dest_parent, name, existing)

    def copy(
        self,
        entry: Entry,
        dest_parent: Entry,
        name: str,
        existing: Entry | None,
        *,
        recursive: bool,
    ) -> None:
        writer = self._writer(name)
        self._not_own(entry, existing)
        self._not_uploading(entry, existing)
        writer.copy(entry, dest_parent, name, existing, recursive=recursive)

    @staticmethod
    def _not_own(*entries: Entry | None) -> None:
        if any(e is not None and is_own(e) for e in entries):
            raise ReadOnly(
                "this entry of the offline folder shows a task or a dropped link; it is "
                "read-only (delete a task with `pikdav offline delete` or on /_pikdav/)"
            )

    @staticmethod
    def _not_uploading(*entries: Entry | None) -> None:
        if any(e is not None and e.uploading for e in entries):
            raise StillUploading(
                "the file is still uploading; try again when the upload has finished"
            )

    # ------------------------------------------------------------------ offline downloads
    def add_offline(self, url: str, folder: str | None = None) -> Task:
        """Ask PikPak to fetch ``url`` into ``folder`` (a path below the mount's root, made
        when missing; None: the mount's ``offline_folder``, else PikPak's "My Pack")."""
        if self.offline is None:
            raise NotAllowed("this mount cannot start offline downloads")
        path = (folder if folder is not None else self.offline_folder or "").strip("/")
        parent_id = self._folder_for(path).id if path else ""
        task = self.offline.add(url, parent_id)
        if parent_id:
            self.tree.folder_changed(parent_id)
        return task

    def _folder_for(self, path: str) -> Entry:
        """The folder at ``path``, made (with its parents) when missing; a path with a name
        no folder may have is refused before anything is made."""
        names = path.split("/")
        for name in names:
            if (
                name in ("", ".", "..")
                or name.startswith(HIDDEN_PREFIX)
                or unfit_character(name) is not None
            ):
                raise NotAllowed(f"{path!r} is no folder path below the mount's root")
        folder = self.root
        for name in names:
            child = self.child(folder, name)
            if child is None:
                child = self.mkdir(folder, name)
            elif not child.is_folder:
                raise NotAllowed(f"{path} is a file, not a folder")
            folder = child
        return folder
