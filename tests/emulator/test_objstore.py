"""The emulator's object store, driven the way PikPak clients drive Aliyun OSS.

rclone uses boto3's cousin (AWS SDK v2, SigV4, region ``pikpak``, checksums only when
required); OpenList and pikpakcli sign ``OSS <AK>:<signature>``. Every test looks at what
the client sees (status, S3 error code, ETag) and at what the drive then shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import defusedxml.ElementTree as ElementTree
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from pikdav.emulator import world as world_module
from pikdav.emulator.http import Request
from pikdav.emulator.objstore import ObjectStore
from pikdav.emulator.world import Upload, World
from pikdav.pikpak.gcid import gcid_of_bytes
from tests.support.tlsca import make_test_ca

MIB = 1 << 20
VHOST = "pikpak-emulator.mypikpak.com"
AWS_CHUNKED_MESSAGE = (
    "aws-chunked encoding is not supported with the specified x-amz-content-sha256 value"
)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------- the server
class Served:
    """The object store on a loopback port, with the client port of every request."""

    def __init__(self, world: World) -> None:
        self.store = ObjectStore(world)
        self.client_ports: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response) -> list[bytes]:
        req = Request(environ)
        self.client_ports.append(environ.get("REMOTE_PORT", ""))
        if not self.store.owns(req):
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        resp = self.store.handle(req)
        body = resp.body if isinstance(resp.body, bytes) else b"".join(resp.body)
        start_response(resp.status_line(), [*resp.headers, ("Content-Length", str(len(body)))])
        return [body] if req.method != "HEAD" else []


from tests.support.wsgi_server import serving  # noqa: E402


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "world")


@pytest.fixture
def app(world: World) -> Served:
    return Served(world)


@pytest.fixture
def endpoint(app: Served) -> Iterator[str]:
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------- tickets
@pytest.fixture
def ticket(world: World) -> Callable[..., Upload]:
    """An upload ticket for a pending file, as POST /drive/v1/files leaves it."""

    def make(data: bytes, *, gcid: str | None = None, name: str = "film.bin") -> Upload:
        acct = world.add_account("alice", "secret-password")
        gcid = gcid or gcid_of_bytes(data)
        node = world.add_node(
            acct,
            "",
            name,
            world_module.FILE,
            size=len(data),
            gcid=gcid,
            phase=world_module.PHASE_PENDING,
        )
        ak, sk, token = world.temp_credentials()
        key = f"{acct.user_id}/{node.id}-0a1b"
        upload = Upload(
            key,
            world.bucket,
            ak,
            sk,
            token,
            time.time() + 3600,
            len(data),
            gcid,
            acct.username,
            node.id,
            "",
        )
        world.uploads[key] = upload
        return upload

    return make


def node_of(world: World, upload: Upload) -> world_module.Node:
    return world.accounts[upload.account].nodes[upload.file_id]


def spools(world: World) -> list[Path]:
    return sorted(world.blobs.directory.glob("spool-*"))


# ---------------------------------------------------------------------- clients
def s3_client(
    endpoint: str,
    upload: Upload,
    *,
    secret: str | None = None,
    when_required: bool = True,
    verify: Any = None,
    **s3: Any,
):
    extra = {}
    if when_required:
        extra = {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    config = Config(
        s3={"addressing_style": "path", **s3}, retries={"total_max_attempts": 1}, **extra
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="pikpak",
        config=config,
        verify=verify,
        aws_access_key_id=upload.access_key_id,
        aws_secret_access_key=secret or upload.access_key_secret,
        aws_session_token=upload.security_token,
    )


def s3_error(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


def sigv4_headers(
    method: str,
    url: str,
    upload: Upload,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Headers signed by botocore itself, for requests boto3 cannot be made to send."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.context.update(context or {})
    credentials = Credentials(upload.access_key_id, upload.access_key_secret, upload.security_token)
    S3SigV4Auth(credentials, "s3", "pikpak").add_auth(request)
    return dict(request.headers.items())


def xml_error(resp: requests.Response) -> dict[str, str]:
    root = ElementTree.fromstring(resp.content)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


# ---------------------------------------------------------------------- PutObject
def test_put_object_completes_the_pending_file(world, endpoint, ticket):
    data = payload(300 * 1024)
    upload = ticket(data)
    client = s3_client(endpoint, upload)

    answer = client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert answer["ETag"] == f'"{md5_hex(data)}"'
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    node = node_of(world, upload)
    assert node.phase == world_module.PHASE_COMPLETE
    assert node.blob is not None and node.blob.gcid == gcid_of_bytes(data)
    assert node.blob.read_at(0, len(data)) == data
    assert upload.key not in world.uploads
    assert spools(world) == []
    stats = world.stats.snapshot()["accounts"]["alice"]
    assert stats["objstore_bytes"] == len(data)
    assert stats["objstore_requests"] == 1
    assert stats["objstore_rejected"] == 0


def test_put_object_with_boto3_default_checksums_is_accepted(world, endpoint, ticket):
    # Over plain HTTP boto3 sends its CRC32 as a header (no aws-chunked); it is checked.
    data = payload(64 * 1024, seed=2)
    upload = ticket(data)
    client = s3_client(endpoint, upload, when_required=False)

    answer = client.put_object(Bucket=world.bucket, Key=upload.key, Body=io.BytesIO(data))

    assert answer["ETag"] == f'"{md5_hex(data)}"'
    assert node_of(world, upload).phase == world_module.PHASE_COMPLETE


def test_put_object_without_payload_signing_is_accepted(world, endpoint, ticket):
    data = payload(10_000, seed=3)
    upload = ticket(data)
    client = s3_client(endpoint, upload, payload_signing_enabled=False)  # UNSIGNED-PAYLOAD

    client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert node_of(world, upload).phase == world_module.PHASE_COMPLETE


@pytest.mark.parametrize(
    ("argument", "code"),
    [
        (
            {
                "ContentMD5": base64.b64encode(
                    hashlib.md5(b"other", usedforsecurity=False).digest()
                ).decode()
            },
            "BadDigest",
        ),
        (
            {"ChecksumCRC32": base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()},
            "BadDigest",
        ),
        ({"ContentMD5": "not-base64!"}, "InvalidDigest"),
    ],
)
def test_a_wrong_declared_digest_is_refused(world, endpoint, ticket, argument, code):
    data = payload(20_000, seed=4)
    upload = ticket(data)
    client = s3_client(endpoint, upload)

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.put_object(Bucket=world.bucket, Key=upload.key, Body=data, **argument)

    assert s3_error(exc)[:2] == (400, code)
    assert node_of(world, upload).phase == world_module.PHASE_PENDING
    assert spools(world) == []


def test_a_body_that_does_not_match_its_signed_sha256_is_refused(world, endpoint, ticket):
    data = payload(4096, seed=5)
    upload = ticket(data)
    url = f"{endpoint}/{world.bucket}/{upload.key}"
    headers = sigv4_headers("PUT", url, upload, data)  # signs sha256(data) ...

    resp = requests.put(
        url, data=bytes(reversed(data)), headers=headers, timeout=30
    )  # ... sends others

    assert resp.status_code == 400
    error = xml_error(resp)
    assert error["Code"] == "XAmzContentSHA256Mismatch"
    assert error["ClientComputedContentSHA256"] == hashlib.sha256(data).hexdigest()
    assert node_of(world, upload).phase == world_module.PHASE_PENDING


def test_content_that_does_not_match_the_ticket_fails_the_callback(world, endpoint, ticket):
    data = payload(50_000, seed=6)
    upload = ticket(data, gcid=gcid_of_bytes(payload(50_000, seed=7)))
    client = s3_client(endpoint, upload)

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert s3_error(exc) == (400, "CallbackFailed", "content hash does not match the ticket's GCID")
    node = node_of(world, upload)
    assert node.phase == world_module.PHASE_PENDING and node.blob is None
    assert world.blobs.get(gcid_of_bytes(data)) is None
    assert spools(world) == []
    assert world.stats.snapshot()["accounts"]["alice"]["objstore_rejected"] == 1


def test_presigned_put_url_works(world, endpoint, ticket):
    data = payload(1000, seed=8)
    upload = ticket(data)
    url = s3_client(endpoint, upload).generate_presigned_url(
        "put_object", Params={"Bucket": world.bucket, "Key": upload.key}, ExpiresIn=600
    )

    resp = requests.put(url, data=data, timeout=30)

    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == f'"{md5_hex(data)}"'
    assert node_of(world, upload).phase == world_module.PHASE_COMPLETE


# ---------------------------------------------------------------------- credentials
def test_a_wrong_secret_is_a_signature_mismatch(world, endpoint, ticket):
    data = payload(1000)
    upload = ticket(data)
    client = s3_client(endpoint, upload, secret="not-the-secret")

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert s3_error(exc)[:2] == (403, "SignatureDoesNotMatch")
    assert exc.value.response["Error"]["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert node_of(world, upload).phase == world_module.PHASE_PENDING
    stats = world.stats.snapshot()["accounts"]["alice"]
    assert stats["objstore_rejected"] == 1
    assert stats["objstore_bytes"] == 0


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("access_key_id", "InvalidAccessKeyId"),
        ("security_token", "InvalidToken"),
    ],
)
def test_credentials_of_another_ticket_are_refused(world, endpoint, ticket, field, code):
    data = payload(1000)
    upload = ticket(data)
    client = s3_client(endpoint, upload)
    setattr(upload, field, getattr(upload, field) + "x")  # the store knows other values

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert s3_error(exc)[:2] == (403, code)


def test_expired_credentials_are_refused(world, endpoint, ticket):
    data = payload(1000)
    upload = ticket(data)
    upload.expires_at = time.time() - 1
    client = s3_client(endpoint, upload)

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.put_object(Bucket=world.bucket, Key=upload.key, Body=data)

    assert s3_error(exc) == (403, "ExpiredToken", "The provided token has expired.")
    assert node_of(world, upload).phase == world_module.PHASE_PENDING


def test_a_key_without_a_ticket_is_denied(world, endpoint, ticket):
    upload = ticket(b"abc")
    client = s3_client(endpoint, upload)

    with pytest.raises(botocore.exceptions.ClientError) as put:
        client.put_object(Bucket=world.bucket, Key=upload.key + "-other", Body=b"abc")
    with pytest.raises(botocore.exceptions.ClientError) as part:
        client.upload_part(
            Bucket=world.bucket, Key=upload.key + "-other", UploadId="X", PartNumber=1, Body=b"abc"
        )

    assert s3_error(put)[:2] == (403, "AccessDenied")
    assert s3_error(part)[:2] == (404, "NoSuchUpload")


def test_reading_objects_is_not_offered(world, endpoint, ticket):
    upload = ticket(b"abc")
    client = s3_client(endpoint, upload)

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.get_object(Bucket=world.bucket, Key=upload.key)

    assert s3_error(exc)[:2] == (405, "MethodNotAllowed")


# ---------------------------------------------------------------------- multipart
def test_multipart_upload_of_three_parts(world, endpoint, ticket):
    parts = [payload(5 * MIB, seed=11), payload(5 * MIB, seed=12), payload(1024, seed=13)]
    data = b"".join(parts)
    upload = ticket(data)
    client = s3_client(endpoint, upload)

    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]
    etags = [
        client.upload_part(
            Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=n, Body=part
        )["ETag"]
        for n, part in enumerate(parts, 1)
    ]
    listed = client.list_parts(Bucket=world.bucket, Key=upload.key, UploadId=upload_id)
    done = client.complete_multipart_upload(
        Bucket=world.bucket,
        Key=upload.key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )

    assert etags == [f'"{md5_hex(p)}"' for p in parts]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (n, e, len(p)) for n, (e, p) in enumerate(zip(etags, parts, strict=True), 1)
    ]
    digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    assert done["ETag"] == f'"{md5_hex(digests)}-3"'
    assert (done["Bucket"], done["Key"]) == (world.bucket, upload.key)
    node = node_of(world, upload)
    assert node.phase == world_module.PHASE_COMPLETE
    assert node.blob is not None and node.blob.gcid == gcid_of_bytes(data)
    assert node.blob.read_at(0, len(data)) == data
    assert spools(world) == []
    assert world.stats.snapshot()["accounts"]["alice"]["objstore_bytes"] == len(data)


def test_parts_may_arrive_concurrently_and_be_sent_again(world, endpoint, ticket):
    parts = [payload(200 * 1024, seed=20 + n) for n in range(6)]
    data = b"".join(parts)
    upload = ticket(data)
    client = s3_client(endpoint, upload)
    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]
    client.upload_part(
        Bucket=world.bucket,
        Key=upload.key,
        UploadId=upload_id,
        PartNumber=3,
        Body=b"a first, wrong attempt",
    )
    etags: dict[int, str] = {}

    def send(number: int) -> None:
        etags[number] = client.upload_part(
            Bucket=world.bucket,
            Key=upload.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=parts[number - 1],
        )["ETag"]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.complete_multipart_upload(
        Bucket=world.bucket,
        Key=upload.key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, 7)]},
    )

    node = node_of(world, upload)
    assert node.phase == world_module.PHASE_COMPLETE
    assert node.blob is not None and node.blob.read_at(0, len(data)) == data
    assert spools(world) == []


def test_abort_removes_the_parts(world, endpoint, ticket):
    data = payload(300 * 1024)
    upload = ticket(data)
    client = s3_client(endpoint, upload)
    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]
    etag = client.upload_part(
        Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=1, Body=data
    )["ETag"]
    assert len(spools(world)) == 1

    aborted = client.abort_multipart_upload(Bucket=world.bucket, Key=upload.key, UploadId=upload_id)

    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert spools(world) == []
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.complete_multipart_upload(
            Bucket=world.bucket,
            Key=upload.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
    assert s3_error(exc)[:2] == (404, "NoSuchUpload")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.list_parts(Bucket=world.bucket, Key=upload.key, UploadId=upload_id)
    assert s3_error(exc)[:2] == (404, "NoSuchUpload")
    assert node_of(world, upload).phase == world_module.PHASE_PENDING


@pytest.mark.parametrize("number", [0, 10001])
def test_part_numbers_run_from_1_to_10000(world, endpoint, ticket, number):
    upload = ticket(b"abc")
    client = s3_client(endpoint, upload)
    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        client.upload_part(
            Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=number, Body=b"abc"
        )

    assert s3_error(exc)[:2] == (400, "InvalidArgument")
    assert spools(world) == []


def test_complete_checks_the_parts_like_s3(world, endpoint, ticket):
    small, big = payload(50 * 1024, seed=31), payload(150 * 1024, seed=32)
    upload = ticket(small + big)
    client = s3_client(endpoint, upload)
    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]
    e1 = client.upload_part(
        Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=1, Body=small
    )["ETag"]
    e2 = client.upload_part(
        Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=2, Body=big
    )["ETag"]

    def complete(parts: list[tuple[int, str]]) -> tuple[int, str, str]:
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            client.complete_multipart_upload(
                Bucket=world.bucket,
                Key=upload.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            )
        return s3_error(exc)

    assert complete([(2, e2), (1, e1)])[:2] == (400, "InvalidPartOrder")
    assert complete([(1, e1), (2, e1)])[:2] == (400, "InvalidPart")
    assert complete([(1, e1), (3, e2)])[:2] == (400, "InvalidPart")
    assert complete([(1, e1), (2, e2)])[:2] == (400, "EntityTooSmall")  # 50 KiB < 100 KiB
    # None of these consumed the upload: its parts are still there.
    listed = client.list_parts(Bucket=world.bucket, Key=upload.key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert node_of(world, upload).phase == world_module.PHASE_PENDING


@pytest.mark.parametrize(
    "document",
    [
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        b"this is not XML",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "boom">]><CompleteMultipartUpload>'
        b"<Part><PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>",
    ],
)
def test_malformed_complete_xml_is_refused(world, endpoint, ticket, document):
    data = payload(1024)
    upload = ticket(data)
    client = s3_client(endpoint, upload)
    upload_id = client.create_multipart_upload(Bucket=world.bucket, Key=upload.key)["UploadId"]
    client.upload_part(
        Bucket=world.bucket, Key=upload.key, UploadId=upload_id, PartNumber=1, Body=data
    )
    url = f"{endpoint}/{world.bucket}/{upload.key}?uploadId={upload_id}"

    resp = requests.post(
        url, data=document, headers=sigv4_headers("POST", url, upload, document), timeout=30
    )

    assert resp.status_code == 400
    assert xml_error(resp)["Code"] == "MalformedXML"
    assert node_of(world, upload).phase == world_module.PHASE_PENDING


# ---------------------------------------------------------------------- aws-chunked
def aws_chunked(data: bytes) -> bytes:
    """S3's aws-chunked framing with an unsigned trailing CRC32, as boto3 sends it."""
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    return (
        f"{len(data):x}\r\n".encode()
        + data
        + b"\r\n0\r\n"
        + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    )


