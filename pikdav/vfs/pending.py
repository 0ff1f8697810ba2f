"""Background uploads: a PUT is answered once its body is safely on local disk, and the
upload to PikPak goes on afterwards (the ``background_uploads`` mount option).

NAS sync tools time out when a gateway answers a PUT of several GiB only after PikPak has the
whole file. In background mode each upload waits in ``state_dir/uploads/<mount>/`` as two
files: ``<id>.data`` (the body) and ``<id>.json`` (where it goes, its size and GCID, written
atomically); the PUT is answered only once both are on disk (fsynced: the body, the folder,
the journal, the folder again), so a crash right after the answer loses nothing. Until
PikPak has it, the file is listed and readable from there; a restart resumes every upload
still in the folder; failures are retried with backoff and, when final, logged and kept there
for the user. A DELETE cancels a waiting upload; MOVE and COPY of a file still uploading are
refused with 409 (try again once it is stored).

Several instances on one Redis: an upload stays with the instance that received it (its own
state_dir; no shared disk is assumed), and is announced to the others on Redis, so that every
instance lists it as uploading. Another instance refuses a DELETE or a GET of it with 423
(only the owner has the bytes); once it is stored, every instance lists the stored file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pikdav.durable import fsync_path, write_durably
from pikdav.logtext import client_text
from pikdav.pikpak.errors import LoginPaused, PikPakError, Stopped
from pikdav.pikpak.retry import BACKGROUND_UPLOADS, RetryPolicy

from .cluster import Cluster, ClusterDown
from .errors import UploadingElsewhere
from .spool import SPOOL_PREFIX
from .tree import Entry
from .writer import TreeWriter

log = logging.getLogger(__name__)

_JOURNAL_PREFIX = ".journal-"


@dataclass(frozen=True)
class Waiting:
    id: str
    folder_id: str
    name: str
    size: int
    gcid: str
    created: float
    attempts: int = 0
    failed: bool = False
    last_error: str = ""  # why the last attempt failed, in words (no secret)

    @property
    def entry(self) -> Entry:
        return Entry(
            self.id,
            self.name,
            False,
            self.size,
            self.created,
            self.created,
            self.gcid,
            "",
            uploading=True,
        )


class _Body:
    def __init__(self, path: Path, size: int, gcid: str) -> None:
        self.path, self.size, self._gcid = path, size, gcid

    def gcid(self) -> str:
        return self._gcid


class PendingUploads:
    retry = BACKGROUND_UPLOADS  # when to try a failed upload again, and when to stop
    settle_seconds = 20.0  # how long a cancel waits for the upload going up to let go

    def __init__(
        self,
        directory: Path,
        retry: RetryPolicy | None = None,
        *,
        cluster: Cluster | None = None,
        channel: str = "",
    ) -> None:
        """``cluster``: announce uploads to the other instances on Redis, and hear theirs
        (on the channel ``uploads:<channel>``, the mount's name)."""
        if retry is not None:
            self.retry = retry
        self.directory = directory
        self.writer: TreeWriter | None = None  # given by start()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._waiting: dict[str, Waiting] = {}
        self._elsewhere: dict[str, Waiting] = {}  # other instances' uploads, by id
        self.cluster = cluster
        self._owner = f"{socket.gethostname()}:{self.directory.resolve()}"
        self._announced = cluster.key("uploading", channel) if cluster else ""
        self.channel = f"uploads:{channel}"
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._current = ""  # the id of the upload going up now
        self._sent = 0  # bytes of it the store has taken
        self._stop = threading.Event()  # set: the upload going up now is no longer wanted
        self._settled = threading.Condition(self._lock)  # told when the current one ends
        # Told when an upload fails for good: on_failed(name, attempts, reason).
        self.on_failed: Callable[[str, int, str], None] | None = None
        self._sweep()
        for journal in sorted(self.directory.glob("*.json")):
            try:
                item = Waiting(**json.loads(journal.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.error("cannot read the upload journal %s (%s); its data is kept", journal, exc)
                continue
            item = dataclasses.replace(item, attempts=0, failed=False)
            self._waiting[item.id] = item
            self._queue.put(item.id)
            log.info(
                "resuming the upload of %s (%d B) left from before a restart",
                client_text(item.name),
                item.size,
            )
        if cluster is not None:
            cluster.on_notice(self.channel, self._heard)
            cluster.on_return(self._resync)
            self._resync()

    def _sweep(self) -> None:
        """Drop what a stop left half-made: bodies still arriving, journals being written,
        bodies whose journal was never written. None of them was answered with a 201."""
        journaled = {p.stem for p in self.directory.glob("*.json")}
        for path in self.directory.iterdir():
            unjournaled = path.suffix == ".data" and path.stem not in journaled
            if unjournaled or path.name.startswith((SPOOL_PREFIX, _JOURNAL_PREFIX)):
                log.info("removing %s, left unfinished by an earlier run", path.name)
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ paths
    def data_path(self, upload_id: str) -> Path:
        return self.directory / f"{upload_id}.data"

    def _journal_path(self, upload_id: str) -> Path:
        return self.directory / f"{upload_id}.json"

    def _write_journal(self, item: Waiting) -> None:
        data = json.dumps(dataclasses.asdict(item)).encode()
        write_durably(self._journal_path(item.id), data, temp_prefix=_JOURNAL_PREFIX)

    # ------------------------------------------------------------------ other instances
    def _announce(self, item: Waiting) -> None:
        if self.cluster is None:
            return
        text = json.dumps({"owner": self._owner, **dataclasses.asdict(item)})
        try:
            self.cluster.call(lambda r: r.hset(self._announced, item.id, text))
        except ClusterDown:
            return  # announced again when Redis is back (_resync)
        self.cluster.notify(self.channel, {"added": json.loads(text)})

    def _withdraw(self, upload_id: str) -> None:
        if self.cluster is None:
            return
        try:
            self.cluster.call(lambda r: r.hdel(self._announced, upload_id))
        except ClusterDown:
            return  # withdrawn when Redis is back (_resync)
        self.cluster.notify(self.channel, {"gone": upload_id})

    def _heard(self, message: dict) -> None:
        added, gone = message.get("added"), message.get("gone")
        if isinstance(added, dict):
            item = self._read(added)
            if item is not None:
                with self._lock:
                    self._elsewhere[item.id] = item
        if isinstance(gone, str):
            with self._lock:
                self._elsewhere.pop(gone, None)

    def _read(self, data: dict) -> Waiting | None:
        if data.get("owner") == self._owner:
            return None
        fields = {f.name for f in dataclasses.fields(Waiting)}
        try:
            return Waiting(**{k: v for k, v in data.items() if k in fields})
        except TypeError:
            return None

    def _resync(self) -> None:
        """Redis holds exactly our waiting uploads, and we know everyone else's (at the
        start, and when Redis is back: notices may have been missed meanwhile)."""
        assert self.cluster is not None

        def sync(r) -> dict:
            announced = {k.decode(): json.loads(v) for k, v in r.hgetall(self._announced).items()}
            with self._lock:
                ours = {i: dataclasses.asdict(w) for i, w in self._waiting.items()}
            stale = [i for i, d in announced.items() if d.get("owner") == self._owner]
            stale = [i for i in stale if i not in ours]
            if stale:
                r.hdel(self._announced, *stale)
            for upload_id, data in ours.items():
                r.hset(self._announced, upload_id, json.dumps({"owner": self._owner, **data}))
            return announced

        try:
            announced = self.cluster.call(sync)
        except ClusterDown:
            return
        elsewhere = {w.id: w for d in announced.values() if (w := self._read(d)) is not None}
        with self._lock:
            self._elsewhere = {i: w for i, w in elsewhere.items() if i not in self._waiting}

    # ------------------------------------------------------------------ overlay
    def in_folder(self, folder_id: str) -> dict[str, Entry]:
        with self._lock:
            found = {w.name: w.entry for w in self._elsewhere.values() if w.folder_id == folder_id}
            found |= {w.name: w.entry for w in self._waiting.values() if w.folder_id == folder_id}
            return found

    def local_file(self, entry: Entry) -> Path | None:
        """The waiting upload's body on this instance's disk; :class:`UploadingElsewhere`
        for an upload another instance holds."""
        if not entry.uploading:
            return None
        self.not_elsewhere(entry)
        path = self.data_path(entry.id)
        return path if path.exists() else None

    def not_elsewhere(self, entry: Entry) -> None:
        """:class:`UploadingElsewhere` when ``entry`` is another instance's waiting upload."""
        with self._lock:
            elsewhere = entry.uploading and entry.id in self._elsewhere
        if elsewhere:
            raise UploadingElsewhere(
                "the file is still uploading through another instance of the gateway, which "
                "alone has its content; try again when the upload has finished"
            )

    # ------------------------------------------------------------------ changes
    def add(self, folder: Entry, name: str, data: Path, size: int, gcid: str) -> Entry:
        """Take over ``data`` (a closed file in this folder) as the body of a new upload;
        when this returns, the upload survives a crash of the gateway or of the machine.

        The order matters: the body's bytes, then its new name (the folder), then the
        journal and its name. A journal is only ever found beside a complete body."""
        self.cancel(folder.id, name)  # a newer PUT of the same name replaces a waiting one
        item = Waiting(secrets.token_hex(8), folder.id, name, size, gcid, time.time())
        fsync_path(data)  # the body file is closed already: flushed by its name
        os.replace(data, self.data_path(item.id))
        fsync_path(self.directory)
        self._write_journal(item)  # flushed, renamed, and the folder flushed again
        with self._lock:
            self._waiting[item.id] = item
        self._announce(item)
        self._queue.put(item.id)
        self._start()
        return item.entry

    def cancel(self, folder_id: str, name: str) -> bool:
        """Give up the uploads waiting as ``folder/name``; True when there was one.

        One going up now is stopped at its next step, and this waits (up to
        :attr:`settle_seconds`) until the worker has let it go: either it deleted what it had
        made, or it had already put the file in place, which a caller then finds stored.
        So a DELETE that returns leaves nothing on PikPak that comes back later."""
        with self._lock:
            found = [
                w for w in self._waiting.values() if w.folder_id == folder_id and w.name == name
            ]
            for item in found:
                del self._waiting[item.id]
            going = next((w.id for w in found if w.id == self._current), "")
            if going:
                self._stop.set()
        for item in found:
            self._forget(item.id)
        if going:
            with self._lock:
                settled = self._settled.wait_for(
                    lambda: self._current != going, timeout=self.settle_seconds
                )
            if not settled:
                log.warning(
                    "the upload of %s is still stopping; what it made is deleted when it does",
                    client_text(next(w.name for w in found if w.id == going)),
                )
        return bool(found)

    def _forget(self, upload_id: str) -> None:
        self._journal_path(upload_id).unlink(missing_ok=True)
        self.data_path(upload_id).unlink(missing_ok=True)
        self._withdraw(upload_id)

    # ------------------------------------------------------------------ the worker
    def _start(self) -> None:
        with self._lock:
            if self.writer is None:
                return  # not started yet: start() runs what is queued
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pikdav-uploads", daemon=True
                )
                self._thread.start()

    def start(self, writer: TreeWriter) -> None:
        """Upload through ``writer`` from now on, beginning with what a restart left."""
        self.writer = writer
        if not self._queue.empty():
            self._start()

    def _run(self) -> None:
        while True:
            upload_id = self._queue.get()
            with self._lock:
                item = self._waiting.get(upload_id)
            if item is None or item.failed:
                continue  # cancelled, or failed for good (a retry puts it back)
            with self._lock:
                if upload_id not in self._waiting:
                    continue  # cancelled since
                self._current = item.id
                self._sent = 0
                self._stop = threading.Event()
            try:
                self._upload(item, self._stop)
            finally:
                with self._lock:
                    self._current = ""
                    self._settled.notify_all()

    def _upload(self, item: Waiting, stop: threading.Event) -> None:
        folder = Entry(item.folder_id, "", True, 0, 0.0, 0.0, "", "")
        body = _Body(self.data_path(item.id), item.size, item.gcid)
        writer = self.writer
        assert writer is not None  # the worker runs only once started
        try:
            writer.tree.folder_changed(item.folder_id)
            old = writer.tree.child(folder, item.name, stored_only=True)
            writer.store(folder, item.name, body, old, stop, self._went_up)
        except Stopped:
            log.info(
                "background upload of %s stopped: the file was deleted or replaced",
                client_text(item.name),
            )
            return
        except (PikPakError, OSError) as exc:
            if stop.is_set():
                log.info("background upload of %s stopped (%s)", client_text(item.name), exc)
                return
            self._failed(item, exc)
            return
        with self._lock:
            still = self._waiting.pop(item.id, None)
        if still is not None:
            self._forget(item.id)
        log.info("background upload of %s (%d B) done", client_text(item.name), item.size)

    def _went_up(self, sent: int) -> None:
        self._sent = sent

    def _failed(self, item: Waiting, exc: Exception) -> None:
        if isinstance(exc, LoginPaused):
            # Nothing was tried: the gateway waits for a new login, and so does the upload.
            log.info(
                "background upload of %s waits for the sign-in pause to end", client_text(item.name)
            )
            self._again(item, exc.seconds_left())
            return
        attempts = item.attempts + 1
        gone = isinstance(exc, PikPakError) and exc.final
        final = gone or self.retry.exhausted(attempts, 0.0)
        item = dataclasses.replace(item, attempts=attempts, failed=final, last_error=str(exc))
        with self._lock:
            if item.id not in self._waiting:
                return  # cancelled meanwhile
            self._waiting[item.id] = item
        self._write_journal(item)
        if final:
            log.error(
                "background upload of %s failed for good after %d attempts (%s); the "
                "content is kept in %s and is tried again after a restart",
                client_text(item.name),
                attempts,
                exc,
                self.data_path(item.id),
            )
            if self.on_failed is not None:
                try:
                    self.on_failed(item.name, attempts, str(exc))
                except Exception:  # a notification must never stop the uploads
                    log.exception(
                        "telling of the failed upload of %s failed", client_text(item.name)
                    )
            return
        delay = self.retry.delay(attempts)
        log.warning(
            "background upload of %s failed (%s); retrying in %.0f s",
            client_text(item.name),
            exc,
            delay,
        )
        self._again(item, delay)

    def _again(self, item: Waiting, delay: float) -> None:
        timer = threading.Timer(delay, self._queue.put, args=(item.id,))
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ for the status page
    def uploads(self) -> list[tuple[Waiting, bool]]:
        """Every upload that waits, oldest first, each with whether it is going up now."""
        with self._lock:
            items = sorted(self._waiting.values(), key=lambda item: item.created)
        return [(item, item.id == self._current) for item in items]

    def sent(self) -> tuple[str, int]:
        """The id of the upload going up now ("" when none) and the bytes of it the store
        has taken (part by part for a large file; a retry starts again from 0)."""
        with self._lock:
            return self._current, self._sent

    def retry_now(self, upload_id: str) -> bool:
        """Try a failed upload again at once (a person asked); False when none has that id."""
        with self._lock:
            item = self._waiting.get(upload_id)
            if item is None or not item.failed:
                return False
            item = dataclasses.replace(item, attempts=0, failed=False)
            self._waiting[upload_id] = item
        self._write_journal(item)
        log.info("background upload of %s: trying again, as an admin asked", client_text(item.name))
        self._queue.put(upload_id)
        return True

    def discard(self, upload_id: str) -> bool:
        """Give up a failed upload and delete its content (a person asked)."""
        with self._lock:
            item = self._waiting.get(upload_id)
            if item is None or not item.failed:
                return False
            del self._waiting[upload_id]
        self._forget(upload_id)
        log.info("background upload of %s discarded by an admin", client_text(item.name))
        return True

    def idle(self) -> bool:
        """True when nothing waits (failed uploads count as waiting)."""
        with self._lock:
            return not self._waiting
