"""The object store behind upload tickets: the slice of S3 / Aliyun OSS that PikPak clients use.

rclone speaks S3 with SigV4 (AWS SDK v2, region ``pikpak``); OpenList (Aliyun OSS SDK) and
pikpakcli sign the OSS v1 way, ``OSS <AK>:<signature>`` with ``X-OSS-Security-Token``. All
of them address ``<bucket>.<endpoint>/<key>``; path style (``/<bucket>/<key>``) works too,
which is what a test on ``127.0.0.1`` uses. The credentials are the ticket's temporary ones
and reach exactly the ticket's key.

Bodies are streamed to spool files and never held in memory. A complete object (PutObject,
or CompleteMultipartUpload concatenating its parts) goes through ``World.finish_upload``,
PikPak's callback: content that does not match the ticket's size and GCID never becomes a
file, and the client sees OSS's ``CallbackFailed``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import re
import secrets
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from pikdav.pikpak.gcid import GcidHasher

from .http import Request, Response
from .world import Upload, UploadRejected, World

try:
    from defusedxml.ElementTree import fromstring as _parse_xml
except ImportError:  # pragma: no cover - defusedxml comes with wsgidav
    # The XML comes from test clients on loopback; ElementTree is acceptable there.
    from xml.etree.ElementTree import fromstring as _parse_xml

log = logging.getLogger(__name__)

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MIN_PART_SIZE = 100 * 1024  # Aliyun OSS's minimum for every part but the last (S3 says 5 MiB)
MAX_PART_NUMBER = 10_000
MAX_OBJECT_SIZE = 5 << 30  # one PutObject or one part
MAX_SKEW = 15 * 60  # seconds a SigV4 request time may differ from ours
_CHUNK = 1 << 20
_XML_LIMIT = 4 << 20  # 10000 parts listed take about 1 MiB
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
_SIGV4 = "AWS4-HMAC-SHA256"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PART_NUMBER = re.compile(r"[0-9]{1,5}")
_AWS_CHUNKED = "aws-chunked encoding is not supported with the specified x-amz-content-sha256 value"

# Query parameters that OSS v1 signs as part of the resource (its "sub-resources").
_OSS_SUBRESOURCES = frozenset(
    {
        "acl",
        "append",
        "callback",
        "callback-var",
        "comp",
        "continuation-token",
        "cors",
        "delete",
        "lifecycle",
        "location",
        "logging",
        "objectMeta",
        "partNumber",
        "position",
        "referer",
        "replication",
        "restore",
        "security-token",
        "symlink",
        "tagging",
        "uploadId",
        "uploads",
        "versionId",
        "website",
        "x-oss-process",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
    }
)

# The one table of refusals: code -> (HTTP status, S3's message).
_ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "CallbackFailed": (400, "The upload callback failed."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size."),
    "ExpiredToken": (403, "The provided token has expired."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found. The part may "
        "not have been uploaded, or the specified entity tag may not match "
        "the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidToken": (403, "The provided token is malformed or otherwise invalid."),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate "
        "against our published schema.",
    ),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the current time is too large.",
    ),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
}


class S3Error(Exception):
    """A refusal, answered as S3's XML error; ``details`` become extra elements."""

    def __init__(self, code: str, message: str | None = None, **details: Any) -> None:
        status, default = _ERRORS[code]
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message or default
        self.details = details


