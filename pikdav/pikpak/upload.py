"""Uploads: GCID first, then PikPak's ticket, then the bytes to its S3-compatible store.

PikPak knows content by GCID, so an upload starts by hashing. When PikPak already has the
content (or it is empty) the ticket completes at once and no byte moves ("instant upload").
Otherwise the ticket names a bucket, a key and temporary credentials for an Aliyun OSS
bucket spoken to as S3. OSS refuses ``aws-chunked`` bodies, so checksums are computed only
when an operation requires them (rclone #8629). Until the store has every byte the file
stays pending and invisible; on failure we abort the multipart upload and delete it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .drive import Drive
from .errors import PikPakError, QuotaExceeded, Transient
from .gcid import gcid_of_file
from .types import File, NewFile, Task, UploadTarget

log = logging.getLogger(__name__)

MIB = 1 << 20
MAX_PARTS = 10_000


@dataclass(frozen=True)
class UploadSettings:
    cutoff: int = 64 * MIB  # larger files go in parts
    part_size: int = 8 * MIB  # grown as needed to stay within 10,000 parts
    concurrency: int = 4
    part_attempts: int = 3


class Uploader:
    def __init__(self, drive: Drive, settings: UploadSettings | None = None) -> None:
        self.drive = drive
        self.session = drive.session
        self.settings = settings or UploadSettings()
        self._s3_lock = threading.Lock()

    def upload_file(
        self,
        parent_id: str,
        name: str,
        path: Path,
        *,
        size: int | None = None,
        gcid: str | None = None,
    ) -> File:
        size = os.path.getsize(path) if size is None else size
        gcid = gcid or gcid_of_file(path, size)
        ticket = self._ticket(parent_id, name, size, gcid)
        pending, task = ticket.file, ticket.task
        if pending is None:
            self._discard(None, task)
            raise PikPakError(f"PikPak did not say which file it made for {name}")
        if pending.complete:
            log.info("upload %s: PikPak already has this content (instant upload)", name)
            return pending
        if ticket.target is None:
            self._discard(pending, task)
            raise PikPakError("PikPak offered no way to upload this file")
        try:
            self._send(ticket.target, path, size)
            if task is not None and task.id:
                self.drive.wait_task(task.id)
            return self.drive.get_file(pending.id)
        except BaseException as exc:
            self._discard(pending, task)
            if isinstance(exc, PikPakError):
                raise
            if isinstance(exc, Exception):
                raise Transient(f"the upload to PikPak's store failed: {_describe(exc)}") from None
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
    def _client(self, target: UploadTarget):
        import boto3
        from botocore.config import Config

        scheme = urlsplit(self.session.drive_api).scheme or "https"
        endpoint = target.endpoint or urlsplit(self.session.drive_api).netloc
        host = endpoint.rsplit(":", 1)[0].strip("[]")
        try:
            ipaddress.ip_address(host)
            style = "path"
        except ValueError:
            style = "path" if host == "localhost" else "virtual"
        config = Config(
            region_name="pikpak",
            signature_version="s3v4",
            s3={"addressing_style": style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=self.settings.concurrency + 2,
            connect_timeout=10,
            read_timeout=120,
        )
        with self._s3_lock:  # boto3's default session is not thread-safe to build clients
            return boto3.session.Session().client(
                "s3",
                endpoint_url=f"{scheme}://{endpoint}",
                aws_access_key_id=target.access_key_id,
                aws_secret_access_key=target.access_key_secret,
                aws_session_token=target.security_token or None,
                config=config,
                verify=self.session.http.verify,
            )

    def _send(self, target: UploadTarget, path: Path, size: int) -> None:
        client = self._client(target)
        if size < self.settings.cutoff:
            with open(path, "rb") as body:
                client.put_object(
                    Bucket=target.bucket, Key=target.key, Body=body, ContentLength=size
                )
            return
        part = max(self.settings.part_size, math.ceil(size / MAX_PARTS / MIB) * MIB)
        count = math.ceil(size / part)
        upload_id = client.create_multipart_upload(Bucket=target.bucket, Key=target.key)["UploadId"]
        fd = os.open(path, os.O_RDONLY)

        def send_part(number: int) -> dict[str, Any]:
            offset = (number - 1) * part
            data = os.pread(fd, min(part, size - offset), offset)
            for attempt in range(1, self.settings.part_attempts + 1):
                try:
                    answer = client.upload_part(
                        Bucket=target.bucket,
                        Key=target.key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                    )
                    return {"PartNumber": number, "ETag": answer["ETag"]}
                except Exception as exc:
                    if attempt == self.settings.part_attempts or _final(exc):
                        raise
                    log.info("part %d of %d failed (%s); retrying", number, count, _describe(exc))
            raise AssertionError("unreachable")

        try:
            with ThreadPoolExecutor(
                self.settings.concurrency, thread_name_prefix="pikdav-part"
            ) as pool:
                parts = list(pool.map(send_part, range(1, count + 1)))
            client.complete_multipart_upload(
                Bucket=target.bucket,
                Key=target.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},
            )
        except BaseException:
            try:
                client.abort_multipart_upload(
                    Bucket=target.bucket, Key=target.key, UploadId=upload_id
                )
            except Exception as exc:  # the store may be unreachable; the ticket expires
                log.warning("could not abort the multipart upload: %s", _describe(exc))
            raise
        finally:
            os.close(fd)


def _final(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in (
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "AccessDenied",
        "SignatureDoesNotMatch",
        "NoSuchUpload",
    )


def _describe(exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    if code == "CallbackFailed":
        return "PikPak refused the uploaded content (size or hash mismatch)"
    if code == "ExpiredToken":
        return "the upload credentials expired"
    if code in ("EntityTooLarge", "QuotaExceeded"):
        raise QuotaExceeded("PikPak's store refused the size of this file")
    return code or type(exc).__name__
