"""Uploads: GCID first, then PikPak's ticket, then the bytes to its S3-compatible store.

PikPak knows content by GCID, so an upload starts by hashing. When PikPak already has the
content (or it is empty) the ticket completes at once and no byte moves ("instant upload").
Otherwise the ticket names a bucket, a key and temporary credentials for an Aliyun OSS
bucket spoken to as S3 (the client: :func:`pikdav.pikpak.http.object_store_client`). Every
request to the store is bounded by one retry policy (botocore's own retries are off); its
failures are rows of the error table (:data:`pikdav.pikpak.errors.OBJECT_STORE`). Until the
store has every byte the file stays pending and invisible; on failure we abort the
multipart upload and delete it.
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pikdav.logtext import client_text

from .drive import Drive
from .errors import PikPakError, Stopped, object_store_error, upload_failure
from .gcid import gcid_of_file
from .http import host_of, object_store_client, other_domain
from .retry import OBJECT_STORE, Again, RetryPolicy
from .types import File, NewFile, Task, UploadTarget

log = logging.getLogger(__name__)

MIB = 1 << 20
MAX_PARTS = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class UploadSettings:
    cutoff: int = 64 * MIB  # larger files go in parts
    part_size: int = 8 * MIB  # grown as needed to stay within 10,000 parts
    concurrency: int = 4
    retry: RetryPolicy = OBJECT_STORE  # each request to the store (a part, a small file)


class Uploader:
    def __init__(self, drive: Drive, settings: UploadSettings | None = None) -> None:
        self.drive = drive
        self.session = drive.session
        self.settings = settings or UploadSettings()

    def upload_file(
        self,
        parent_id: str,
        name: str,
        path: Path,
        *,
        size: int | None = None,
        gcid: str | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
        made: Callable[[File], None] | None = None,
    ) -> File:
        """Upload ``path`` as ``name`` in ``parent_id`` and return the complete file.

        ``stop``, once set, gives the upload up at the next request to the store (a wait
        between retries is cut short): the pending file is deleted and :class:`Stopped` is
        raised. ``progress`` is told how many bytes the store has taken so far, part by part
        for a file sent in parts (a small file goes in one request: its bytes count when
        the store has all of them). ``made`` is told of the file as soon as PikPak has made
        it (pending until the store has every byte), before any byte is sent."""
        size = os.path.getsize(path) if size is None else size
        gcid = gcid or gcid_of_file(path, size)
        ticket = self._ticket(parent_id, name, size, gcid)
        pending = ticket.file
        if pending is None:
            self._discard(None, ticket.task)
            raise PikPakError(f"PikPak did not say which file it made for {name}")
        if made is not None:
            try:
                made(pending)
            except BaseException:
                self._discard(pending, ticket.task)
                raise
        if pending.complete:
            log.info(
                "upload %s: PikPak already has this content (instant upload)", client_text(name)
            )
            return pending
        if ticket.target is None:
            self._discard(pending, ticket.task)
            raise PikPakError("PikPak offered no way to upload this file")
        try:
            self._send(ticket.target, path, size, stop, progress or _unheard)
            if ticket.task is not None and ticket.task.id:
                self.drive.wait_task(ticket.task.id)
            return self.drive.get_file(pending.id)
        except BaseException as exc:
            self._discard(pending, ticket.task)
            if isinstance(exc, Exception) and upload_failure(exc) is not exc:
                raise upload_failure(exc) from None
            raise

    def copy_by_hash(self, parent_id: str, name: str, size: int, gcid: str) -> File:
        """A new file with the content of one PikPak already has: an instant upload, no
        byte moves. Refused (and cleaned up) if PikPak does not know the hash."""
        ticket = self._ticket(parent_id, name, size, gcid)
        if ticket.file is not None and ticket.file.complete:
            return ticket.file
        self._discard(ticket.file, ticket.task)
        raise PikPakError(
            f"PikPak does not recognise the content of {name} by its hash; "
            "copy it by downloading and uploading it"
        )

    def _ticket(self, parent_id: str, name: str, size: int, gcid: str) -> NewFile:
        body = self.session.call(
            "POST",
            "/drive/v1/files",
            json={
                "kind": "drive#file",
                "name": name,
                "parent_id": parent_id,
                "folder_type": "NORMAL",
                "size": size,
                "hash": gcid,
                "upload_type": "UPLOAD_TYPE_RESUMABLE",
                "resumable": {"provider": "PROVIDER_ALIYUN"},
            },
            idempotent=False,
        )
        return NewFile.from_wire(body)

    def _discard(self, pending: File | None, task: Task | None) -> None:
        """A failed upload must leave nothing visible: delete the pending file and task."""
        try:
            if pending is not None and pending.id:
                self.drive.delete([pending.id])
            if task is not None and task.id:
                self.drive.delete_tasks([task.id])
        except PikPakError as exc:
            log.warning(
                "could not clean up a failed upload (%s); PikPak keeps it pending and invisible",
                exc,
            )

    # ------------------------------------------------------------------ S3 leg
    def _send(
        self,
        target: UploadTarget,
        path: Path,
        size: int,
        stop: threading.Event | None,
        progress: Callable[[int], None],
    ) -> None:
        leg = _StoreLeg(self.session.connection, self.settings, target, stop)
        if size < self.settings.cutoff:
            leg.put_whole(path, size)
            progress(size)
        else:
            leg.put_in_parts(path, size, progress)


class _StoreLeg:
    """One file's way into the object store: a client for the ticket's host (moved once to
    the other domain's host if that one does not answer) and every request to it, repeated
    as the error table and the policy say."""

    def __init__(
        self,
        connection: Any,
        settings: UploadSettings,
        target: UploadTarget,
        stop: threading.Event | None,
    ) -> None:
        self._connection, self._target, self._stop = connection, target, stop
        self._settings, self._policy = settings, settings.retry
        self.bucket, self.key = target.bucket, target.key
        self._client = self._client_for(target.endpoint)
        # PikPak names upload hosts on a domain that may not resolve where we are (OpenList
        # #2431, #2986): the same store answers on its other domain, tried once.
        self._other = other_domain(self._client.meta.endpoint_url)
        self._swap = threading.Lock()

    def _client_for(self, endpoint: str) -> Any:
        return object_store_client(
            self._connection,
            endpoint,
            access_key_id=self._target.access_key_id,
            access_key_secret=self._target.access_key_secret,
            security_token=self._target.security_token,
            pool_size=self._settings.concurrency + 2,
        )

    def _moved(self, used: Any, exc: BaseException) -> bool:
        """Whether to ask again on the other domain's host (once per upload)."""
        with self._swap:
            if self._client is not used:
                return True  # another part has moved the upload already
            if self._other is None:
                return False
            log.warning(
                "upload host %s did not answer (%s); trying %s",
                host_of(used.meta.endpoint_url),
                type(exc).__name__,
                host_of(self._other),
            )
            self._client, self._other = self._client_for(urlsplit(self._other).netloc), None
            return True

    def store(self, what: str, request: Callable[[Any], T], *, stoppable: bool = True) -> T:
        """One request to the store (``request`` is given the client to ask), repeated as
        the error table and the policy say."""
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.exceptions import ConnectionError as Unreachable

        stop = self._stop if stoppable else None

        def attempt() -> T:
            if stop is not None and stop.is_set():
                raise Stopped(f"{what} was given up: the file is no longer wanted")
            used = self._client
            try:
                return request(used)
            except (BotoCoreError, ClientError) as exc:
                error, _ = object_store_error(exc, used.meta.endpoint_url)
                if isinstance(exc, Unreachable) and self._moved(used, exc):
                    raise Again(error, 0) from None  # at once, on the other domain
                # Every request here may be repeated: a PUT of the same bytes to the
                # same key or part, a new multipart id, a completion or abort.
                again = self._policy.again_for(error, idempotent=True)
                if again is None:
                    raise error from None
                log.info("%s failed (%s); retrying", client_text(what), error)
                raise again from None

        return self._policy.run(attempt, sleep=stop.wait if stop is not None else None)

    def put_whole(self, path: Path, size: int) -> None:
        def put(client: Any) -> Any:
            with open(path, "rb") as body:
                return client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentLength=size
                )

        self.store("the upload", put)

    def put_in_parts(self, path: Path, size: int, progress: Callable[[int], None]) -> None:
        bucket, key = self.bucket, self.key
        started = self.store(
            "starting the multipart upload",
            lambda client: client.create_multipart_upload(Bucket=bucket, Key=key),
        )
        upload_id = started["UploadId"]
        part = max(self._settings.part_size, math.ceil(size / MAX_PARTS / MIB) * MIB)
        fd = os.open(path, os.O_RDONLY)
        try:
            parts = _Parts(self, fd, size, part, upload_id, progress)
            with ThreadPoolExecutor(
                self._settings.concurrency, thread_name_prefix="pikdav-part"
            ) as pool:
                sent = list(pool.map(parts.send, range(1, parts.count + 1)))
            self.store(
                "completing the multipart upload",
                lambda client: client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": sorted(sent, key=lambda p: p["PartNumber"])},
                ),
            )
        except BaseException:
            try:
                self.store(
                    "aborting the multipart upload",
                    lambda client: client.abort_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=upload_id
                    ),
                    stoppable=False,
                )
            except PikPakError as exc:  # the store may be unreachable; the ticket expires
                log.warning("could not abort the multipart upload: %s", exc)
            raise
        finally:
            os.close(fd)


