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
import threading
from pathlib import Path
from typing import BinaryIO

from pikdav.pikpak.cdn import CdnSession, LinkReader, Stopping
from pikdav.pikpak.errors import LoginPaused, PikPakError
from pikdav.pikpak.links import LinkRoute
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.retry import LEFTOVER_SWEEP
from pikdav.pikpak.segments import SegmentPlan, Streams
from pikdav.pikpak.types import Link, Quota, Task

from .cache import TtlCache
from .cluster import Cluster
from .disk import DiskCache, content_key, is_away
from .errors import BodyCut, FromCache, MountError, NotAllowed, ReadOnly, StillUploading
from .names import HIDDEN_PREFIX, is_finder_metadata, is_probe, unfit_character
from .offline import (
    LINKS_PER_FILE,
    LINKS_PER_MINUTE,
    MAX_DROP,
    DropFolder,
    is_drop,
    is_own,
)
from .pending import PendingUploads
from .share import ShareStatus
from .sidefiles import KEEP_LOCAL, SideFiles, SideStore
from .source import Source, WritableSource
from .spool import SpoolFile, SpoolSettings
from .temporaries import Temporaries
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
        offline_links_per_file: int = LINKS_PER_FILE,
        offline_links_per_minute: int = LINKS_PER_MINUTE,
        cluster: Cluster | None = None,
        side_files: SideFiles | None = None,
        streams: Streams | None = None,
        stream_plan: SegmentPlan | None = None,
        finder_hints: bool = True,
        temporaries: Temporaries | None = None,
        disk: DiskCache | None = None,
        disk_scope: str = "",
        same_bytes_by_hash: bool = False,
    ) -> None:
        """``uploads_dir``: answer PUTs once the body is on local disk and upload in the
        background from there (the ``background_uploads`` option); ``cdn``: the HTTP session
        stored files are read through (:func:`pikdav.pikpak.http.cdn_session`); ``offline``:
        the account's offline downloads, landing in ``offline_folder`` (a path below the
        mount's root; None: PikPak's "My Pack"), a dropped file of links starting at most
        ``offline_links_per_file`` tasks and a user at most ``offline_links_per_minute`` a
        minute; ``cluster``: the Redis that several instances
        share (changes are refused while it is down, and invalidations reach every
        instance); ``side_files``: where Finder's metadata files are kept (default: in
        memory); ``streams`` and ``stream_plan``: read files by parallel segments so cut,
        within the account's connections (None, or a plan of one connection: through one
        connection); ``finder_hints``: Finder's hint files (no Spotlight, no QuickLook
        thumbnails) are answered at the mount's root (see :mod:`pikdav.dav.clients`);
        ``temporaries``: where uploads write down their hidden temporaries on PikPak, so that
        a stop or the next start removes those left (None: nowhere, for a command beside a
        running server); ``disk``: the disk cache of listings and blocks (its listings kept
        under ``disk_scope``); ``same_bytes_by_hash``: a file's bytes are those its content
        hash names (not a transcoded view), so its blocks are kept by hash."""
        self.name = name
        self.finder_hints = finder_hints
        self.same_bytes_by_hash = same_bytes_by_hash
        self.source = source
        # Someone else's content (a share): nothing of ours is written onto it, not even a
        # dead property or a lock.
        self.foreign = not isinstance(source, WritableSource)
        self.read_only = read_only or self.foreign
        self.keep_finder_metadata = finder_metadata == KEEP_LOCAL
        self.side_files: SideFiles = side_files if side_files is not None else SideStore()
        self.cluster = cluster
        self.quota_ttl = quota_ttl
        self._cdn = cdn
        self.offline = offline
        self.offline_folder = offline_folder.strip("/") if offline_folder else None
        # Links put into the offline folder become tasks (see vfs.offline).
        self.drop = (
            DropFolder(
                offline,
                links_per_file=offline_links_per_file,
                links_per_minute=offline_links_per_minute,
            )
            if offline and self.offline_folder
            else None
        )
        self._drop_id = ""  # the offline folder's id, once it exists
        self._drop_made = threading.Lock()  # held while the offline folder is made
        self._drop_problem = ""  # why it could not be made, as last logged
        self.streams = streams
        self.stream_plan = stream_plan
        self._quota: TtlCache[Quota] = TtlCache(1)
        spool = spool or SpoolSettings()
        self.pending = (
            PendingUploads(uploads_dir, cluster=cluster, channel=name)
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
            cluster=cluster,
            channel=name,
            disk=disk,
            scope=disk_scope,
            memory=streams.memory if streams is not None else None,
        )
        self.writer: TreeWriter | None = None
        self.temporaries = temporaries
        if isinstance(source, WritableSource):
            self.writer = TreeWriter(
                source, self.tree, use_trash=use_trash, temporaries=temporaries
            )
            if temporaries is not None and temporaries.left:
                # The temporaries an earlier run left go first; then the background uploads
                # left from before a restart resume, each under a new one.
                threading.Thread(
                    target=self._sweep_then_resume, name="pikdav-leftovers", daemon=True
                ).start()
            elif self.pending is not None:
                self.pending.start(self.writer)  # uploads left from before a restart

    def _sweep_then_resume(self) -> None:
        assert self.temporaries is not None and self.writer is not None
        try:
            swept = self.temporaries.sweep()
        finally:
            if self.pending is not None:
                self.pending.start(self.writer)
        for attempt in range(1, LEFTOVER_SWEEP.attempts):  # PikPak could not be asked
            if swept:
                return
            LEFTOVER_SWEEP.pause(attempt)
            swept = self.temporaries.sweep()

    def give_up_uploads(self) -> None:
        """At a stop: the uploads still going up are given up, their temporaries deleted."""
        if self.temporaries is not None:
            self.temporaries.give_up()

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
        if not probe and self.drop is not None and not self._drop_id:
            self._make_offline_folder()
        if not names and self.source.refuses_whole:
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

    def _make_offline_folder(self) -> None:
        """The offline folder exists from the mount's first use: made when missing, so that
        a client sees where to drop its links (a PUT into a missing folder would get 409)."""
        if self.read_only or not self._drop_made.acquire(timeout=60):
            return
        try:
            if self._drop_id:
                return
            assert self.offline_folder is not None
            found = self.tree.resolve(self.offline_folder)
            if found is None:
                found = self._folder_for(self.offline_folder)
                log.info("mount %s: made the offline folder %s", self.name, self.offline_folder)
            if found.is_folder:
                self._drop_id = found.id
        except (MountError, PikPakError) as exc:
            problem = str(exc.problem if isinstance(exc, PikPakError) else exc)
            if problem != self._drop_problem:  # once per problem, not once per request
                self._drop_problem = problem
                log.warning(
                    "mount %s: cannot make the offline folder %s: %s (tried again at the next "
                    "request)",
                    self.name,
                    self.offline_folder,
                    problem,
                )
        finally:
            self._drop_made.release()

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

    def content_key(self, entry: Entry) -> str:
        """What the block caches call the entry's bytes: its content hash when that names
        them (a renamed file or a copy finds the same blocks), else its id and etag (a
        replaced file is another)."""
        if self.same_bytes_by_hash and entry.hash and not entry.uploading:
            return content_key(entry.hash, entry.size)
        return f"{entry.id}:{entry.etag}"

    def cached(self, entry: Entry, start: int = 0) -> bool:
        """Whether the byte at ``start`` of the entry is in a block cache (memory or disk):
        a read from there needs no link."""
        streams, plan = self.streams, self.stream_plan
        if streams is None or streams.cache is None or plan is None or plan.connections < 2:
            return False
        return streams.cache.find(self.content_key(entry), start) is not None

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
        key = self.content_key(entry)  # the content: a replaced file is another
        return streams.open(
            self._cdn, entry.size, link, key=key, plan=plan, host_failed=host_failed, **where
        )

    def quota(self) -> Quota | None:
        """The source's quota (None for a source without one, or when PikPak cannot say)."""
        if self.tree.outage.active and not self.tree.outage.try_now():
            return self._quota.get("about")  # PikPak is away: not asked again yet
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
        return self.source.share_statuses()

    # ------------------------------------------------------------------ side files
    def keeps_locally(self, name: str) -> bool:
        """Whether a file of this name stays on the gateway (Finder's metadata) instead of
        going to PikPak."""
        return self.keep_finder_metadata and is_finder_metadata(name)

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
        return SpoolFile(self.spool, size, exact=exact)

    def store(
        self, folder: Entry, name: str, body: SpoolFile, old: Entry | None, user: str = ""
    ) -> Entry:
        """The received ``body`` becomes ``folder/name`` (replacing ``old``): uploaded now,
        or, on a mount with background uploads, taken over to be uploaded from local disk
        (the caller may answer as soon as this returns: the body survives a crash).
        ``user``: who put it (a drop of links counts against that user's minute)."""
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
            entry = self.drop.drop(folder.id, name, data, user)
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
