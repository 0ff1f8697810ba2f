"""A share link mounted as a folder: read without a login, read-only, and a share PikPak
refuses answered at its root in words, with one log line, while other mounts keep working."""

from __future__ import annotations

import base64
import logging
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest
import requests

import pikdav.dav.propfind as fast
from tests.dav.test_fast_propfind import BODIES, canonical
from tests.support.pikpak_raw import control
from tests.support.shares import (
    account,
    add_file,
    make_share,
    set_share_status,
    share_mount,
    start_share_gateway,
)

DAV = "{DAV:}"
DATA = bytes(range(251)) * 997  # ~250 kB of known bytes, not a multiple of any page size


@pytest.fixture
def shared(emulator):
    """alice's folder Trip (clip.bin, notes/a.txt) shared with pass code 1234."""
    add_file(emulator, "Trip/clip.bin", content=base64.b64encode(DATA).decode())
    inner = add_file(emulator, "Trip/notes/a.txt", content=base64.b64encode(b"hello").decode())
    made = make_share(emulator, "Trip", pass_code="1234")
    made["notes_id"] = inner["parent_id"]
    return made


@pytest.fixture
def start(emulator, tmp_path):
    started = []

    def go(mounts, **kw):
        gw = start_share_gateway(emulator, tmp_path / f"gw{len(started)}", mounts, **kw)
        started.append(gw)
        return gw

    yield go
    for gw in started:
        gw.stop()


def names(gw, path: str) -> list[str]:
    resp = requests.request("PROPFIND", gw.url + path, headers={"Depth": "1"}, auth=gw.auth)
    assert resp.status_code == 207, resp.text
    hrefs = [unquote(r.findtext(f"{DAV}href")) for r in ET.fromstring(resp.content)]
    return sorted(h.rstrip("/").rpartition("/")[2] for h in hrefs[1:])


def test_a_shares_only_config_serves_a_share_with_the_pass_code_of_its_link(
    emulator, shared, start
):
    gw = start([share_mount(emulator, "films", shared["share_url"] + "?pwd=1234")])
    assert gw.config.accounts == {}
    assert names(gw, "/films") == ["Trip"]
    assert names(gw, "/films/Trip") == ["clip.bin", "notes"]
    got = requests.get(gw.url + "/films/Trip/clip.bin", auth=gw.auth)
    assert got.status_code == 200 and got.content == DATA
    part = requests.get(
        gw.url + "/films/Trip/clip.bin", headers={"Range": "bytes=1000-1999"}, auth=gw.auth
    )
    assert part.status_code == 206 and part.content == DATA[1000:2000]
    head = requests.head(gw.url + "/films/Trip/clip.bin", auth=gw.auth)
    assert head.headers["Content-Length"] == str(len(DATA)) and head.headers["ETag"]
    # Nobody signed in: reading a share needs no login.
    assert (
        emulator.world.stats.snapshot()["accounts"].get("alice@example.com", {}).get("signin", 0)
        == 0
    )


def test_pass_code_key_overrides_the_link_and_root_folder_id_picks_a_folder(
    emulator, shared, start
):
    gw = start(
        [
            share_mount(
                emulator,
                "notes",
                shared["share_url"] + "?pwd=wrong",
                pass_code="1234",
                root_folder_id=shared["notes_id"],
            )
        ]
    )
    assert names(gw, "/notes") == ["a.txt"]
    assert requests.get(gw.url + "/notes/a.txt", auth=gw.auth).content == b"hello"


def test_a_folder_in_the_link_is_the_mounts_root(emulator, shared, start):
    link = f"{shared['share_url']}/{shared['notes_id']}?pwd=1234"
    gw = start([share_mount(emulator, "notes", link)])
    assert names(gw, "/notes") == ["a.txt"]


@pytest.mark.parametrize("beside_a_drive", [False, True])
def test_every_write_method_is_refused(emulator, shared, start, beside_a_drive):
    """403 beside a writable mount; 405 (as WsgiDAV answers a read-only server) when every
    mount is read-only."""
    mounts = [share_mount(emulator, "films", shared["share_url"], pass_code="1234")]
    extra = {}
    if beside_a_drive:
        mounts.append({"name": "drive", "account": "main"})
        extra["accounts"] = {"main": account(emulator)}
    gw = start(mounts, **extra)
    expected = 403 if beside_a_drive else 405
    base = gw.url + "/films/Trip"
    refused = [
        requests.put(base + "/new.txt", data=b"x", auth=gw.auth),
        requests.request("MKCOL", base + "/new", auth=gw.auth),
        requests.delete(base + "/clip.bin", auth=gw.auth),
        requests.request(
            "MOVE", base + "/clip.bin", headers={"Destination": base + "/b.bin"}, auth=gw.auth
        ),
        requests.request(
            "COPY", base + "/clip.bin", headers={"Destination": base + "/b.bin"}, auth=gw.auth
        ),
        requests.request("LOCK", base + "/clip.bin", data=LOCK_BODY, auth=gw.auth),
    ]
    assert all(r.status_code == expected for r in refused), [
        (r.request.method, r.status_code) for r in refused
    ]
    patch = requests.request("PROPPATCH", base + "/clip.bin", data=PATCH_BODY, auth=gw.auth)
    # PROPPATCH answers per property (RFC 4918 §9.2): a 207 whose property is refused.
    assert patch.status_code == expected or (
        patch.status_code == 207 and "HTTP/1.1 403" in patch.text
    ), patch.text
    assert names(gw, "/films/Trip") == ["clip.bin", "notes"]  # nothing changed


