"""The parts a mount is put together from (in :mod:`pikdav.assembly`): how it reads stored
files (:class:`Reading`) and, for a mount that may change its source, how it writes
(:class:`Writing`). The drop folder of offline downloads is a third part, in
:mod:`pikdav.vfs.offline`.

A mount holds the parts it has and asks them; it never asks what kind its source is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import BinaryIO

from pikdav.pikpak.cdn import CdnSession, LinkReader, Stopping
from pikdav.pikpak.links import LinkRoute
from pikdav.pikpak.memory import MemoryBudget
from pikdav.pikpak.retry import LEFTOVER_SWEEP
from pikdav.pikpak.segments import SegmentPlan, Streams
from pikdav.pikpak.types import Link

from .disk import DiskCache, content_key
from .names import is_finder_metadata
from .pending import PendingUploads
from .sidefiles import KEEP_LOCAL, SideFiles, SideStore
from .source import WritableSource
from .spool import SpoolSettings
from .temporaries import Temporaries
from .tree import DriveTree, Entry
from .writer import TreeWriter

log = logging.getLogger(__name__)


class Reading:
    """How a mount reads stored files: through ``cdn`` (the HTTP session of
    :func:`pikdav.pikpak.http.cdn_session`), its links rewritten by ``route`` (None: as
    PikPak gives them), by parallel segments with ``streams`` after ``plan`` (None, or a plan
    of one connection: through one connection), its listings and blocks kept on ``disk``
    (listings under ``disk_scope``). ``same_bytes_by_hash``: a file's bytes are those its
    content hash names (not a transcoded view), so its blocks are kept by hash."""

    def __init__(
        self,
        cdn: CdnSession,
        *,
        route: LinkRoute | None = None,
        streams: Streams | None = None,
        plan: SegmentPlan | None = None,
        disk: DiskCache | None = None,
        disk_scope: str = "",
        same_bytes_by_hash: bool = False,
    ) -> None:
        self.cdn = cdn
        self.route = route
        self.streams = streams
        self.plan = plan
        self.disk = disk
        self.disk_scope = disk_scope
        self.same_bytes_by_hash = same_bytes_by_hash

    @property
    def memory(self) -> MemoryBudget | None:
        """The memory budget the streams and listing caches hold within."""
        return self.streams.memory if self.streams is not None else None

    @property
    def segmented(self) -> bool:
        """Whether files are read by parallel segments (and their blocks cached)."""
        return self.streams is not None and self.plan is not None and self.plan.connections > 1

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
        if not self.segmented or self.streams is None or self.streams.cache is None:
            return False
        return self.streams.cache.find(self.content_key(entry), start) is not None

    def open(
        self,
        entry: Entry,
        link: Callable[[bool], Link],
        start: int = 0,
        end: int | None = None,
        stop: Stopping | None = None,
    ) -> BinaryIO:
        """The stored file's bytes from ``start`` to ``end`` (exclusive; None: to its end)
        from PikPak's download servers, by the link ``link(fresh)`` gives (ended at once by
        ``stop``)."""
        host_failed = self.route.failed if self.route is not None else None
        where = {"start": start, "end": end, "name": entry.name, "stop": stop}
        if not self.segmented or self.streams is None or self.plan is None:
            return LinkReader(self.cdn, entry.size, link, host_failed=host_failed, **where)
        key = self.content_key(entry)  # the content: a replaced file is another
        return self.streams.open(
            self.cdn, entry.size, link, key=key, plan=self.plan, host_failed=host_failed, **where
        )


class Writing:
    """How a mount changes its source: deleted items go to the trash or, without
    ``use_trash``, for good; an upload's body arrives in a spool file (``spool``); with
    ``pending`` (the ``background_uploads`` option) a PUT is answered once its body is on
    local disk, and it goes up in the background from there; ``temporaries`` is where uploads
    write down their hidden temporaries on PikPak, so that a stop or the next start removes
    those left (None: nowhere, for a command beside a running server); Finder's metadata
    files stay on the gateway, in ``side_files`` (default: in memory), when
    ``finder_metadata`` keeps them locally."""

    def __init__(
        self,
        *,
        use_trash: bool = True,
        spool: SpoolSettings | None = None,
        pending: PendingUploads | None = None,
        temporaries: Temporaries | None = None,
        finder_metadata: str = KEEP_LOCAL,
        side_files: SideFiles | None = None,
    ) -> None:
        self.use_trash = use_trash
        spool = spool or SpoolSettings()
        if pending is not None:
            # Bodies are spooled where they wait, so taking one over is a rename.
            spool = SpoolSettings(directory=str(pending.directory), max_size=spool.max_size)
        self.spool = spool
        self.pending = pending
        self.temporaries = temporaries
        self.keep_finder_metadata = finder_metadata == KEEP_LOCAL
        self.side_files: SideFiles = side_files if side_files is not None else SideStore()

    def keeps_locally(self, name: str) -> bool:
        """Whether a file of this name stays on the gateway (Finder's metadata) instead of
        going to PikPak."""
        return self.keep_finder_metadata and is_finder_metadata(name)

    def start(self, source: WritableSource, tree: DriveTree) -> TreeWriter:
        """The writer of ``source`` seen as ``tree``; the temporaries an earlier run left
        go first, then the background uploads left from before a restart resume."""
        writer = TreeWriter(source, tree, use_trash=self.use_trash, temporaries=self.temporaries)
        if self.temporaries is not None and self.temporaries.left:
            threading.Thread(
                target=self._sweep_then_resume, args=(writer,), name="pikdav-leftovers",
                daemon=True,
            ).start()  # fmt: skip
        elif self.pending is not None:
            self.pending.start(writer)
        return writer

    def _sweep_then_resume(self, writer: TreeWriter) -> None:
        assert self.temporaries is not None
        try:
            swept = self.temporaries.sweep()
        finally:
            if self.pending is not None:
                self.pending.start(writer)  # each under a new temporary
        for attempt in range(1, LEFTOVER_SWEEP.attempts):  # PikPak could not be asked
            if swept:
                return
            LEFTOVER_SWEEP.pause(attempt)
            swept = self.temporaries.sweep()

    def give_up(self) -> None:
        """At a stop: the uploads still going up are given up, their temporaries deleted."""
        if self.temporaries is not None:
            self.temporaries.give_up()
