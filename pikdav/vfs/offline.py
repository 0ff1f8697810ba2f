"""The drop folder of offline downloads (``mounts[].offline_folder``): links put there from
any DAV client become PikPak offline tasks instead of files.

A PUT into the folder of a ``.magnet`` file (the link), a ``.url`` file (Windows' Internet
Shortcut: ``URL=…``), a ``.webloc`` file (macOS' property list with a ``URL``) or a ``.txt``
file (one link a line; blank lines and lines starting with ``#`` are skipped) starts one task
per link in that folder. Nothing is uploaded; the dropped file stays listed for a minute, from
the gateway's memory, so that a client that checks its upload (rclone reads the size back)
sees it arrived.

The folder also lists each task that is not finished as a read-only, empty entry whose name
carries its progress: ``NAME [P% PHASE].task``, for example ``sintel.mkv [42% running].task``
(PHASE is ``pending``, ``running`` or ``error``; an error shows ``[error].task``). A finished
task's file appears beside them under its own name.

One dropped file starts at most ``links_per_file`` tasks (more: 413, none started), and one
user at most ``links_per_minute`` within any minute (more: 429 with Retry-After, none
started): a list of thousands of links is refused, not thousands of tasks started.
"""

from __future__ import annotations

import math
import plistlib
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from pikdav.pikpak.errors import PikPakError
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.types import Task

from .errors import LinkRefused, LinksTooFast, NotLinks, TooManyLinks
from .tree import Entry

DROP_KINDS = (".magnet", ".url", ".webloc", ".txt")
TASK_SUFFIX = ".task"
ID_PREFIX = "offline:"  # the ids of the folder's own entries: no PikPak item has one
MAX_DROP = 64 * 1024  # bytes: a file of links; anything larger is no drop
LINK = re.compile(r"^(magnet:\?|https?://|ed2k://)\S+$", re.IGNORECASE)
RECEIPT_SECONDS = 60.0
TASKS_TTL = 3.0  # seconds the folder's task entries are reused before PikPak is asked again
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
LINKS_PER_FILE = 100  # tasks one dropped file may start
LINKS_PER_MINUTE = 100  # tasks one user may start by drops within a minute
WINDOW = 60.0  # seconds: the minute of links_per_minute


def is_drop(name: str) -> bool:
    return name.lower().endswith(DROP_KINDS)


def links_in(name: str, data: bytes) -> list[str]:
    """The links a dropped file holds; NotLinks says what is wrong with it."""
    if len(data) > MAX_DROP:
        raise NotLinks(f"a file of links is at most {MAX_DROP // 1024} KiB; this is no drop")
    kind = name.lower().rpartition(".")[2]
    if kind == "webloc":
        try:
            found = plistlib.loads(data).get("URL", "")
        except (plistlib.InvalidFileException, ValueError, AttributeError):
            raise NotLinks("the .webloc file is not a property list with a URL") from None
        candidates = [str(found)]
    else:
        text = data.decode("utf-8-sig", "replace")
        lines = [line.strip() for line in text.splitlines()]
        if kind == "url":
            # [InternetShortcut] / URL=https://…
            candidates = [line[4:].strip() for line in lines if line.upper().startswith("URL=")]
        else:
            candidates = [line for line in lines if line and not line.startswith("#")]
    if kind != "txt":
        candidates = candidates[:1]
    if not candidates:
        raise NotLinks(f"the .{kind} file holds no link")
    for number, link in enumerate(candidates, 1):
        if not LINK.match(link):
            where = f"line {number} of the .txt file" if kind == "txt" else f"the .{kind} file"
            raise NotLinks(f"{where} is not a magnet:, http(s):// or ed2k:// link")
    return candidates


def task_name(task: Task) -> str:
    """``NAME [P% PHASE].task`` (see the module docstring)."""
    name = _UNSAFE.sub("_", task.name or task.file_name or task.id)
    if task.failed:
        return f"{name} [error]{TASK_SUFFIX}"
    phase = task.phase.removeprefix("PHASE_TYPE_").lower()
    return f"{name} [{task.progress}% {phase}]{TASK_SUFFIX}"


@dataclass(frozen=True)
class _Receipt:
    entry: Entry
    data: bytes
    until: float
    started: int = 0  # offline tasks the drop started


