"""Many shares in one mount: a list file whose every entry is a share, shown as a folder.

The file takes either lines ``name = link [pass code]`` (``#`` starts a comment; a name may
be ``category/name``), or the YAML of the batch tool linked from OpenList's page: categories
of ``name: link`` pairs (a pair at the top is a share without a category). A line that
cannot be read is reported with its number and skipped; the others are served. The file is
read again when it changes, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from pikdav.pikpak.errors import NotFound
from pikdav.pikpak.shares import SharedFolder, ShareLink, parse_share_link
from pikdav.pikpak.types import PHASE_COMPLETE, File, Link, Quota

from .share import ShareSource, ShareStatus

log = logging.getLogger(__name__)

LIST_TTL = 1.0  # seconds the list's own folders are served before the file is looked at again
_LINE = re.compile(r"^(?P<name>[^=]+?)\s*=\s*(?P<link>\S+)(?:\s+(?P<pass_code>\S+))?\s*$")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class ListedShare:
    """One share of the list: its folder (``category/name``), link and line number."""

    path: tuple[str, ...]
    link: ShareLink
    line: int

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def key(self) -> str:
        # Share and folder ids are letters, digits, - and _: the key is safe inside an id.
        # The pass code is part of it: two lines naming one share with different pass codes
        # are two sources, each proving only its own code to PikPak.
        code = hashlib.sha256(self.link.pass_code.encode()).hexdigest()[:12]
        return f"{self.link.share_id}.{self.link.folder_id}.{code}"


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def read_share_list(text: str) -> tuple[list[ListedShare], list[BadLine]]:
    """The shares of a list file's ``text``, and the lines that could not be read."""
    meaningful = [ln.strip() for ln in text.splitlines() if ln.strip() and not _comment(ln)]
    if any("=" in ln and ":" not in ln.partition("=")[0] for ln in meaningful):
        found, bad = _read_lines(text)
    else:
        found, bad = _read_yaml(text)
    return _unique(found, bad)


def _comment(line: str) -> bool:
    return line.strip().startswith("#")


def _read_lines(text: str) -> tuple[list[ListedShare], list[BadLine]]:
    found, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            bad.append(BadLine(number, "expected 'name = link [pass code]'"))
            continue
        entry = _entry(
            match["name"].split("/"), match["link"], match["pass_code"] or "", number, bad
        )
        if entry is not None:
            found.append(entry)
    return found, bad