def test_boto3_aws_chunked_upload_is_refused_like_oss(world, app, ticket, tmp_path):
    # boto3 only uses aws-chunked with a trailing checksum over TLS, so serve TLS here.
    ca = make_test_ca(tmp_path / "ca")
    data = payload(100 * 1024, seed=40)
    upload = ticket(data)
    with serving(app, tls=ca) as port:
        client = s3_client(
            f"https://127.0.0.1:{port}", upload, when_required=False, verify=str(ca.ca_cert)
        )
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            client.put_object(Bucket=world.bucket, Key=upload.key, Body=io.BytesIO(data))

    assert s3_error(exc) == (400, "InvalidArgument", AWS_CHUNKED_MESSAGE)
    assert node_of(world, upload).phase == world_module.PHASE_PENDING
    assert spools(world) == []


def test_hand_made_aws_chunked_request_is_refused_and_the_connection_survives(
    world, app, endpoint, ticket
):
    data = payload(100 * 1024, seed=41)
    upload = ticket(data)
    url = f"{endpoint}/{world.bucket}/{upload.key}"
    trailer = {
        "checksum": {
            "request_algorithm": {
                "in": "trailer",
                "name": "x-amz-checksum-crc32",
                "algorithm": "crc32",
            }
        }
    }
    headers = sigv4_headers(
        "PUT",
        url,
        upload,
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(data)),
        },
        context=trailer,
    )
    assert headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    framed = aws_chunked(data)
    session = requests.Session()

    refused = session.put(
        url,
        headers=headers,
        data=(framed[i : i + 8192] for i in range(0, len(framed), 8192)),
        timeout=30,
    )
    accepted = session.put(
        url, data=data, headers=sigv4_headers("PUT", url, upload, data), timeout=30
    )

    assert refused.status_code == 400
    assert xml_error(refused)["Code"] == "InvalidArgument"
    assert xml_error(refused)["Message"] == AWS_CHUNKED_MESSAGE
    assert refused.headers["x-oss-request-id"] == xml_error(refused)["RequestId"]
    # The refused chunked body was drained: the next request came on the same connection.
    assert accepted.status_code == 200, accepted.text
    assert app.client_ports[-1] == app.client_ports[-2]
    assert node_of(world, upload).phase == world_module.PHASE_COMPLETE


