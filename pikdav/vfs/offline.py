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
started): a list of thousands of links is refused, not thousands of tasks started. With several
instances on one Redis (the top-level ``redis:`` setting) the minute is one for the user across
every instance, counted on Redis; while Redis does not answer, drops are refused (503) like
every other change.
"""

from __future__ import annotations

import logging
import math
import plistlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pikdav.pikpak.errors import PikPakError
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.types import Task

from .cluster import Cluster
from .errors import LinkRefused, LinksTooFast, MountError, NotLinks, TooManyLinks
from .tree import DriveTree, Entry

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Offline:
    """What a mount may do with the account's offline downloads: start and show ``tasks``,
    landing in ``folder`` (a path below the mount's root; None: PikPak's "My Pack"), where
    links dropped become tasks, at most ``links_per_file`` a dropped file and
    ``links_per_minute`` a user."""

    tasks: OfflineTasks
    folder: str | None = None
    links_per_file: int = LINKS_PER_FILE
    links_per_minute: int = LINKS_PER_MINUTE

    @property
    def folder_path(self) -> str | None:
        """``folder`` without leading and trailing slashes (None when there is none)."""
        path = (self.folder or "").strip("/")
        return path or None


def _too_fast(cap: int, used: int, wait: float) -> LinksTooFast:
    return LinksTooFast(
        f"too many links: at most {cap} offline downloads a minute, {used} started in the "
        f"last minute; try again in {math.ceil(wait)} s",
        max(1, math.ceil(wait)),
    )


class _Window(Protocol):
    """A user's minute of links started by drops."""

    def take(self, user: str, links: int) -> Callable[[int], None]:
        """Count ``links`` against the user's minute (LinksTooFast when they do not fit,
        nothing counted): a function that sets the count to the links actually started."""
        ...


class _LocalWindow:
    """The minute counted in this process alone (one instance, no Redis)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._started: dict[str, deque[list[float]]] = {}  # user: [[monotonic, links], …]

    def take(self, user: str, links: int) -> Callable[[int], None]:
        now = time.monotonic()
        with self._lock:
            window = self._started.setdefault(user, deque())
            while window and window[0][0] <= now - WINDOW:
                window.popleft()
            used = sum(n for _, n in window)
            if used + links > self.cap:
                freed, wait = used + links - self.cap, WINDOW
                for at, n in window:  # the oldest go first
                    freed -= n
                    if freed <= 0:
                        wait = at + WINDOW - now
                        break
                raise _too_fast(self.cap, int(used), wait)
            taken = [now, float(links)]
            window.append(taken)

        def count(started: int) -> None:
            with self._lock:
                taken[1] = started

        return count


# One user's minute on Redis, in one step: forget the drops older than the window, sum the
# links of the rest (each member is "LINKS:TOKEN", its score the Redis server's clock, the one
# clock all instances share), and either add this drop or say how long until it would fit
# (the oldest leave first). ARGV: window seconds, cap, links, token.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window, cap, links = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local held = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #held, 2 do used = used + tonumber(string.match(held[i], '^(%d+):')) end
if used + links > cap then
  local freed, wait = used + links - cap, window
  for i = 1, #held, 2 do
    freed = freed - tonumber(string.match(held[i], '^(%d+):'))
    if freed <= 0 then
      wait = tonumber(held[i + 1]) + window - now
      break
    end
  end
  return {0, used, tostring(wait)}
end
redis.call('ZADD', KEYS[1], now, links .. ':' .. ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return {1, used, ''}
"""

# A drop's count becomes the links it started (0: it leaves the window); ARGV: the member
# as taken, the member with the new count, the window in seconds (the key's expiry again: a
# key emptied and made anew has none).
_COUNT = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  if tonumber(string.match(ARGV[2], '^(%d+):')) > 0 then
    redis.call('ZADD', KEYS[1], score, ARGV[2])
    redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
  end
end
return 0
"""


class _SharedWindow:
    """The minute counted on Redis, one for the user across every instance that shares it
    (ClusterDown while Redis does not answer: no drop is counted, none started)."""

    def __init__(self, cap: int, cluster: Cluster, mount: str) -> None:
        self.cap = cap
        self.cluster = cluster
        self.mount = mount
        self._take = cluster.client.register_script(_TAKE)
        self._count = cluster.client.register_script(_COUNT)

    def take(self, user: str, links: int) -> Callable[[int], None]:
        key = self.cluster.key("drops", self.mount, user)
        token = secrets.token_hex(8)
        fits, used, wait = self.cluster.call(
            lambda _: self._take(keys=[key], args=[WINDOW, self.cap, links, token])
        )
        if not fits:
            raise _too_fast(self.cap, int(used), float(wait))

        def count(started: int) -> None:
            if started == links:
                return
            try:
                self.cluster.call(
                    lambda _: self._count(
                        keys=[key], args=[f"{links}:{token}", f"{started}:{token}", WINDOW]
                    )
                )
            except Exception as exc:  # Redis away or refusing: the tasks started all the same
                # The drop keeps counting all its links: never fewer than started.
                log.warning("mount %s: drops not counted down on Redis: %s", self.mount, exc)

        return count


class LinkDrops:
    """The tasks and receipts of one mount's drop folder: the links dropped, the tasks they
    started within the caps, and the folder's own entries."""

    def __init__(
        self,
        tasks: OfflineTasks,
        *,
        links_per_file: int = LINKS_PER_FILE,
        links_per_minute: int = LINKS_PER_MINUTE,
        cluster: Cluster | None = None,
        mount: str = "",
    ) -> None:
        """``cluster``: the Redis the instances share (None: the minute is this process's
        alone); ``mount``: the mount's name, which with the user names the minute."""
        self.tasks = tasks
        self.links_per_file = links_per_file
        self.links_per_minute = links_per_minute
        self._window: _Window = (
            _LocalWindow(links_per_minute)
            if cluster is None
            else _SharedWindow(links_per_minute, cluster, mount)
        )
        self._lock = threading.Lock()
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
        if len(links) > self.links_per_minute:
            raise TooManyLinks(
                f"the file holds {len(links)} links; one user may start at most "
                f"{self.links_per_minute} offline downloads a minute"
            )
        count = self._window.take(user, len(links))
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
            count(started)  # links PikPak refused do not count
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