class ObjectStore:
    """The bucket of upload tickets, served over S3's REST API."""

    def __init__(self, world: World) -> None:
        self.world = world

    def owns(self, req: Request) -> bool:
        return self._key(req) is not None

    def handle(self, req: Request) -> Response:
        request_id = secrets.token_hex(12).upper()
        host_id = base64.b64encode(secrets.token_bytes(24)).decode()
        key = self._key(req) or ""
        body = _Body(
            req.environ.get("wsgi.input") or io.BytesIO(), _body_length(req), self.world.store_rate
        )
        upload = self.world.find_upload(self.world.bucket, key) if key else None
        account = upload.account if upload else None
        self.world.stats.add("objstore_requests", account)
        try:
            resp = self._serve(req, key, upload, body)
        except S3Error as exc:
            log.info(
                "object store refused %s %s: %s %s", req.method, req.path, exc.code, exc.message
            )
            resp = _error_response(exc, req, request_id, host_id)
        except Exception:
            log.exception("object store: %s %s failed", req.method, req.path)
            resp = _error_response(S3Error("InternalError"), req, request_id, host_id)
        if resp.status >= 300:
            self.world.stats.add("objstore_rejected", account)
            body.drain()
        resp.headers += [
            ("x-amz-request-id", request_id),
            ("x-oss-request-id", request_id),
            ("x-amz-id-2", host_id),
        ]
        return resp

    # ------------------------------------------------------------------ addressing
    def _key(self, req: Request) -> str | None:
        """The object key a request addresses, or None when it is not for our bucket."""
        bucket = self.world.bucket
        path = _decoded(req.path)
        if req.hostname.startswith(bucket + "."):
            return path[1:]
        prefix = "/" + bucket
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) + 1 :]
        return None

    # ------------------------------------------------------------------ dispatch
    def _serve(self, req: Request, key: str, upload: Upload | None, body: _Body) -> Response:
        if not key:
            raise S3Error("AccessDenied")  # bucket-level calls: the STS policy covers one key
        operation = _OPERATIONS.get((req.method, _subresource(req.query)))
        if operation is None:
            raise S3Error("MethodNotAllowed", Method=req.method, ResourceType="OBJECT")
        _refuse_aws_chunked(req)
        if upload is None:
            if "uploadId" in req.query:
                raise S3Error("NoSuchUpload", UploadId=req.query["uploadId"])
            raise S3Error("AccessDenied")
        self._authenticate(req, key, upload)
        body.expect(req)
        return operation(self, req, key, upload, body)

    def _count_bytes(self, body: _Body, upload: Upload) -> None:
        """Object bytes (not XML documents) count for the ticket's account as they arrive."""
        account = upload.account
        body.on_bytes = lambda n: self.world.stats.add("objstore_bytes", account, n)

    # ------------------------------------------------------------------ auth
    def _authenticate(self, req: Request, key: str, upload: Upload) -> None:
        auth = req.header("Authorization").strip()
        proof: _SigV4 | _OssV1
        if auth.startswith(_SIGV4 + " "):
            proof = _SigV4.from_header(req, auth)
        elif "X-Amz-Algorithm" in req.query:
            proof = _SigV4.from_query(req)
        elif auth.startswith("OSS "):
            proof = _OssV1.from_header(req, auth, self.world.bucket, key)
        elif not auth:
            raise S3Error("AccessDenied", "Anonymous access is forbidden for this operation.")
        else:
            raise S3Error(
                "InvalidArgument",
                "Unsupported Authorization Type",
                ArgumentName="Authorization",
                ArgumentValue=auth.split(" ")[0],
            )
        if not _same(proof.access_key_id, upload.access_key_id):
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=proof.access_key_id)
        if not _same(proof.security_token, upload.security_token):
            raise S3Error("InvalidToken")
        if time.time() >= upload.expires_at:
            raise S3Error("ExpiredToken")
        proof.verify(upload.access_key_secret)

    # ------------------------------------------------------------------ operations
    def _put_object(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        if req.header("x-amz-copy-source") or req.header("x-oss-copy-source"):
            raise S3Error("NotImplemented", Header="x-amz-copy-source")
        _check_size(body.length)
        self._count_bytes(body, upload)
        spool = self.world.blobs.new_spool()
        try:
            ingested = self.world.blobs.ingest(body, body.length, spool)
            body.finish()
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        etag = body.md5.hexdigest()
        self._finish(upload, ingested.path, ingested.size, ingested.gcid)
        return Response.empty(200, [("ETag", f'"{etag}"')])

    def _create_multipart(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        body.drain()
        upload_id = secrets.token_hex(16).upper()
        with self.world.lock:
            upload.multipart[upload_id] = {}
        return _xml_response(
            "InitiateMultipartUploadResult",
            [("Bucket", self.world.bucket), ("Key", key), ("UploadId", upload_id)],
        )

    def _upload_part(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        number = _part_number(req.query.get("partNumber"))
        upload_id = req.query.get("uploadId", "")
        if not upload_id:
            raise S3Error("InvalidRequest", "A part needs an uploadId.")
        with self.world.lock:
            known = upload_id in upload.multipart
        if not known:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        _check_size(body.length)
        self._count_bytes(body, upload)
        path = self.world.blobs.new_spool()
        try:
            with open(path, "wb") as fh:
                while chunk := body.read(_CHUNK):
                    fh.write(chunk)
            body.finish()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        etag = body.md5.hexdigest()
        with self.world.lock:
            parts = upload.multipart.get(upload_id)
            replaced = parts.get(number) if parts is not None else None
            if parts is not None:
                parts[number] = (path, etag, body.received)
        if parts is None:  # aborted or completed while the part was arriving
            path.unlink(missing_ok=True)
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        if replaced is not None:
            replaced[0].unlink(missing_ok=True)
        return Response.empty(200, [("ETag", f'"{etag}"')])

    def _complete_multipart(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        upload_id = req.query["uploadId"]
        raw = body.read_all(_XML_LIMIT)
        body.finish()
        listed = _parse_complete(raw)
        with self.world.lock:
            parts = upload.multipart.get(upload_id)
            if parts is None:
                raise S3Error("NoSuchUpload", UploadId=upload_id)
            chosen = _choose_parts(listed, parts, upload_id)
            # The upload is consumed: a second Complete or a late part gets NoSuchUpload.
            del upload.multipart[upload_id]
        total = sum(size for _, _, size in chosen)
        spool = self.world.blobs.new_spool()
        hasher = GcidHasher(total)
        try:
            with open(spool, "wb") as out:
                for path, _, _ in chosen:
                    with open(path, "rb") as fh:
                        while chunk := fh.read(_CHUNK):
                            hasher.update(chunk)
                            out.write(chunk)
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        finally:
            _remove_parts(parts)
        digests = b"".join(bytes.fromhex(etag) for _, etag, _ in chosen)
        etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(chosen)}"
        self._finish(upload, spool, total, hasher.hexdigest())
        location = f"{req.scheme}://{req.host}{quote(_decoded(req.path), safe='/~')}"
        return _xml_response(
            "CompleteMultipartUploadResult",
            [
                ("Location", location),
                ("Bucket", self.world.bucket),
                ("Key", key),
                ("ETag", f'"{etag}"'),
            ],
        )

    def _abort_multipart(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        body.drain()
        upload_id = req.query["uploadId"]
        with self.world.lock:
            parts = upload.multipart.pop(upload_id, None)
        if parts is None:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        _remove_parts(parts)
        return Response.empty(204)

    def _list_parts(self, req: Request, key: str, upload: Upload, body: _Body) -> Response:
        body.drain()
        upload_id = req.query["uploadId"]
        max_parts = _int_argument(req.query, "max-parts", 1000, 0, 1000)
        marker = _int_argument(req.query, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        with self.world.lock:
            parts = upload.multipart.get(upload_id)
            parts = dict(parts) if parts is not None else None
        if parts is None:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        numbers = sorted(n for n in parts if n > marker)
        page = numbers[:max_parts]
        entries: list[tuple[str, Any]] = []
        for number in page:
            path, etag, size = parts[number]
            try:
                modified = path.stat().st_mtime
            except OSError:
                modified = time.time()
            entries.append(
                (
                    "Part",
                    [
                        ("PartNumber", number),
                        ("LastModified", _iso8601(modified)),
                        ("ETag", f'"{etag}"'),
                        ("Size", size),
                    ],
                )
            )
        return _xml_response(
            "ListPartsResult",
            [
                ("Bucket", self.world.bucket),
                ("Key", key),
                ("UploadId", upload_id),
                ("StorageClass", "STANDARD"),
                ("PartNumberMarker", marker),
                ("NextPartNumberMarker", page[-1] if page else marker),
                ("MaxParts", max_parts),
                ("IsTruncated", len(numbers) > len(page)),
                *entries,
            ],
        )

    # ------------------------------------------------------------------ completion
    def _finish(self, upload: Upload, path: Path, size: int, gcid: str) -> None:
        try:
            self.world.finish_upload(upload, path, size, gcid)
        except UploadRejected as exc:
            raise S3Error("CallbackFailed", str(exc)) from None
        with self.world.lock:
            abandoned = list(upload.multipart.values())
            upload.multipart.clear()
        for parts in abandoned:
            _remove_parts(parts)


# (method, sub-resource) -> operation; the sub-resource is what the query names.
_OPERATIONS: dict[tuple[str, str], Callable[..., Response]] = {
    ("PUT", ""): ObjectStore._put_object,
    ("PUT", "part"): ObjectStore._upload_part,
    ("POST", "uploads"): ObjectStore._create_multipart,
    ("POST", "uploadId"): ObjectStore._complete_multipart,
    ("DELETE", "uploadId"): ObjectStore._abort_multipart,
    ("GET", "uploadId"): ObjectStore._list_parts,
}


def _subresource(query: dict[str, str]) -> str:
    if "partNumber" in query:
        return "part"
    if "uploads" in query:
        return "uploads"
    if "uploadId" in query:
        return "uploadId"
    return ""


# ---------------------------------------------------------------------- request bodies
def _body_length(req: Request) -> int | None:
    """Content-Length, or None for a body the server de-chunked (it ends at EOF)."""
    if "chunked" in req.header("Transfer-Encoding").lower():
        return None
    length = req.content_length
    if length is not None:
        return max(length, 0)
    return None if req.environ.get("wsgi.input_terminated") else 0


class _Body:
    """A request body, read once, through the digests that check it.

    Reads never go past Content-Length (PEP 3333); without one, the server de-chunked the
    body and it ends at EOF."""

    def __init__(self, stream, length: int | None, rate: int = 0) -> None:
        self._stream = stream
        self.length = length
        self._remaining = length
        self.received = 0
        # ``store_rate``: bytes per second one request's body is taken in at (0: at once),
        # the speed of an upload to PikPak's store from far away.
        self._rate = rate
        self._began = time.monotonic()
        self.md5 = hashlib.md5(usedforsecurity=False)  # the ETag
        self._checks: list[tuple[Any, bytes, S3Error]] = []
        self.on_bytes: Callable[[int], None] | None = None

    def expect(self, req: Request) -> None:
        """Digests the client declared in headers, checked when the body has arrived."""
        content_md5 = req.header("Content-MD5").strip()
        if content_md5:
            digest = _b64(content_md5, 16)
            if digest is None:
                raise S3Error("InvalidDigest", **{"Content-MD5": content_md5})
            self._checks.append(
                (self.md5, digest, S3Error("BadDigest", ExpectedDigest=content_md5))
            )
        sha256 = req.header("x-amz-content-sha256").strip()
        if _HEX64.fullmatch(sha256):
            hasher = hashlib.sha256()
            self._checks.append(
                (
                    hasher,
                    bytes.fromhex(sha256),
                    S3Error(
                        "XAmzContentSHA256Mismatch", ClientComputedContentSHA256=sha256.lower()
                    ),
                )
            )
        for name, (factory, size) in _CHECKSUMS.items():
            value = req.header(f"x-amz-checksum-{name}").strip()
            if not value:
                continue
            digest = _b64(value, size)
            if digest is None:
                raise S3Error(
                    "InvalidRequest", f"Value for x-amz-checksum-{name} header is invalid."
                )
            self._checks.append(
                (
                    factory(),
                    digest,
                    S3Error(
                        "BadDigest",
                        f"The {name.upper()} you specified did not match the calculated checksum.",
                    ),
                )
            )

    def read(self, size: int | None = -1) -> bytes:
        if self._remaining == 0:
            return b""
        want = _CHUNK if size is None or size < 0 else size
        if self._rate:
            want = min(want, max(1, self._rate // 20))  # twenty steps a second
            ahead = self.received / self._rate - (time.monotonic() - self._began)
            if ahead > 0:
                time.sleep(ahead)
        if self._remaining is not None:
            want = min(want, self._remaining)
        data = self._stream.read(want)
        if not data:
            self._remaining = 0
            return b""
        if self._remaining is not None:
            self._remaining -= len(data)
        self.received += len(data)
        self.md5.update(data)
        for hasher, _, _ in self._checks:
            hasher.update(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return data

    def read_all(self, limit: int) -> bytes:
        chunks, total = [], 0
        while total <= limit and (chunk := self.read(_CHUNK)):
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise S3Error("MalformedXML", "Your request was too big.")
        return b"".join(chunks)

    def finish(self) -> None:
        """The whole body has been read: it must be as long and hash as announced."""
        if self.length is not None and self.received != self.length:
            raise S3Error("IncompleteBody")
        for hasher, expected, error in self._checks:
            computed = hasher.digest()
            if not hmac.compare_digest(computed, expected):
                if error.code == "XAmzContentSHA256Mismatch":
                    error.details["S3ComputedContentSHA256"] = computed.hex()
                raise error

    def drain(self) -> None:
        """Read and drop what is left, so the connection can carry the next request."""
        self.on_bytes = None
        self._checks = []
        try:
            while self.read(_CHUNK):
                pass
        except (OSError, ValueError):  # the client went away; nothing left to keep in sync
            self._remaining = 0


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


# Checksums boto3 sends as headers (CRC32 is its default); CRC32C and CRC64NVME pass unchecked.
_CHECKSUMS: dict[str, tuple[Callable[[], Any], int]] = {
    "crc32": (_Crc32, 4),
    "sha1": (lambda: hashlib.sha1(usedforsecurity=False), 20),
    "sha256": (hashlib.sha256, 32),
}


def _refuse_aws_chunked(req: Request) -> None:
    """Aliyun OSS does not speak S3's aws-chunked framing (recent AWS SDKs send it over TLS
    with a trailing checksum unless told "checksums only when required"); it refuses it."""
    encoding = req.header("Content-Encoding").lower()
    sha256 = req.header("x-amz-content-sha256").strip()
    if "aws-chunked" in encoding or sha256.upper().startswith("STREAMING-"):
        raise S3Error(
            "InvalidArgument",
            _AWS_CHUNKED,
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=sha256,
        )
    if sha256 and sha256 != "UNSIGNED-PAYLOAD" and not _HEX64.fullmatch(sha256):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=sha256,
        )


def _check_size(length: int | None) -> None:
    if length is not None and length > MAX_OBJECT_SIZE:
        raise S3Error("EntityTooLarge", ProposedSize=length, MaxSizeAllowed=MAX_OBJECT_SIZE)


def _part_number(raw: str | None) -> int:
    if raw is None or not _PART_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=raw or "",
        )
    return int(raw)


def _int_argument(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise S3Error(
            "InvalidArgument",
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=raw,
        )
    return max(low, min(high, int(raw)))


# ---------------------------------------------------------------------- multipart
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_complete(raw: bytes) -> list[tuple[int, str]]:
    """The (part number, ETag) list of a CompleteMultipartUpload document, as given."""
    try:
        root = _parse_xml(raw)  # noqa: S314 - defusedxml when installed (see the import)
    except (ET.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
        raise S3Error("MalformedXML") from None
    if _local(root.tag) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML")
    listed = []
    for part in root:
        if _local(part.tag) != "Part":
            raise S3Error("MalformedXML")
        fields = {_local(child.tag): (child.text or "").strip() for child in part}
        number, etag = fields.get("PartNumber", ""), fields.get("ETag")
        if not _PART_NUMBER.fullmatch(number) or etag is None:
            raise S3Error("MalformedXML")
        # pikpakcli strips the quotes; OSS answers upper-case hex. Compare the bare digest.
        listed.append((int(number), etag.strip('"').lower()))
    if not listed:
        raise S3Error("MalformedXML")
    return listed


def _choose_parts(
    listed: list[tuple[int, str]], parts: dict[int, tuple[Path, str, int]], upload_id: str
) -> list[tuple[Path, str, int]]:
    previous = 0
    for number, _ in listed:
        if number <= previous:
            raise S3Error("InvalidPartOrder", UploadId=upload_id)
        previous = number
    chosen = []
    for number, etag in listed:
        stored = parts.get(number)
        if stored is None or stored[1] != etag:
            raise S3Error("InvalidPart", UploadId=upload_id, PartNumber=number, ETag=f'"{etag}"')
        chosen.append(stored)
    for (number, etag), (_, _, size) in zip(listed[:-1], chosen[:-1], strict=True):
        if size < MIN_PART_SIZE:
            raise S3Error(
                "EntityTooSmall",
                ProposedSize=size,
                MinSizeAllowed=MIN_PART_SIZE,
                PartNumber=number,
                ETag=f'"{etag}"',
            )
    return chosen


def _remove_parts(parts: dict[int, tuple[Path, str, int]]) -> None:
    for path, _, _ in parts.values():
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------- signatures
class _SigV4:
    """AWS Signature Version 4, from the Authorization header or a presigned query."""

    def __init__(
        self,
        req: Request,
        *,
        access_key_id: str,
        scope: list[str],
        amz_date: str,
        signed_headers: str,
        signature: str,
        security_token: str,
        payload_hash: str,
        presigned: bool,
    ) -> None:
        self.req = req
        self.access_key_id = access_key_id
        self.scope = scope
        self.amz_date = amz_date
        self.signed_headers = signed_headers
        self.signature = signature
        self.security_token = security_token
        self.payload_hash = payload_hash
        self.presigned = presigned

    @classmethod
    def from_header(cls, req: Request, auth: str) -> _SigV4:
        fields: dict[str, str] = {}
        for item in auth[len(_SIGV4) :].split(","):
            name, sep, value = item.strip().partition("=")
            if sep:
                fields[name.strip()] = value.strip()
        if not all(fields.get(n) for n in ("Credential", "SignedHeaders", "Signature")):
            raise S3Error(
                "AuthorizationHeaderMalformed",
                "The authorization header is "
                "malformed; it needs Credential, SignedHeaders and Signature.",
            )
        access_key_id, scope = _credential_scope(fields["Credential"])
        amz_date, when = _request_time(req)
        if abs(time.time() - when) > MAX_SKEW:
            raise S3Error(
                "RequestTimeTooSkewed",
                RequestTime=amz_date,
                ServerTime=_iso8601(time.time()),
                MaxAllowedSkewMilliseconds=MAX_SKEW * 1000,
            )
        if scope[0] != amz_date[:8]:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                "The authorization header is "
                "malformed; Invalid credential date. Date is not the same as "
                "X-Amz-Date.",
            )
        payload_hash = req.header("x-amz-content-sha256").strip()
        if not payload_hash:
            raise S3Error(
                "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
            )
        return cls(
            req,
            access_key_id=access_key_id,
            scope=scope,
            amz_date=amz_date,
            signed_headers=fields["SignedHeaders"],
            signature=fields["Signature"],
            security_token=req.header("x-amz-security-token").strip(),
            payload_hash=payload_hash,
            presigned=False,
        )

    @classmethod
    def from_query(cls, req: Request) -> _SigV4:
        query = req.query
        if query.get("X-Amz-Algorithm") != _SIGV4:
            raise S3Error(
                "InvalidArgument",
                f'X-Amz-Algorithm only supports "{_SIGV4}"',
                ArgumentName="X-Amz-Algorithm",
            )
        missing = [
            n
            for n in (
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
            )
            if not query.get(n)
        ]
        if missing:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"Query-string authentication requires {', '.join(missing)}.",
            )
        access_key_id, scope = _credential_scope(query["X-Amz-Credential"])
        amz_date = query["X-Amz-Date"]
        when = _parse_amz_date(amz_date)
        expires = query["X-Amz-Expires"]
        if not expires.isdigit() or not 1 <= int(expires) <= 604800:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                "X-Amz-Expires must be between 1 and 604800 seconds.",
            )
        if time.time() > when + int(expires):
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                **{
                    "X-Amz-Expires": expires,
                    "Expires": _iso8601(when + int(expires)),
                    "ServerTime": _iso8601(time.time()),
                },
            )
        return cls(
            req,
            access_key_id=access_key_id,
            scope=scope,
            amz_date=amz_date,
            signed_headers=query["X-Amz-SignedHeaders"],
            signature=query["X-Amz-Signature"],
            security_token=query.get("X-Amz-Security-Token", ""),
            payload_hash=req.header("x-amz-content-sha256").strip() or "UNSIGNED-PAYLOAD",
            presigned=True,
        )

    def canonical_requests(self) -> list[str]:
        """The canonical request, for each way the path may have been encoded when signed."""
        req = self.req
        exclude = ("X-Amz-Signature",) if self.presigned else ()
        query = _canonical_query(req.query_string, exclude)
        headers = "".join(
            f"{name}:{' '.join(_signed_header(req, name).split())}\n"
            for name in self.signed_headers.split(";")
        )
        return [
            "\n".join([req.method, uri, query, headers, self.signed_headers, self.payload_hash])
            for uri in _canonical_uris(req)
        ]

    def verify(self, secret: str) -> None:
        key = ("AWS4" + secret).encode()
        for part in self.scope:
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        scope = "/".join(self.scope)
        first: tuple[str, str] | None = None
        for canonical in self.canonical_requests():
            string_to_sign = "\n".join(
                [_SIGV4, self.amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
            )
            expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            if _same(expected, self.signature.lower()):
                return
            first = first or (string_to_sign, canonical)
        string_to_sign, canonical = first or ("", "")
        raise S3Error(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=self.access_key_id,
            StringToSign=string_to_sign,
            SignatureProvided=self.signature,
            CanonicalRequest=canonical,
        )


def _credential_scope(credential: str) -> tuple[str, list[str]]:
    """``<AK>/<YYYYMMDD>/<region>/s3/aws4_request`` -> AK, [date, region, service, term];
    any region is accepted (rclone says ``pikpak``)."""
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; "
            "the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    if parts[3] != "s3":
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; "
            f'incorrect service "{parts[3]}". This endpoint belongs to "s3".',
        )
    return parts[0], parts[1:]


def _parse_amz_date(value: str) -> float:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        ) from None


def _request_time(req: Request) -> tuple[str, float]:
    """The signed request time (x-amz-date, else Date) as SigV4 writes it, and as a time."""
    amz_date = req.header("x-amz-date").strip()
    if amz_date:
        return amz_date, _parse_amz_date(amz_date)
    try:
        when = parsedate_to_datetime(req.header("Date")).astimezone(UTC)
    except (TypeError, ValueError):
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        ) from None
    return when.strftime("%Y%m%dT%H%M%SZ"), when.timestamp()


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_query(query_string: str, exclude: tuple[str, ...] = ()) -> str:
    pairs = []
    for item in query_string.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        name, value = unquote(name), unquote(value)
        if name not in exclude:
            pairs.append((_uri_encode(name), _uri_encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_uris(req: Request) -> list[str]:
    """The path as sent, and the path re-encoded from its decoded form (S3 encodes once)."""
    uris = []
    raw = req.environ.get("REQUEST_URI") or req.environ.get("RAW_URI") or ""
    raw = raw.split("?", 1)[0]
    if "://" in raw:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    if raw.startswith("/"):
        uris.append(raw)
    full = _decoded(req.environ.get("SCRIPT_NAME", "") + req.path)
    encoded = quote(full, safe="/~")
    if encoded not in uris:
        uris.append(encoded)
    return uris


def _signed_header(req: Request, name: str) -> str:
    if name == "host":
        return req.environ.get("HTTP_HOST", "")
    return req.header(name)


class _OssV1:
    """Aliyun OSS's v1 scheme: ``OSS <AK>:base64(HMAC-SHA1(secret, string to sign))``."""

    def __init__(
        self, req: Request, access_key_id: str, signature: str, bucket: str, key: str
    ) -> None:
        self.req = req
        self.access_key_id = access_key_id
        self.signature = signature
        self.security_token = req.header("x-oss-security-token").strip()
        self.bucket = bucket
        self.key = key

    @classmethod
    def from_header(cls, req: Request, auth: str, bucket: str, key: str) -> _OssV1:
        access_key_id, sep, signature = auth[4:].strip().rpartition(":")
        if not sep or not access_key_id or not signature:
            raise S3Error(
                "InvalidArgument",
                "Authorization header is invalid.",
                ArgumentName="Authorization",
                ArgumentValue=auth,
            )
        return cls(req, access_key_id, signature, bucket, key)

    def string_to_sign(self) -> str:
        req = self.req
        oss_headers = sorted(
            (name[5:].lower().replace("_", "-"), value.strip())
            for name, value in req.environ.items()
            if name.startswith("HTTP_X_OSS_") and isinstance(value, str)
        )
        subresources = sorted(
            name if value == "" else f"{name}={value}"
            for name, value in req.query.items()
            if name in _OSS_SUBRESOURCES
        )
        resource = f"/{self.bucket}/{self.key}"
        if subresources:
            resource += "?" + "&".join(subresources)
        return "".join(
            [
                f"{req.method}\n{req.header('Content-MD5')}\n{req.header('Content-Type')}\n"
                f"{req.header('Date')}\n",
                *(f"{name}:{value}\n" for name, value in oss_headers),
                resource,
            ]
        )

    def verify(self, secret: str) -> None:
        string_to_sign = self.string_to_sign()
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        if not _same(base64.b64encode(digest).decode(), self.signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                OSSAccessKeyId=self.access_key_id,
                StringToSign=string_to_sign,
                SignatureProvided=self.signature,
            )


# ---------------------------------------------------------------------- small helpers
def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _b64(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _decoded(path: str) -> str:
    """PATH_INFO carries the URL's bytes as latin-1 (PEP 3333); keys are UTF-8."""
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path


def _iso8601(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _document(tag: str, children: list[tuple[str, Any]], namespace: bool = True) -> str:
    root = ET.Element(tag, {"xmlns": S3_NS} if namespace else {})
    _append(root, children)
    return _XML_DECL + ET.tostring(root, encoding="unicode")


def _append(parent: ET.Element, children: list[tuple[str, Any]]) -> None:
    for name, value in children:
        node = ET.SubElement(parent, name)
        if isinstance(value, list):
            _append(node, value)
        elif isinstance(value, bool):
            node.text = "true" if value else "false"
        else:
            node.text = str(value)


def _xml_response(tag: str, children: list[tuple[str, Any]], status: int = 200) -> Response:
    return Response.xml(_document(tag, children), status)


def _error_response(exc: S3Error, req: Request, request_id: str, host_id: str) -> Response:
    children = [
        ("Code", exc.code),
        ("Message", exc.message),
        *exc.details.items(),
        ("RequestId", request_id),
        ("HostId", host_id),
    ]
    resp = Response.xml(_document("Error", children, namespace=False), exc.status)
    if req.method == "HEAD":
        resp.body = b""
    return resp