# ---------------------------------------------------------------------- addressing
def test_virtual_host_style_addressing(world, endpoint, ticket):
    data = payload(2000, seed=50)
    upload = ticket(data)
    headers = sigv4_headers("PUT", f"http://{VHOST}/{upload.key}", upload, data)
    headers["Host"] = VHOST

    resp = requests.put(f"{endpoint}/{upload.key}", data=data, headers=headers, timeout=30)

    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == f'"{md5_hex(data)}"'
    assert node_of(world, upload).phase == world_module.PHASE_COMPLETE


@pytest.mark.parametrize(
    ("host", "path", "owned"),
    [
        ("127.0.0.1:8080", "/pikpak-emulator/Yuser/Vfile", True),
        ("127.0.0.1:8080", "/pikpak-emulator", True),
        (VHOST, "/Yuser/Vfile", True),
        (f"{VHOST}:443", "/anything", True),
        ("api-drive.mypikpak.com", "/drive/v1/files", False),
        ("mypikpak.com", "/Yuser/Vfile", False),
        ("127.0.0.1:8080", "/pikpak-emulator-other/key", False),
    ],
)
def test_owns_exactly_the_bucket_addresses(world, host, path, owned):
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": path, "HTTP_HOST": host}

    assert ObjectStore(world).owns(Request(environ)) is owned