PATCH_BODY = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    b'<x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>'
)
LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)

STATUSES = [
    ("EXPIRED", 404, "expired"),
    ("NOT_FOUND", 404, "does not exist"),
    ("SENSITIVE_RESOURCE", 451, "blocked"),
]


@pytest.mark.parametrize(("status", "code", "words"), STATUSES)
def test_a_refused_share_answers_at_its_root_and_the_other_mounts_keep_working(
    emulator, shared, start, caplog, status, code, words
):
    add_file(emulator, "Own/mine.txt", content=base64.b64encode(b"mine").decode())
    other = make_share(emulator, "Own")
    gw = start(
        [
            share_mount(emulator, "films", shared["share_url"], pass_code="1234"),
            share_mount(emulator, "other", other["share_url"]),
            {"name": "drive", "account": "main", "download": "proxy"},
        ],
        accounts={"main": account(emulator)},
    )
    assert names(gw, "/films") == ["Trip"]
    set_share_status(emulator, shared["share_id"], status)
    gw.mounts[0].tree.forget_everything()
    caplog.set_level(logging.INFO, logger="pikdav")
    caplog.clear()
    for _ in range(3):
        for depth in ("0", "1"):
            resp = requests.request(
                "PROPFIND", gw.url + "/films", headers={"Depth": depth}, auth=gw.auth
            )
            assert resp.status_code == code and words in resp.text, (depth, resp.text)
        page = requests.get(gw.url + "/films/", auth=gw.auth)
        assert page.status_code == code and "Traceback" not in page.text
    said = [r.getMessage() for r in caplog.records if "share films" in r.getMessage()]
    assert len(said) == 1 and status in said[0] and words in said[0], said
    [state] = gw.mounts[0].share_statuses()
    assert (state.state, state.name, state.pass_code_used) == (status, "films", True)
    assert not state.ok and words in state.advice
    assert gw.mounts[2].share_statuses() == []
    assert names(gw, "/other") == ["Own"]
    assert gw.mounts[1].share_statuses()[0].files_at_root == 1
    assert requests.get(gw.url + "/other/Own/mine.txt", auth=gw.auth).content == b"mine"
    assert "Trip" in names(gw, "/drive")


def test_a_wrong_pass_code_is_a_403_that_says_so(emulator, shared, start, caplog):
    gw = start([share_mount(emulator, "films", shared["share_url"], pass_code="4321")])
    resp = requests.request("PROPFIND", gw.url + "/films", headers={"Depth": "1"}, auth=gw.auth)
    assert resp.status_code == 403 and "pass code" in resp.text
    assert gw.mounts[0].source.status().state == "PASS_CODE_ERROR"
    assert any("PASS_CODE_ERROR" in r.getMessage() for r in caplog.records)
    # The wrong pass code never reaches a log line or the answer.
    assert "4321" not in resp.text and not any("4321" in r.getMessage() for r in caplog.records)


def test_a_region_block_is_a_503_that_says_what_to_do(emulator, shared, start, caplog):
    gw = start(
        [
            share_mount(emulator, "films", shared["share_url"], pass_code="1234"),
            {"name": "drive", "account": "main", "download": "proxy"},
        ],
        accounts={"main": account(emulator)},
    )
    control(emulator.base_url, "config", {"share_region_blocked": True})
    for _ in range(3):
        resp = requests.request("PROPFIND", gw.url + "/films", headers={"Depth": "1"}, auth=gw.auth)
        assert resp.status_code == 503 and "region" in resp.text and "proxy" in resp.text
    assert gw.mounts[0].source.status().state == "REGION_BLOCKED"
    assert sum("REGION_BLOCKED" in r.getMessage() for r in caplog.records) == 1
    assert requests.get(gw.url + "/drive/Trip/notes/a.txt", auth=gw.auth).content == b"hello"