class _Parts:
    """The parts of one multipart upload, sent from several threads; ``progress`` hears the
    bytes of the parts the store has taken."""

    def __init__(
        self,
        leg: _StoreLeg,
        fd: int,
        size: int,
        part: int,
        upload_id: str,
        progress: Callable[[int], None],
    ) -> None:
        self._leg, self._fd, self._size, self._upload_id = leg, fd, size, upload_id
        self._progress = progress
        self.part, self.count = part, math.ceil(size / part)
        self._sent, self._lock = 0, threading.Lock()

    def send(self, number: int) -> dict[str, Any]:
        offset = (number - 1) * self.part
        length = min(self.part, self._size - offset)
        # Each attempt reads its part from the spooled file as it is sent: a part held
        # whole (8 MiB each, four at once, plus what glibc then keeps) was most of the
        # gateway's peak RSS on a large PUT.
        answer = self._leg.store(
            f"part {number} of {self.count}",
            lambda client: client.upload_part(
                Bucket=self._leg.bucket,
                Key=self._leg.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=PartReader(self._fd, offset, length),
                ContentLength=length,
            ),
        )
        with self._lock:
            self._sent += length
            self._progress(self._sent)
        return {"PartNumber": number, "ETag": answer["ETag"]}


class PartReader:
    """``length`` bytes of an open file from ``offset``, read in small pieces as they are sent.

    Seekable and sized, so that botocore can measure it and rewind it; no ``fileno``, so that
    nothing takes the whole file's size for the part's."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd, self._start, self._length, self._at = fd, offset, length, 0

    def __len__(self) -> int:
        return self._length

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._length}[whence]
        self._at = max(0, base + offset)
        return self._at

    def read(self, n: int = -1) -> bytes:
        left = self._length - self._at
        if left <= 0:
            return b""
        take = left if n is None or n < 0 else min(n, left)
        data = os.pread(self._fd, take, self._start + self._at)
        if not data:
            raise OSError(f"the spooled file ended {left} bytes before its part did")
        self._at += len(data)
        return data


def _unheard(sent: int) -> None:
    """Progress nobody listens to."""