# ---------------------------------------------------------------------- OSS v1 clients
def oss_sign(
    method: str, path: str, query: str, headers: dict[str, str], bucket: str, secret: str
) -> str:
    """pikpakcli's ``hmacAuthorization``: the resource is /bucket + path + ? + raw query."""
    oss = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-oss-"))
    text = (
        f"{method}\n\n{headers.get('Content-Type', '')}\n{headers['Date']}\n"
        + "".join(f"{k}:{v}\n" for k, v in oss)
        + f"/{bucket}{path}?{query}"
    )
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_pikpakcli_style_oss_multipart_upload(world, endpoint, ticket):
    data = payload(300 * 1024, seed=60)
    upload = ticket(data)
    session = requests.Session()

    def call(
        method: str, query: str, body: bytes = b"", secret: str | None = None
    ) -> requests.Response:
        headers = {
            "Date": formatdate(usegmt=True),
            "Content-Type": "application/octet-stream",
            "X-Oss-Security-Token": upload.security_token,
        }
        signature = oss_sign(
            method,
            f"/{upload.key}",
            query,
            headers,
            world.bucket,
            secret or upload.access_key_secret,
        )
        headers["Authorization"] = f"OSS {upload.access_key_id}:{signature}"
        headers["Host"] = VHOST
        return session.request(
            method, f"{endpoint}/{upload.key}?{query}", data=body, headers=headers, timeout=30
        )

    created = call("POST", "uploads")
    upload_id = ElementTree.fromstring(created.content).findtext(
        "{http://s3.amazonaws.com/doc/2006-03-01/}UploadId"
    )
    forged = call("PUT", f"partNumber=1&uploadId={upload_id}", data[: 256 * 1024], secret="forged")
    etags = [
        call("PUT", f"partNumber={n}&uploadId={upload_id}", chunk).headers["ETag"]
        for n, chunk in ((1, data[: 256 * 1024]), (2, data[256 * 1024 :]))
    ]
    document = (
        "<CompleteMultipartUpload>"
        + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e.strip(chr(34))}</ETag></Part>"
            for n, e in enumerate(etags, 1)
        )
        + "</CompleteMultipartUpload>"
    ).encode()
    done = call("POST", f"uploadId={upload_id}", document)

    assert created.status_code == 200 and upload_id
    assert forged.status_code == 403
    assert xml_error(forged)["Code"] == "SignatureDoesNotMatch"
    assert done.status_code == 200, done.text
    node = node_of(world, upload)
    assert node.phase == world_module.PHASE_COMPLETE
    assert node.blob is not None and node.blob.gcid == gcid_of_bytes(data)
