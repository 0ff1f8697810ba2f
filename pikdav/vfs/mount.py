"""A mount: one source of PikPak items (an own drive, a share) seen as paths, with everything
the mount keeps for it — its cached tree, its writer, its waiting uploads, Finder's side files
and its quota — behind the verbs the DAV layer needs.

The DAV layer asks; the mount decides: whether an upload waits in the background or goes up
at once, what a DELETE of a file still uploading means, that a file still uploading cannot be
moved, which names are the gateway's own, where only the quota lives.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import BinaryIO

from pikdav.pikpak.cdn import CdnSession, LinkReader, Stopping
from pikdav.pikpak.errors import LoginPaused, PikPakError
from pikdav.pikpak.links import LinkRoute
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.segments import SegmentPlan, Streams
from pikdav.pikpak.types import Link, Quota, Task

from .cache import TtlCache
from .errors import BodyCut, NotAllowed, ReadOnly, StillUploading
from .names import HIDDEN_PREFIX, is_finder_metadata, is_probe
from .offline import MAX_DROP, DropFolder, is_drop, is_own
from .pending import PendingUploads
from .share import ShareSource, ShareStatus
from .shared import SharedState
from .sharelist import ShareListSource
from .sidefiles import KEEP_LOCAL, SideFiles, SideStore
from .source import Source, WritableSource
from .spool import SpoolFile, SpoolSettings
from .tree import LISTING_TTL, DriveTree, Entry
from .writer import TreeWriter

log = logging.getLogger(__name__)


class Mount:
    def __init__(
        self,
        name: str,
        source: Source,
        *,
        cdn: CdnSession,
        root_id: str = "",
        listing_ttl: float = LISTING_TTL,
        read_only: bool = False,
        use_trash: bool = True,
        spool: SpoolSettings | None = None,
        uploads_dir: Path | None = None,
        finder_metadata: str = KEEP_LOCAL,
        quota_ttl: float = 60.0,
        route: LinkRoute | None = None,
        offline: OfflineTasks | None = None,
        offline_folder: str | None = None,
        shared: SharedState | None = None,
        side_files: SideFiles | None = None,
        streams: Streams | None = None,
        stream_plan: SegmentPlan | None = None,
    ) -> None:
        """``uploads_dir``: answer PUTs once the body is on local disk and upload in the
        background from there (the ``background_uploads`` option); ``cdn``: the HTTP session
        stored files are read through (:func:`pikdav.pikpak.http.cdn_session`); ``offline``:
        the account's offline downloads, landing in ``offline_folder`` (a path below the
        mount's root; None: PikPak's "My Pack"); ``shared``: the Redis that several instances
        share (changes are refused while it is down, and invalidations reach every
        instance); ``side_files``: where Finder's metadata files are kept (default: in
        memory); ``streams`` and ``stream_plan``: read files by parallel segments so cut,
        within the account's connections (None, or a plan of one connection: through one
        connection)."""
        self.name = name
        self.source = source
        self.read_only = read_only or not isinstance(source, WritableSource)
        self.keep_finder_metadata = finder_metadata == KEEP_LOCAL
        self.side_files: SideFiles = side_files if side_files is not None else SideStore()
        self.shared = shared
        self.quota_ttl = quota_ttl
        self._cdn = cdn
        self.offline = offline
        self.offline_folder = offline_folder.strip("/") if offline_folder else None
        # Links put into the offline folder become tasks (see vfs.offline).
        self.drop = DropFolder(offline) if offline and self.offline_folder else None
        self._drop_id = ""  # the offline folder's id, once it exists
        self.streams = streams
        self.stream_plan = stream_plan
        self._quota: TtlCache[Quota] = TtlCache(1)
        spool = spool or SpoolSettings()
        self.pending = (
            PendingUploads(uploads_dir, shared=shared, channel=name)
            if uploads_dir is not None
            else None
        )
        if uploads_dir is not None:
            # Bodies are spooled where they wait, so taking one over is a rename.
            spool = SpoolSettings(directory=str(uploads_dir), max_size=spool.max_size)
        self.spool = spool
        self.route = route
        self.tree = DriveTree(
            source,
            root_id,
            listing_ttl,
            waiting=self.pending,
            route=route,
            shared=shared,
            channel=name,
            memory=streams.memory if streams is not None else None,
        )
        self.writer: TreeWriter | None = None
        if isinstance(source, WritableSource):
            self.writer = TreeWriter(source, self.tree, use_trash=use_trash)
            if self.pending is not None:
                self.pending.start(self.writer)  # uploads left from before a restart

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
        if self.shared is not None:
            channels = [self.tree.channel]
            if self.pending is not None:
                channels.append(self.pending.channel)
            self.shared.catch_up(channels)

    def resolve(self, names: list[str], *, looking: bool = False) -> Entry | None:
        """The entry at ``names`` below the mount's root, or None. When a client is only
        ``looking`` (GET, HEAD, PROPFIND), a name that clients probe for in every folder
        (``._x``, ``desktop.ini``…) is looked up in cached listings alone, so a probe never
        costs an upstream call (a real file of that name is found once its folder is listed)."""
        probe = looking and bool(names) and is_probe(names[-1])
        if not names and self.source.kind == "share":
            # A share that cannot be read answers at its root too (its refusal, e.g. an
            # expired share), not only when a client lists it.
            self.tree.listing(self.tree.root_id)
        entry = self.tree.resolve("/".join(names), cached_only=probe)
        if entry is None and self.drop is not None and names and not probe:
            parent = self.tree.resolve("/".join(names[:-1]))
            if parent is not None and self.is_drop_folder(parent):
                entry = next((e for e in self.children(parent) if e.name == names[-1]), None)
        return entry

    def children(self, folder: Entry) -> tuple[Entry, ...]:
        found = self.tree.children(folder)
        if self.drop is not None and self.is_drop_folder(folder):
            own, finished = self.drop.entries(folder.id)
            if finished:  # a task's file is new here: PikPak put it there, not a client
                self.tree.folder_changed(folder.id)
                found = self.tree.children(folder)
            found += own
        return found

    def child(self, folder: Entry, name: str) -> Entry | None:
        found = self.tree.child(folder, name)
        if found is None and self.drop is not None and self.is_drop_folder(folder):
            found = next((e for e in self.children(folder) if e.name == name), None)
        return found

    def is_drop_folder(self, folder: Entry) -> bool:
        """Whether ``folder`` is the mount's offline folder, where links become tasks."""
        if self.drop is None or not folder.is_folder or is_own(folder):
            return False
        if not self._drop_id:
            assert self.offline_folder is not None
            found = self.tree.resolve(self.offline_folder)
            if found is None or not found.is_folder:
                return False
            self._drop_id = found.id
        return folder.id == self._drop_id

    def link(self, entry: Entry, *, fresh: bool = False) -> Link:
        if entry.uploading and self.pending is not None:
            self.pending.not_elsewhere(entry)  # PikPak has no link for it yet
        return self.tree.link(entry, fresh=fresh)

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
        host_failed = self.route.failed if self.route is not None else None

        def link(fresh: bool) -> Link:
            return self.link(entry, fresh=fresh)

        where = {"start": start, "end": end, "name": entry.name, "stop": stop}
        plan, streams = self.stream_plan, self.streams
        if streams is None or plan is None or plan.connections < 2:
            return LinkReader(self._cdn, entry.size, link, host_failed=host_failed, **where)
        key = f"{entry.id}:{entry.etag}"  # the content: a replaced file is another
        return streams.open(
            self._cdn, entry.size, link, key=key, plan=plan, host_failed=host_failed, **where
        )

    def quota(self) -> Quota | None:
        """The source's quota (None for a source without one, or when PikPak cannot say)."""
        try:
            return self._quota.fetch("about", lambda: (self.source.quota(), self.quota_ttl))
        except PikPakError as exc:
            # A pause on sign-ins is logged once when it starts, not with every PROPFIND.
            quiet = isinstance(exc, LoginPaused)
            (log.debug if quiet else log.warning)(
                "mount %s: cannot read the quota: %s", self.name, exc
            )
            return None

    def quota_at(self, entry: Entry) -> Quota | None:
        """RFC 4331 quota: only a mount's root has one (elsewhere the property does not
        exist), and only a source with a quota (an own drive) gives one."""
        return self.quota() if self.is_root(entry) else None

    def share_statuses(self) -> list[ShareStatus]:
        """The state of each share this mount shows (one for a share link, one per share of
        a share list; none for an own drive), for the status page and ``pikdav check``."""
        if isinstance(self.source, ShareSource):
            return [self.source.status()]
        if isinstance(self.source, ShareListSource):
            return self.source.statuses()
        return []

    # ------------------------------------------------------------------ side files
    def keeps_locally(self, name: str) -> bool:
        """Whether a file of this name stays on the gateway (Finder's metadata) instead of
        going to PikPak."""
        return self.keep_finder_metadata and is_finder_metadata(name)

    # ------------------------------------------------------------------ writing
    def _writer(self, name: str | None = None) -> TreeWriter:
        if self.read_only or self.writer is None:
            raise ReadOnly("this folder is read-only")
        if self.shared is not None:
            # A change the other instances might not hear of is no change to make.
            self.shared.check()
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
        return SpoolFile(self.spool, size, exact=exact)

    def store(self, folder: Entry, name: str, body: SpoolFile, old: Entry | None) -> Entry:
        """The received ``body`` becomes ``folder/name`` (replacing ``old``): uploaded now,
        or, on a mount with background uploads, taken over to be uploaded from local disk
        (the caller may answer as soon as this returns: the body survives a crash)."""
        writer = self._writer(name)
        dropped = self.drop is not None and is_drop(name) and self.is_drop_folder(folder)
        if not dropped:
            self._not_own(old)  # a link dropped again replaces its receipt
        body.close()
        if not body.complete:
            body.discard()
            raise BodyCut("the upload ended before its announced length")
        if dropped and self.drop is not None:
            try:
                with open(body.path, "rb") as dropped:
                    data = dropped.read(MAX_DROP + 1)
            finally:
                body.discard()  # a drop is never stored: its links become tasks
            entry = self.drop.drop(folder.id, name, data)
            self.tree.folder_changed(folder.id)
            return entry
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
        """The folder at ``path``, made (with its parents) when missing."""
        folder = self.root
        for name in path.split("/"):
            child = self.child(folder, name)
            if child is None:
                child = self.mkdir(folder, name)
            elif not child.is_folder:
                raise NotAllowed(f"{path} is a file, not a folder")
            folder = child
        return folder
