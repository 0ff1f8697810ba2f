"""A mount's view of a drive: paths of display names resolved through cached listings.

PikPak allows two items of one name in a folder (uploads and offline tasks can make them);
a path cannot, so clashing names are disambiguated deterministically: the oldest item keeps
the name, the others get `` (2)``, `` (3)``… before the extension, in creation order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.types import File, Link

from .cache import LinkCache, TtlCache
from .names import MAX_NAME, shown_name, unfit_character

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One item as a path sees it: its display name and the metadata PROPFIND needs."""

    id: str
    name: str
    is_folder: bool
    size: int
    created: float
    modified: float
    etag: str
    mime_type: str

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
            # Listed in every PROPFIND: a type XML cannot carry is not shown (guessed instead).
            item.mime_type if unfit_character(item.mime_type) is None else "",
        )


HIDDEN_PREFIX = ".pikdav-"


@dataclass(frozen=True)
class Listing:
    entries: tuple[Entry, ...]
    by_name: dict[str, Entry]


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
    return Listing(entries, by_name)


def _numbered(name: str, count: int) -> str:
    """``a.txt`` → ``a (2).txt``; shortened to stay within PikPak's name length."""
    stem, dot, ext = name.rpartition(".")
    tag = f" ({count})"
    if not (dot and stem) or len(tag) + 1 + len(ext) >= MAX_NAME:
        stem, ext = name, ""
    else:
        ext = "." + ext
    return stem[: MAX_NAME - len(tag) - len(ext)] + tag + ext


class DriveTree:
    def __init__(
        self, drive: Drive, root_id: str = "", listing_ttl: float = 60.0, max_folders: int = 4096
    ) -> None:
        self.drive = drive
        self.root_id = root_id
        self.listing_ttl = listing_ttl
        self.listings: TtlCache[Listing] = TtlCache(max_folders)
        self.links = LinkCache()
        self.pending = None  # PendingUploads, when the mount uploads in the background

    @property
    def root(self) -> Entry:
        return Entry(self.root_id, "", True, 0, 0.0, 0.0, f"root-{self.root_id}", "")

    # ------------------------------------------------------------------ reading
    def listing(self, folder_id: str) -> Listing:
        def load() -> tuple[Listing, float]:
            return disambiguate(self.drive.iter_folder(folder_id)), self.listing_ttl

        return self.listings.fetch(folder_id, load)

    def children(self, folder: Entry) -> tuple[Entry, ...]:
        entries = self.listing(folder.id).entries
        waiting = self.pending.in_folder(folder.id) if self.pending is not None else {}
        if not waiting:
            return entries
        merged = {e.name: e for e in entries} | waiting  # a waiting upload is the newest
        return tuple(sorted(merged.values(), key=lambda e: e.name))

    def child(self, folder: Entry, name: str, *, stored_only: bool = False) -> Entry | None:
        if self.pending is not None and not stored_only:
            waiting = self.pending.in_folder(folder.id).get(name)
            if waiting is not None:
                return waiting
        return self.listing(folder.id).by_name.get(name)

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
            if cached_only:
                listing = self.listings.get(entry.id)
                found = listing.by_name.get(part) if listing is not None else None
                if self.pending is not None:
                    found = self.pending.in_folder(entry.id).get(part, found)
            else:
                found = self.child(entry, part)
            if found is None:
                return None
            entry = found
        return entry

    def link(self, entry: Entry, *, fresh: bool = False) -> Link:
        if fresh:
            self.links.forget(entry.id)
        return self.links.fetch(entry.id, lambda: self.drive.download_link(entry.id))

    # ------------------------------------------------------------------ invalidation
    def folder_changed(self, folder_id: str) -> None:
        self.listings.invalidate(folder_id)

    def item_changed(self, entry: Entry, parent_id: str) -> None:
        self.links.forget(entry.id)
        self.listings.invalidate(parent_id)
        if entry.is_folder:
            self.listings.invalidate(entry.id)

    def forget_everything(self) -> None:
        self.listings.invalidate_all()