def _read_yaml(text: str) -> tuple[list[ListedShare], list[BadLine]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        return [], [BadLine(mark.line + 1 if mark else 1, f"YAML: {exc.problem}")]
    except yaml.YAMLError as exc:
        return [], [BadLine(1, f"YAML: {exc}")]
    if root is None:
        return [], []
    if not isinstance(root, yaml.MappingNode):
        return [], [BadLine(root.start_mark.line + 1, "expected 'name: link' pairs")]
    found: list[ListedShare] = []
    bad: list[BadLine] = []
    for key, value in root.value:
        if isinstance(value, yaml.MappingNode):  # a category of shares
            for name, link in value.value:
                _yaml_pair([_scalar(key), _scalar(name)], link, found, bad)
        else:
            _yaml_pair([_scalar(key)], value, found, bad)
    return found, bad


def _yaml_pair(
    path: list[str], value: yaml.Node, found: list[ListedShare], bad: list[BadLine]
) -> None:
    number = value.start_mark.line + 1
    if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
        bad.append(BadLine(number, "expected 'name: link [pass code]'"))
        return
    link, _, pass_code = str(value.value).strip().partition(" ")
    entry = _entry(path, link, pass_code.strip(), number, bad)
    if entry is not None:
        found.append(entry)


def _scalar(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _entry(
    path: list[str], link: str, pass_code: str, number: int, bad: list[BadLine]
) -> ListedShare | None:
    names = [p.strip() for p in path]
    if any(not n or n in (".", "..") or _BAD_NAME.search(n) for n in names):
        bad.append(BadLine(number, "a folder name must not be empty, '.', '..' or hold '\\'"))
        return None
    try:
        parsed = parse_share_link(link)
    except ValueError as exc:
        bad.append(BadLine(number, f"the link {exc}"))
        return None
    if pass_code:
        parsed = replace(parsed, pass_code=pass_code)
    return ListedShare(tuple(names), parsed, number)


def _unique(
    found: list[ListedShare], bad: list[BadLine]
) -> tuple[list[ListedShare], list[BadLine]]:
    """A folder name is one share's; a share's folder cannot also be a category."""
    kept: dict[tuple[str, ...], ListedShare] = {}
    for entry in found:
        folded = tuple(p.casefold() for p in entry.path)
        clash = next(
            (
                other
                for path, other in kept.items()
                if path == folded or path[: len(folded)] == folded or folded[: len(path)] == path
            ),
            None,
        )
        if clash is not None:
            bad.append(
                BadLine(entry.line, f"the folder {entry.name!r} clashes with line {clash.line}")
            )
            continue
        kept[folded] = entry
    return list(kept.values()), sorted(bad, key=lambda b: b.line)


class ShareListSource:
    """A source whose folders are the shares of a list file (see the module's doc)."""

    kind = "share"
    refuses_whole = True

    def __init__(
        self,
        name: str,
        list_file: Path,
        open_share: Callable[[ListedShare], SharedFolder],
    ) -> None:
        """``open_share``: the share of a list entry, read through the mount's session."""
        self.name = name
        self.list_file = list_file
        self.open_share = open_share
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[ListedShare] = []
        self.bad_lines: list[BadLine] = []
        self._sources: dict[str, ShareSource] = {}  # by ListedShare.key

    # ------------------------------------------------------------------ the list
    def _reload(self) -> None:
        try:
            info = os.stat(self.list_file)
        except OSError as exc:
            with self._lock:
                if self._stamp != (-1, -1):
                    log.warning(
                        "share list %s: cannot read %s: %s; keeping the shares read before",
                        self.name,
                        self.list_file,
                        exc.strerror,
                    )
                    self._stamp = (-1, -1)
            return
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                text = self.list_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("share list %s: cannot read %s: %s", self.name, self.list_file, exc)
                return
            entries, bad = read_share_list(text)
            for line in bad:
                log.warning("share list %s: %s: %s; skipped", self.name, self.list_file, line)
            sources = {}
            for entry in entries:
                sources.setdefault(entry.key, self._sources.get(entry.key) or self._open(entry))
            self._entries, self.bad_lines, self._sources = entries, bad, sources
            log.info("share list %s: %d shares from %s", self.name, len(entries), self.list_file)

    def _open(self, entry: ListedShare) -> ShareSource:
        return ShareSource(entry.name, self.open_share(entry), root_id=entry.link.folder_id)

    def entries(self) -> list[ListedShare]:
        self._reload()
        with self._lock:
            return list(self._entries)

    def statuses(self) -> list[ShareStatus]:
        """Each share's state (for the status page), in the list's order."""
        entries = self.entries()
        with self._lock:
            return [self._sources[e.key].status() for e in entries if e.key in self._sources]

    def check(self) -> list[tuple[ListedShare, ShareStatus]]:
        """Read every share's root now and say how each is (``pikdav shares check``)."""
        entries = self.entries()
        with self._lock:
            sources = dict(self._sources)
        return [(e, sources[e.key].check()) for e in entries]

    # ------------------------------------------------------------------ Source
    def listing_ttl_of(self, folder_id: str, default: float) -> float:
        """The list's own folders are looked at again within a second (the file may have
        changed); a share's folders are cached as any listing."""
        return LIST_TTL if not folder_id or folder_id.startswith("list:") else default

    def list_folder(self, folder_id: str) -> Iterable[File]:
        if not folder_id or folder_id.startswith("list:"):
            path = tuple(p for p in folder_id.removeprefix("list:").split("/") if p)
            entries = self.entries()
            share = next((e for e in entries if e.path == path), None)
            if share is None:
                return self._folders_below(path, entries)
            key, parent = share.key, share.link.folder_id
        else:
            key, parent = self._split(folder_id)
        return [
            replace(item, id=f"s:{key}:{item.id}", parent_id=folder_id)
            for item in self._source(key).list_folder(parent)
        ]

    def link(self, item_id: str) -> Link:
        key, item = self._split(item_id)
        return self._source(key).link(item)

    def quota(self) -> Quota | None:
        return None

    def share_statuses(self) -> list[ShareStatus]:
        return self.statuses()

    def signed_in_session(self) -> None:
        return None

    def writable(self) -> None:
        return None  # someone else's content: nothing of ours is written onto it

    # ------------------------------------------------------------------ ids
    def _folders_below(self, path: tuple[str, ...], entries: list[ListedShare]) -> list[File]:
        depth = len(path)
        names = sorted(
            {e.path[depth] for e in entries if len(e.path) > depth and e.path[:depth] == path}
        )
        stamp = (self._stamp or (0, 0))[0] / 1e9
        parent = "list:" + "/".join(path) if path else ""
        return [
            File(
                "list:" + "/".join((*path, name)),
                name,
                parent,
                True,
                0,
                stamp,
                stamp,
                "",
                "",
                PHASE_COMPLETE,
                False,
            )
            for name in names
        ]

    def _source(self, key: str) -> ShareSource:
        with self._lock:
            source = self._sources.get(key)
        if source is None:
            raise _gone()
        return source

    @staticmethod
    def _split(item_id: str) -> tuple[str, str]:
        kind, _, rest = item_id.partition(":")
        key, _, item = rest.partition(":")
        if kind != "s" or not key:
            raise _gone()
        return key, item


def _gone() -> NotFound:
    return NotFound("the share is no longer in the list")