@pytest.mark.parametrize("transcoded", [False, True])
def test_use_transcoding_address_sends_players_to_the_transcoded_copy(emulator, start, transcoded):
    add_file(emulator, "Clips/film.mp4", 40_000, seed=3, transcode=True)
    made = make_share(emulator, "Clips")
    keys = {"download": "redirect", "use_transcoding_address": transcoded}
    gw = start([share_mount(emulator, "clips", made["share_url"], **keys)])
    resp = requests.get(gw.url + "/clips/Clips/film.mp4", auth=gw.auth, allow_redirects=False)
    assert resp.status_code == 302
    served = requests.get(resp.headers["Location"])
    assert served.status_code == 200
    assert len(served.content) == (10_000 if transcoded else 40_000)


def test_a_share_mount_renews_its_tokens_and_backs_off_when_pikpak_asks(
    emulator, shared, start, caplog
):
    """A captcha token PikPak refuses (code 9), a pass-code token it forgot, and "too
    frequent" (code 10) each cost a client nothing but time."""
    caplog.set_level(logging.INFO, logger="pikdav")
    gw = start([share_mount(emulator, "films", shared["share_url"], pass_code="1234")])
    assert names(gw, "/films") == ["Trip"]
    with emulator.world.lock:
        emulator.world.captcha_tokens.clear()  # every captcha token handed out is now unknown
        emulator.world.shares[shared["share_id"]].tokens.clear()  # and every pass-code token
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/v1/share/detail$", "too_frequent": True, "times": 1},
    )
    gw.mounts[0].tree.forget_everything()
    assert names(gw, "/films/Trip") == ["clip.bin", "notes"]
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert "backing off" in said, said


@pytest.mark.parametrize("body", ["", "allprop", "named"])
@pytest.mark.parametrize(
    ("path", "depth"), [("/films", "1"), ("/films/Trip", "1"), ("/films/Trip/", "0")]
)
def test_the_fast_propfind_of_a_share_says_what_wsgidav_says(
    emulator, shared, start, monkeypatch, body, path, depth
):
    """Nothing on a share can be locked: neither path lists lock properties."""
    gw = start([share_mount(emulator, "films", shared["share_url"], pass_code="1234")])

    def ask() -> requests.Response:
        return requests.request(
            "PROPFIND", gw.url + path, data=BODIES[body or "empty"], headers={"Depth": depth},
            auth=gw.auth,
        )  # fmt: skip

    quick = ask()
    monkeypatch.setattr(fast, "try_fast_propfind", lambda *a: None)
    slow = ask()
    assert quick.status_code == slow.status_code == 207
    assert canonical(quick.content) == canonical(slow.content)
    assert b"supportedlock" not in quick.content or body == "named"


def test_no_answer_is_an_html_page_of_wsgidav(emulator, shared, start):
    """Every status a DAV client can get is pikdav's short plain text (or RFC 4918's XML),
    never WsgiDAV's HTML page with its author's link: a 201 to a PUT or a MKCOL, a 403 on a
    share, a 404, a 409, a 412, a 423."""
    mounts = [
        share_mount(emulator, "films", shared["share_url"], pass_code="1234"),
        {"name": "drive", "account": "main"},
    ]
    gw = start(mounts, accounts={"main": account(emulator)})
    drive, films = gw.url + "/drive", gw.url + "/films/Trip"
    locked = requests.request("LOCK", drive + "/held.txt", data=LOCK_BODY, auth=gw.auth)
    assert locked.status_code in (200, 201), locked.text
    answers = [
        requests.put(drive + "/new.txt", data=b"x", auth=gw.auth),  # 201
        requests.put(drive + "/new.txt", data=b"y", auth=gw.auth),  # 204
        requests.request("MKCOL", drive + "/made", auth=gw.auth),  # 201
        requests.request("MKCOL", drive + "/made", auth=gw.auth),  # 405
        requests.request("MKCOL", drive + "/no/such/parent", auth=gw.auth),  # 409
        requests.request(
            "COPY", drive + "/new.txt", headers={"Destination": drive + "/c.txt"}, auth=gw.auth
        ),  # 201
        requests.request(
            "COPY",
            drive + "/new.txt",
            headers={"Destination": drive + "/c.txt", "Overwrite": "F"},
            auth=gw.auth,
        ),  # 412
        requests.put(drive + "/held.txt", data=b"z", auth=gw.auth),  # 423
        requests.get(drive + "/missing.txt", auth=gw.auth),  # 404
        requests.delete(films + "/clip.bin", auth=gw.auth),  # 403
        requests.put(films + "/new.txt", data=b"x", auth=gw.auth),  # 403
    ]
    seen = sorted({r.status_code for r in answers})
    assert {201, 204, 403, 404, 405, 409, 412, 423} <= set(seen), seen
    for resp in answers:
        what = (resp.request.method, resp.request.url, resp.status_code, resp.text[:200])
        assert "<html" not in resp.text.lower() and "github" not in resp.text, what
        if resp.content:
            kind = resp.headers.get("Content-Type", "")
            assert kind.startswith(("text/plain", "application/xml")), (what, kind)
