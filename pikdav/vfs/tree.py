"""A mount's view of a drive: paths of display names resolved through cached listings.

PikPak allows two items of one name in a folder (uploads and offline tasks can make them);
a path cannot, so clashing names are disambiguated deterministically: the oldest item keeps
the name, the others get `` (2)``, `` (3)``… before the extension, in creation order.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pikdav.pikpak.errors import PikPakError
from pikdav.pikpak.links import LinkRoute
from pikdav.pikpak.memory import MemoryBudget, hand_back_freed_memory
from pikdav.pikpak.retry import failures_shown_to
from pikdav.pikpak.types import File, Link

from .cache import LinkCache, TtlCache
from .cluster import Cluster
from .disk import DiskCache, Outage, Stored, is_away
from .names import HIDDEN_PREFIX, MAX_NAME, content_type, same_name_key, shown_name
from .source import Source

log = logging.getLogger(__name__)


class _AwayMeanwhile(Exception):
    """A fetch given up before asking: PikPak went away while it waited its turn."""


LISTING_TTL = 60.0  # seconds a folder's listing is served from the cache
ENTRY_BYTES = 512  # about what one listed item weighs in memory (measured with tracemalloc)
BIG_LISTING = 1000  # items: the pages of PikPak's answer freed after it are worth handing back


@dataclass(frozen=True)
class Entry:
    """One item as a path sees it: its display name and the metadata PROPFIND needs.

    ``uploading``: the content is still on its way to PikPak (a background upload); ``id``
    is then the waiting upload's, not a PikPak item's."""

    id: str
    name: str
    is_folder: bool
    size: int
    created: float
    modified: float
    etag: str
    mime_type: str
    uploading: bool = False
    hash: str = ""  # PikPak's content hash (GCID); "" when PikPak gave none

    @property
    def content_type(self) -> str:
        """What GET and PROPFIND say the content is (folders have none)."""
        return "" if self.is_folder else content_type(self.name, self.mime_type)

    @classmethod
    def from_file(cls, item: File, name: str | None = None) -> Entry:
        return cls(
            item.id,
            name or item.name,
            item.is_folder,
            item.size,
            item.created,
            item.modified,
            item.hash or f"{item.id}-{item.size}",
            item.mime_type,
            hash=item.hash,
        )


@dataclass(frozen=True)
class Listing:
    entries: tuple[Entry, ...]
    by_name: dict[str, Entry]
    # The same entries by NFC spelling (see names.same_name_key): a name PikPak holds in NFD
    # is found by its NFC spelling too; where two stored names are one under NFC, the one
    # spelled exactly as asked wins, else the oldest.
    by_key: dict[str, Entry] = field(default_factory=dict)

    def named(self, name: str) -> Entry | None:
        """The entry of ``name``, spelled exactly so or in another Unicode normalisation."""
        found = self.by_name.get(name)
        return found if found is not None else self.by_key.get(same_name_key(name))

    def stored(self) -> list[dict]:
        """The entries as the disk cache keeps them."""
        return [dataclasses.asdict(e) for e in self.entries]

    @classmethod
    def from_stored(cls, stored: Stored) -> Listing:
        entries = tuple(Entry(**e) for e in stored.entries)
        return cls(entries, {e.name: e for e in entries})


def disambiguate(files: Iterable[File]) -> Listing:
    items = [
        f
        for f in sorted(files, key=lambda f: (f.created, f.id))
        if not f.name.startswith(HIDDEN_PREFIX)
    ]  # the gateway's own temporary names
    # Names are shown as a path can carry them (see names.py), then every shown name is
    # reserved first; the second and later items of a name get the first free " (n)" (a
    # real item may carry such a name already).
    shown = {f.id: shown_name(f.name) for f in items}
    taken = set(shown.values())
    seen: set[str] = set()
    by_name: dict[str, Entry] = {}
    for item in items:
        name = shown[item.id]
        if name in seen:
            count = 2
            while (numbered := _numbered(shown[item.id], count)) in taken:
                count += 1
            name = numbered
            taken.add(name)
        seen.add(shown[item.id])
        by_name[name] = Entry.from_file(item, name)
    entries = tuple(sorted(by_name.values(), key=lambda e: e.name))
    by_key: dict[str, Entry] = {}
    for entry in by_name.values():  # oldest first
        by_key.setdefault(same_name_key(entry.name), entry)
    return Listing(entries, by_name, by_key)


def _numbered(name: str, count: int) -> str:
    """``a.txt`` → ``a (2).txt``; shortened to stay within PikPak's name length."""
    stem, dot, ext = name.rpartition(".")
    tag = f" ({count})"
    if not (dot and stem) or len(tag) + 1 + len(ext) >= MAX_NAME:
        stem, ext = name, ""
    else:
        ext = "." + ext
    return stem[: MAX_NAME - len(tag) - len(ext)] + tag + ext


