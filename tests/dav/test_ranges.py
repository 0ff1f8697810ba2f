"""Range requests (RFC 9110 §14) as players and download tools send them: the one reading of
the header (pikdav.dav.ranges), and what curl and requests get from a real gateway for a
proxied file, a file still uploading in the background (served from its local copy), a Finder
side file, and in redirect mode."""

from __future__ import annotations

import base64
import math
import os
import shutil
import subprocess

import pytest
import requests

from pikdav.dav.ranges import MAX_RANGES, UNSATISFIABLE, ByteRange, if_range_holds, plan
from pikdav.pikpak.retry import RetryPolicy
from pikdav.vfs.pending import PendingUploads
from tests.support.command import DAV_PASSWORD, DAV_USER
from tests.support.pikpak_raw import control

USER = "alice@example.com"
SIZE = 300_000
DATA = os.urandom(SIZE)
NINES = "9" * 5000
MANY = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(1000))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-", ByteRange(100, 1000)),
        ("bytes=-10", ByteRange(990, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("bytes=990-5000", ByteRange(990, 1000)),
        ("BYTES=1-1", ByteRange(1, 2)),
        ("bytes= 0-0 , -1", ByteRange(0, 1)),  # several: the first alone
        ("bytes=5000-,7-8", ByteRange(7, 9)),  # the first that can be satisfied
        ("bytes=0-1,,", ByteRange(0, 2)),  # empty list elements are allowed
        (f"bytes=0-{NINES}", ByteRange(0, 1000)),
        ("bytes=00000000000000000000000000001-2", ByteRange(1, 3)),
        ("bytes=100-5", None),  # invalid: the header is ignored
        ("bytes=0-1,100-5", None),
        (f"bytes={NINES}-5", None),
        ("bytes=abc", None),
        ("bytes=1-2-3", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("items=0-1", None),
        ("bytes 0-1", None),
        ("bytes=" + MANY, None),  # more ranges than MAX_RANGES: ignored
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=1000-", UNSATISFIABLE),
        (f"bytes={NINES}-", UNSATISFIABLE),
        (f"bytes={NINES}8-{NINES}9", UNSATISFIABLE),
        ("bytes=1000-1001,-0", UNSATISFIABLE),
    ],
)
def test_the_range_header_is_read_as_rfc_9110_says(header, expected):
    assert plan(header, 1000) == expected


def test_an_empty_file_is_answered_whole_and_the_range_count_is_capped():
    assert plan("bytes=0-", 0) is None
    at_cap = ",".join(["0-0"] * MAX_RANGES)
    assert plan("bytes=" + at_cap, 10) == ByteRange(0, 1)
    assert plan("bytes=" + at_cap + ",1-1", 10) is None


def test_if_range_allows_the_range_only_for_the_same_file():
    assert if_range_holds(None, "abc", 0)
    assert if_range_holds('"abc"', "abc", 0)
    assert not if_range_holds('"abd"', "abc", 0)
    assert not if_range_holds('W/"abc"', "abc", 0)
    assert if_range_holds("Sun, 06 Nov 1994 08:49:37 GMT", "abc", 784111777)
    assert not if_range_holds("Sun, 06 Nov 1994 08:49:38 GMT", "abc", 784111777)
    assert not if_range_holds("not a date", "abc", 784111777)


# --- through a real gateway ----------------------------------------------------------------------

# (Range header, status, the bytes answered: (start, end) or None for no body)
CASES = [
    ("bytes=0-99", 206, (0, 100)),
    ("bytes=1000-1999", 206, (1000, 2000)),
    ("bytes=-500", 206, (SIZE - 500, SIZE)),
    (f"bytes={SIZE - 10}-", 206, (SIZE - 10, SIZE)),
    ("bytes=100-5", 200, (0, SIZE)),
    ("bytes=-0", 416, None),
    (f"bytes={SIZE}-", 416, None),
    ("bytes=0-0,-1", 206, (0, 1)),
    (f"bytes={SIZE}-,10-19", 206, (10, 20)),
    ("bytes=" + MANY, 200, (0, SIZE)),
    (f"bytes=0-{NINES}", 206, (0, SIZE)),
    ("bytes=abc", 200, (0, SIZE)),
]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(
        PendingUploads, "retry", RetryPolicy(attempts=2, seconds=math.inf, backoff=0.05, jitter=0)
    )


@pytest.fixture(params=["proxied", "uploading", "side file"])
def content(request, emulator, make_gateway) -> tuple[str, str]:
    """A gateway URL of a file holding DATA, of each kind of content."""
    if request.param == "proxied":
        body = {"username": USER, "path": "r.bin", "content": base64.b64encode(DATA).decode()}
        control(emulator.base_url, "files", body)
        gw = make_gateway(download="proxy")
        return gw.url, "/pikpak/r.bin"
    if request.param == "uploading":
        # PikPak's object store refuses the upload: the file stays with the gateway
        refuse = {"path": "pikpak-emulator", "method": "PUT", "status": 500}
        control(emulator.base_url, "faults", refuse)
        gw = make_gateway(download="proxy", read_only=False, background_uploads=True)
        put = requests.put(gw.url + "/pikpak/up.bin", data=DATA, auth=gw.auth)
        assert put.status_code == 201
        return gw.url, "/pikpak/up.bin"
    gw = make_gateway(download="proxy", read_only=False)
    put = requests.put(gw.url + "/pikpak/._r.bin", data=DATA, auth=gw.auth)
    assert put.status_code == 201
    return gw.url, "/pikpak/._r.bin"


def test_ranges_with_requests(content):
    base, path = content
    for header, status, span in CASES:
        get = requests.get(base + path, auth=(DAV_USER, DAV_PASSWORD), headers={"Range": header})
        head = requests.head(base + path, auth=(DAV_USER, DAV_PASSWORD), headers={"Range": header})
        assert (get.status_code, head.status_code) == (status, status), header[:40]
        assert head.content == b""
        if status == 416:
            assert get.headers["Content-Range"] == f"bytes */{SIZE}"
            assert head.headers["Content-Range"] == f"bytes */{SIZE}"
            continue
        start, end = span
        assert get.content == DATA[start:end], header[:40]
        for resp in (get, head):
            assert resp.headers["Content-Length"] == str(end - start)
            if status == 206:
                assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"
            else:
                assert "Content-Range" not in resp.headers


def test_ranges_with_curl(content, tmp_path):
    curl = shutil.which("curl")
    assert curl, "curl is needed (Debian package curl)"
    base, path = content
    for header, status, span in CASES:
        out = tmp_path / "out"
        proc = subprocess.run(
            [curl, "-sS", "-u", f"{DAV_USER}:{DAV_PASSWORD}", "-H", f"Range: {header}",
             "-o", str(out), "-w", "%{http_code}", base + path],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert proc.stdout == str(status), header[:40]
        if span is not None:
            assert out.read_bytes() == DATA[span[0] : span[1]], header[:40]


def test_if_range_through_the_gateway(emulator, make_gateway):
    body = {"username": USER, "path": "r.bin", "content": base64.b64encode(DATA).decode()}
    made = control(emulator.base_url, "files", body)
    gw = make_gateway(download="proxy")
    url = gw.url + "/pikpak/r.bin"
    same = {"Range": "bytes=0-9", "If-Range": f'"{made["hash"]}"'}
    other = {"Range": "bytes=0-9", "If-Range": '"another-version"'}
    assert requests.get(url, auth=gw.auth, headers=same).content == DATA[:10]
    whole = requests.get(url, auth=gw.auth, headers=other)
    assert whole.status_code == 200 and whole.content == DATA
    gone = {"Range": "bytes=-0", "If-Range": '"another-version"'}
    assert requests.get(url, auth=gw.auth, headers=gone).status_code == 200


def test_redirect_mode_gets_are_redirected_whatever_their_range(emulator, make_gateway):
    body = {"username": USER, "path": "r.bin", "content": base64.b64encode(DATA).decode()}
    control(emulator.base_url, "files", body)
    gw = make_gateway(download="redirect")
    url = gw.url + "/pikpak/r.bin"
    for header, status, span in CASES:
        get = requests.get(url, auth=gw.auth, headers={"Range": header}, allow_redirects=False)
        assert get.status_code == 302, header[:40]
        # The CDN answers the range the client sends it; HEAD is answered here, alike
        head = requests.head(url, auth=gw.auth, headers={"Range": header})
        assert head.status_code == status, header[:40]
        if span is not None:
            assert head.headers["Content-Length"] == str(span[1] - span[0])
    followed = requests.get(url, auth=gw.auth, headers={"Range": "bytes=10-19"})
    assert followed.status_code == 206 and followed.content == DATA[10:20]


def test_a_range_with_thousands_of_digits_is_read_as_to_the_end(emulator, make_gateway, caplog):
    body = {"username": USER, "path": "a.bin", "content": base64.b64encode(DATA).decode()}
    control(emulator.base_url, "files", body)
    gw = make_gateway(download="proxy")
    huge = "9" * 5000
    resp = requests.get(
        gw.url + "/pikpak/a.bin", auth=gw.auth, headers={"Range": f"bytes=0-{huge}"}
    )
    assert resp.status_code == 206 and resp.content == DATA
    assert resp.headers["Content-Range"] == f"bytes 0-{len(DATA) - 1}/{len(DATA)}"
    resp = requests.get(gw.url + "/pikpak/a.bin", auth=gw.auth, headers={"Range": f"bytes={huge}-"})
    assert resp.status_code == 416
    assert "Traceback" not in caplog.text and "4300" not in caplog.text