class DropFolder:
    """The tasks and receipts of one mount's drop folder."""

    def __init__(
        self,
        tasks: OfflineTasks,
        *,
        links_per_file: int = LINKS_PER_FILE,
        links_per_minute: int = LINKS_PER_MINUTE,
    ) -> None:
        self.tasks = tasks
        self.links_per_file = links_per_file
        self.links_per_minute = links_per_minute
        self._lock = threading.Lock()
        self._started: dict[str, deque[list[float]]] = {}  # user: [[monotonic, links], …]
        self._receipts: dict[tuple[str, str], _Receipt] = {}
        self._listed: tuple[float, tuple[Entry, ...]] = (0.0, ())
        self._running: set[str] = set()  # entry ids of the tasks unfinished at the last look

    def drop(self, folder_id: str, name: str, data: bytes, user: str = "") -> Entry:
        """Start a task per link of the file ``user`` dropped; its receipt entry.
        TooManyLinks or LinksTooFast beyond the caps (nothing started); LinkRefused when
        PikPak refuses a link (saying how many were started before it)."""
        links = links_in(name, data)
        if len(links) > self.links_per_file:
            raise TooManyLinks(
                f"the file holds {len(links)} links; one file may start at most "
                f"{self.links_per_file} offline downloads"
            )
        taken = self._take(user, len(links))
        started = 0
        try:
            for link in links:
                try:
                    self.tasks.add(link, folder_id)
                except PikPakError as exc:
                    before = f" ({started} of {len(links)} started before it)" if started else ""
                    raise LinkRefused(f"PikPak refused the link{before}: {exc.problem}") from None
                started += 1
        finally:
            with self._lock:
                taken[1] = started  # links PikPak refused do not count
        now = time.time()
        entry = Entry(
            f"{ID_PREFIX}drop:{folder_id}:{name}", name, False, len(data), now, now,
            f"drop-{int(now * 1000)}", "",
        )  # fmt: skip
        with self._lock:
            receipt = _Receipt(entry, data, now + RECEIPT_SECONDS, started)
            self._receipts[(folder_id, name)] = receipt
            self._listed = (0.0, ())  # the new tasks show at once
        return entry

    def _take(self, user: str, links: int) -> list[float]:
        """Count ``links`` against the user's minute (LinksTooFast when they do not fit):
        the entry, whose count the caller sets to the links actually started."""
        now = time.monotonic()
        with self._lock:
            window = self._started.setdefault(user, deque())
            while window and window[0][0] <= now - WINDOW:
                window.popleft()
            used = sum(n for _, n in window)
            if used + links > self.links_per_minute:
                if links > self.links_per_minute:
                    raise TooManyLinks(
                        f"the file holds {links} links; one user may start at most "
                        f"{self.links_per_minute} offline downloads a minute"
                    )
                freed, wait = used + links - self.links_per_minute, WINDOW
                for at, n in window:  # the oldest go first
                    freed -= n
                    if freed <= 0:
                        wait = at + WINDOW - now
                        break
                raise LinksTooFast(
                    f"too many links: at most {self.links_per_minute} offline downloads a "
                    f"minute, {used} started in the last minute; try again in "
                    f"{math.ceil(wait)} s",
                    max(1, math.ceil(wait)),
                )
            taken = [now, float(links)]
            window.append(taken)
            return taken

    def entries(self, folder_id: str) -> tuple[tuple[Entry, ...], bool]:
        """The folder's own entries (its receipts and the unfinished tasks), and whether a
        task finished since the last look (its file is new in the folder's listing)."""
        now = time.time()
        with self._lock:
            self._receipts = {k: r for k, r in self._receipts.items() if r.until > now}
            receipts = tuple(r.entry for (f, _), r in self._receipts.items() if f == folder_id)
            listed_at, tasks = self._listed
        if listed_at + TASKS_TTL <= time.monotonic():
            tasks = tuple(
                Entry(
                    f"{ID_PREFIX}task:{t.id}",
                    task_name(t),
                    False,
                    0,
                    now,
                    now,
                    f"task-{t.id}-{t.progress}-{t.phase}",
                    "text/plain",
                )
                for t in self.tasks.list()
                if not t.done
            )
            with self._lock:
                finished = bool(self._running - {t.id for t in tasks})
                self._running = {t.id for t in tasks}
                self._listed = (time.monotonic(), tasks)
            return receipts + tasks, finished
        return receipts + tasks, False

    def started(self, entry: Entry) -> int | None:
        """How many offline tasks the drop of ``entry`` (a receipt) started; None when
        ``entry`` is no receipt."""
        with self._lock:
            for receipt in self._receipts.values():
                if receipt.entry.id == entry.id:
                    return receipt.started
        return None

    def content(self, entry: Entry) -> bytes:
        """A receipt's bytes (a task's entry is empty)."""
        with self._lock:
            for receipt in self._receipts.values():
                if receipt.entry.id == entry.id:
                    return receipt.data
        return b""


def is_own(entry: Entry) -> bool:
    """Whether ``entry`` is a drop folder's own (a receipt or a task), not a PikPak item."""
    return entry.id.startswith(ID_PREFIX)