def _named_in(entries: Mapping[str, Entry], name: str) -> Entry | None:
    """``name`` in ``entries`` (by name), in any Unicode normalisation of it."""
    found = entries.get(name)
    if found is None and entries:
        key = same_name_key(name)
        found = next((e for n, e in entries.items() if same_name_key(n) == key), None)
    return found


class Waiting(Protocol):
    """Uploads still on their way to PikPak, shown in their folders meanwhile."""

    def in_folder(self, folder_id: str) -> Mapping[str, Entry]: ...


class DriveTree:
    """A mount's items as paths: cached listings of its source, with waiting uploads shown
    in their folders (a waiting upload is newer than a stored item of its name).

    With ``cluster`` (several instances on one Redis), every invalidation is also sent to the
    other instances on the channel ``changes:<channel>``, and theirs are applied here: each
    instance drops exactly the folders and links a write touched, wherever it was made."""

    def __init__(
        self,
        source: Source,
        root_id: str = "",
        listing_ttl: float = LISTING_TTL,
        *,
        waiting: Waiting | None = None,
        max_folders: int = 4096,
        route: LinkRoute | None = None,
        cluster: Cluster | None = None,
        channel: str = "",
        disk: DiskCache | None = None,
        scope: str = "",
        memory: MemoryBudget | None = None,
    ) -> None:
        """``route``: how links are rewritten when handed out (download domain, CDN node);
        ``disk``: where listings are kept across restarts and served from while PikPak is
        away, under ``scope`` (the mount and what it shows); ``memory``: the gateway's budget
        the cached listings and links are held within."""
        self.source = source
        self.route = route
        self.root_id = root_id
        self.listing_ttl = listing_ttl
        self.waiting = waiting
        self.listings: TtlCache[Listing] = TtlCache(
            max_folders,
            memory=memory,
            weigh=lambda listing: ENTRY_BYTES * (1 + len(listing.entries)),
        )
        self.links = LinkCache(memory=memory)
        self.cluster = cluster
        self.channel = f"changes:{channel}"
        self.disk = disk
        self.scope = scope or channel
        self.outage = Outage(channel)
        self._started = time.time()  # listings kept before this are from an earlier run
        # When each folder last changed here (a write, a notice), and everything at once: a
        # listing on disk whose fetch began before that may predate the change (a load that
        # raced the change writes it before it sees the change and drops it again).
        self._changed_at: dict[str, float] = {}
        self._all_changed_at = 0.0
        self._revalidating: set[str] = set()
        self._revalidators = threading.BoundedSemaphore(4)
        self._lock = threading.Lock()
        if cluster is not None:
            cluster.on_notice(self.channel, self._apply_notice)
            cluster.on_return(self.forget_everything)

    @property
    def root(self) -> Entry:
        return Entry(self.root_id, "", True, 0, 0.0, 0.0, f"root-{self.root_id}", "")

    # ------------------------------------------------------------------ reading
    def listing(self, folder_id: str) -> Listing:
        """The folder's listing: from memory while fresh; with a disk cache, a listing kept
        on disk is served while fresh (a restart within ``listing_ttl``), at once while it is
        revalidated in the background (it is from before a restart), and when PikPak is
        away (up to ``serve_stale_for``). Nothing stale is served when PikPak answers."""
        if self.disk is None:
            return self.listings.fetch(folder_id, self._loader(folder_id))
        found = self.listings.get(folder_id)
        if found is not None:
            self.listings.hits += 1
            return found
        stamp = self.listings.stamp(folder_id)
        kept = self.disk.listing(self.scope, folder_id)
        try:
            listing = Listing.from_stored(kept) if kept is not None else None
        except TypeError:  # kept by a version whose entries had other fields
            listing = None
        at = kept.at if kept is not None else 0.0
        if listing is not None and at <= self._last_change(folder_id):
            listing = None  # fetched before the folder's last change here: never served
        age = time.time() - at
        if listing is not None and 0 <= age < self._ttl(folder_id):
            self.listings.insert_unless_changed(
                folder_id, listing, self._ttl(folder_id) - age, stamp
            )
            self.listings.hits += 1
            return listing
        if listing is None or age > self.disk.serve_stale_for:
            return self.listings.fetch(folder_id, self._loader(folder_id))
        if self.outage.active or at < self._started:
            self.disk.stale_answers += 1
            self._revalidate(folder_id)
            return listing
        if self.outage.doubted:
            self.disk.stale_answers += 1  # the doubting fetch decides; this folder is asked later
            return listing
        return self._fetch_or_stale(folder_id, listing)

    def _fetch_or_stale(self, folder_id: str, kept: Listing) -> Listing:
        """Fetch the folder while the listing ``kept`` on disk could answer instead: PikPak's
        answer when it gives one; ``kept`` as soon as PikPak fails in a way that says it may
        be away (refused, timed out, 5xx, 429, "too frequent"). The fetch's retries go on in
        the background and decide whether PikPak is away; other folders kept on disk are
        served from there meanwhile. A client waits for one failure, not for all retries."""
        settled = threading.Event()  # the fetch ended, or PikPak failed once
        left = threading.Event()  # the caller has its answer from disk
        outcome: dict[str, Any] = {}
        doubting = False
        load = self._loader(folder_id)

        def seen(exc: BaseException | None) -> None:
            nonlocal doubting
            if exc is None:  # a retry was answered: PikPak is there
                if doubting:
                    doubting = False
                    self.outage.settle()
            elif is_away(exc):
                if not doubting:
                    doubting = True
                    self.outage.doubt(exc)
                settled.set()

        def load_unless_away() -> tuple[Listing, float]:
            if self.outage.active:
                raise _AwayMeanwhile  # PikPak went away while this one waited its turn
            return load()

        def run() -> None:
            try:
                with failures_shown_to(seen):
                    outcome["listing"] = self.listings.fetch(folder_id, load_unless_away)
            except _AwayMeanwhile:
                pass
            except BaseException as exc:  # handed to the waiting caller, or logged
                outcome["error"] = exc
                self._fetched_too_late(folder_id, exc, answered=left.is_set())
            finally:
                if doubting:
                    self.outage.settle()
                settled.set()

        threading.Thread(target=run, name="fetch listing", daemon=True).start()
        # Another caller's fetch of the folder (or of another one) may be the one that meets
        # PikPak's failure: this one answers from disk as soon as the outage is in doubt.
        while not settled.wait(0.1):
            if self.outage.doubted or self.outage.active:
                break
        found = outcome.get("listing")
        if found is not None:
            return found
        error = outcome.get("error")
        if error is not None and not (isinstance(error, PikPakError) and is_away(error)):
            raise error
        left.set()
        self.disk.stale_answers += 1
        return kept

    def _fetched_too_late(self, folder_id: str, exc: BaseException, *, answered: bool) -> None:
        """A background fetch of :meth:`_fetch_or_stale` failed: PikPak away begins the
        outage; otherwise, once the caller had its answer from disk, the failure is logged
        and a folder PikPak answered about (gone, say) is no longer kept on disk."""
        if isinstance(exc, PikPakError) and is_away(exc):
            self.outage.began(exc)
        elif answered:
            if isinstance(exc, PikPakError) and self.disk is not None:
                self.disk.forget_listing(self.scope, folder_id)
            log.info("fetching a listing served from disk meanwhile: %s", exc)

    def _ttl(self, folder_id: str) -> float:
        # A source may keep some folders fresher (a share list's file may change).
        return self.source.listing_ttl_of(folder_id, self.listing_ttl)

    def _loader(self, folder_id: str):
        def load() -> tuple[Listing, float]:
            stamp = self.listings.stamp(folder_id)
            at = time.time()
            listing = disambiguate(self.source.list_folder(folder_id))
            self.outage.ended()
            if len(listing.entries) >= BIG_LISTING:
                hand_back_freed_memory()  # and what rendering the answer frees just after
            if self.disk is not None:
                self.disk.keep_listing(self.scope, folder_id, at, listing.stored())
                if self.listings.stamp(folder_id) != stamp:
                    # Changed while it was being fetched: the listing may predate the change.
                    self.disk.forget_listing(self.scope, folder_id)
            return listing, self._ttl(folder_id)

        return load

    def _revalidate(self, folder_id: str) -> None:
        """Fetch the folder again in the background (once at a time per folder, four
        folders at a time; while PikPak is away, one try every few seconds)."""
        probe = self.outage.active  # this one tries whether PikPak is back
        if probe and not self.outage.try_now():
            return
        with self._lock:
            if folder_id in self._revalidating:
                return
            self._revalidating.add(folder_id)

        def run() -> None:
            try:
                with self._revalidators:
                    if self.outage.active and not probe:
                        return  # PikPak went away while this one waited: others try
                    self.listings.fetch(folder_id, self._loader(folder_id))
            except PikPakError as exc:
                if is_away(exc):
                    self.outage.began(exc)
                elif self.disk is not None:
                    # PikPak answered, and not with a listing (the folder is gone, say).
                    self.disk.forget_listing(self.scope, folder_id)
                log.info("revalidating a listing: %s", exc)
            except Exception:
                log.exception("revalidating a listing failed")
            finally:
                with self._lock:
                    self._revalidating.discard(folder_id)

        threading.Thread(target=run, name="revalidate listing", daemon=True).start()

    def _waiting_in(self, folder_id: str) -> Mapping[str, Entry]:
        return self.waiting.in_folder(folder_id) if self.waiting is not None else {}

    def children(self, folder: Entry) -> tuple[Entry, ...]:
        entries = self.listing(folder.id).entries
        waiting = self._waiting_in(folder.id)
        if not waiting:
            return entries
        merged = {e.name: e for e in entries} | dict(waiting)
        return tuple(sorted(merged.values(), key=lambda e: e.name))

    def child(self, folder: Entry, name: str, *, stored_only: bool = False) -> Entry | None:
        return self._named(folder, name, cached_only=False, stored_only=stored_only)

    def _named(
        self, folder: Entry, name: str, *, cached_only: bool, stored_only: bool = False
    ) -> Entry | None:
        if not stored_only and (waiting := _named_in(self._waiting_in(folder.id), name)):
            return waiting
        listing = self.listings.get(folder.id) if cached_only else self.listing(folder.id)
        return listing.named(name) if listing is not None else None

    def resolve(self, path: str, *, cached_only: bool = False) -> Entry | None:
        """``/a/b/c`` (relative to the mount) → entry, or None. A ``.`` or ``..`` segment
        resolves to nothing: a path never names its folder or escapes it.
        With ``cached_only`` no listing is fetched: what is not cached is not found."""
        entry = self.root
        for part in path.split("/"):
            if part == "":
                continue
            if part in (".", "..") or not entry.is_folder:
                return None
            found = self._named(entry, part, cached_only=cached_only)
            if found is None:
                return None
            entry = found
        return entry

    def link(self, entry: Entry, *, fresh: bool = False) -> Link:
        """The entry's download link, cached for as long as it is usable (the one
        link-freshness rule: :meth:`Link.usable_for`); ``fresh`` asks PikPak again. The cache
        keeps PikPak's link; the route rewrites it each time it is handed out, so a host
        that failed is left out from the next link on (a redirect's too)."""
        if fresh:
            self.links.forget(entry.id)
        link = self.links.fetch(entry.id, lambda: self.source.link(entry.id))
        return self.route.route(link) if self.route is not None else link

    def cached_link(self, entry: Entry) -> Link | None:
        """The entry's link if one is kept (PikPak is not asked), routed as :meth:`link`."""
        link = self.links.cached(entry.id)
        if link is None or self.route is None:
            return link
        return self.route.route(link)

    # ------------------------------------------------------------------ invalidation
    def folder_changed(self, folder_id: str) -> None:
        self._invalidate([folder_id], [])

    def item_changed(self, entry: Entry, parent_id: str) -> None:
        folders = [parent_id, entry.id] if entry.is_folder else [parent_id]
        self._invalidate(folders, [entry.id])

    def _last_change(self, folder_id: str) -> float:
        return max(self._changed_at.get(folder_id, 0.0), self._all_changed_at)

    def _changed(self, folder_id: str) -> None:
        now = time.time()
        if len(self._changed_at) >= 100_000:
            # Bounded: when full, every folder counts as changed now (each disk listing is
            # fetched again once), which is never wrong, only a little slower.
            self._changed_at.clear()
            self._all_changed_at = now
        self._changed_at[folder_id] = now

    def forget_everything(self) -> None:
        self._all_changed_at = time.time()
        self.listings.invalidate_all()
        self.links.forget_all()
        if self.disk is not None:
            self.disk.forget_listings(self.scope)

    def _invalidate(self, folders: list[str], links: list[str]) -> None:
        self._drop(folders, links)
        if self.cluster is not None:
            self.cluster.notify(self.channel, {"folders": folders, "links": links})

    def _drop(self, folders: Iterable[str], links: Iterable[str]) -> None:
        for folder_id in folders:
            self._changed(folder_id)
            self.listings.invalidate(folder_id)
            if self.disk is not None:
                self.disk.forget_listing(self.scope, folder_id)
        for file_id in links:
            self.links.forget(file_id)

    def _apply_notice(self, message: Mapping[str, object]) -> None:
        """Another instance changed these folders and items: drop what we cached of them."""
        folders, links = message.get("folders"), message.get("links")
        self._drop(
            [f for f in folders if isinstance(f, str)] if isinstance(folders, list) else [],
            [f for f in links if isinstance(f, str)] if isinstance(links, list) else [],
        )