class DropFolder:
    """A mount's offline folder, where links become tasks: it finds the folder (and makes
    it, when the mount may change, at its first use), tells whether a folder is it, and adds
    its own entries (receipts, unfinished tasks) to what the folder lists."""

    def __init__(
        self,
        offline: Offline,
        tree: DriveTree,
        *,
        make: Callable[[str], Entry] | None = None,
        mount: str = "",
    ) -> None:
        """``make``: makes the folder at a path with its parents (None: the mount is
        read-only, the folder is never made); ``mount``: its name, for the log and for the
        users' minute on Redis (when ``tree`` has a cluster: one minute across instances)."""
        assert offline.folder_path is not None
        self.path = offline.folder_path
        self.drops = LinkDrops(
            offline.tasks,
            links_per_file=offline.links_per_file,
            links_per_minute=offline.links_per_minute,
            cluster=tree.cluster,
            mount=mount,
        )
        self._tree = tree
        self._make = make
        self._mount = mount
        self._id = ""  # the folder's id, once it exists
        self._making = threading.Lock()  # held while the folder is made
        self._problem = ""  # why it could not be made, as last logged

    def make(self) -> None:
        """The folder exists from the mount's first use: made when missing, so that a client
        sees where to drop its links (a PUT into a missing folder would get 409)."""
        if self._id or self._make is None or not self._making.acquire(timeout=60):
            return
        try:
            if self._id:
                return
            found = self._tree.resolve(self.path)
            if found is None:
                found = self._make(self.path)
                log.info("mount %s: made the offline folder %s", self._mount, self.path)
            if found.is_folder:
                self._id = found.id
        except (MountError, PikPakError) as exc:
            problem = str(exc.problem if isinstance(exc, PikPakError) else exc)
            if problem != self._problem:  # once per problem, not once per request
                self._problem = problem
                log.warning(
                    "mount %s: cannot make the offline folder %s: %s (tried again at the next "
                    "request)",
                    self._mount,
                    self.path,
                    problem,
                )
        finally:
            self._making.release()

    def is_it(self, folder: Entry) -> bool:
        """Whether ``folder`` is the offline folder."""
        if not folder.is_folder or is_own(folder):
            return False
        if not self._id:
            found = self._tree.resolve(self.path)
            if found is None or not found.is_folder:
                return False
            self._id = found.id
        return folder.id == self._id

    def children(self, folder: Entry, stored: tuple[Entry, ...]) -> tuple[Entry, ...]:
        """What ``folder`` lists, given what is ``stored`` in it: in the offline folder the
        stored files and its own entries (a file a task finished is listed at once)."""
        if not self.is_it(folder):
            return stored
        own, finished = self.drops.entries(folder.id)
        if finished:  # a task's file is new here: PikPak put it there, not a client
            self._tree.folder_changed(folder.id)
            stored = self._tree.children(folder)
        return stored + own

    def takes(self, folder: Entry, name: str) -> bool:
        """Whether a file ``name`` put into ``folder`` is a drop of links (not stored)."""
        return is_drop(name) and self.is_it(folder)

    def drop(self, folder: Entry, name: str, data: bytes, user: str = "") -> Entry:
        """The links of the file ``user`` put become tasks (see :meth:`LinkDrops.drop`);
        its receipt, listed at once."""
        entry = self.drops.drop(folder.id, name, data, user)
        self._tree.folder_changed(folder.id)
        return entry

    def started(self, entry: Entry) -> int | None:
        """How many offline tasks the drop of ``entry`` started (None: not a receipt)."""
        return self.drops.started(entry)

    def content(self, entry: Entry) -> bytes:
        """The bytes of one of the folder's own entries."""
        return self.drops.content(entry)


def is_own(entry: Entry) -> bool:
    """Whether ``entry`` is a drop folder's own (a receipt or a task), not a PikPak item."""
    return entry.id.startswith(ID_PREFIX)
