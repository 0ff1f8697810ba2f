"""Writing through the gateway, as Explorer, Finder and sync tools do it, and what the
PikPak drive looks like afterwards (the emulator's own view of the account)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.support.gateway import dav
from tests.support.pikpak_raw import account_stats, control, drive_tree
from tests.support.waits import wait_until

USER = "alice@example.com"
MIB = 1 << 20


def propfind_names(gw, path: str) -> set[str]:
    resp = dav(gw, "PROPFIND", path, headers={"Depth": "1"})
    assert resp.status_code == 207
    import xml.etree.ElementTree as ET

    hrefs = [h.text for h in ET.fromstring(resp.content).iter("{DAV:}href")]
    return {h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs[1:]}


@pytest.fixture
def gw(make_gateway):
    return make_gateway(download="proxy")


def test_put_creates_then_replaces_and_listings_follow_at_once(emulator, gw):
    assert propfind_names(gw, "/pikpak/") == set()
    assert dav(gw, "PUT", "/pikpak/notes.txt", data=b"first").status_code == 201
    assert propfind_names(gw, "/pikpak/") == {"notes.txt"}  # no stale listing
    etag = dav(gw, "HEAD", "/pikpak/notes.txt").headers["ETag"]
    assert dav(gw, "PUT", "/pikpak/notes.txt", data=b"second, longer").status_code == 204
    got = dav(gw, "GET", "/pikpak/notes.txt")
    assert got.content == b"second, longer" and got.headers["ETag"] != etag
    live = drive_tree(emulator)
    assert set(live) == {"notes.txt"} and live["notes.txt"]["size"] == 14
    assert [p for p in drive_tree(emulator, trashed=True)] == ["notes.txt"]  # old version in trash


def test_put_into_a_missing_folder_is_409(gw):
    assert dav(gw, "PUT", "/pikpak/nowhere/x.txt", data=b"x").status_code == 409


def test_known_content_is_an_instant_upload(emulator, gw):
    data = os.urandom(3 * MIB)
    assert dav(gw, "PUT", "/pikpak/a.bin", data=data).status_code == 201
    moved = account_stats(emulator)["objstore_bytes"]
    assert dav(gw, "PUT", "/pikpak/b.bin", data=data).status_code == 201
    assert account_stats(emulator)["objstore_bytes"] == moved
    assert dav(gw, "GET", "/pikpak/b.bin").content == data


def test_explorer_lock_put_proppatch_unlock_leaves_one_file(emulator, gw):
    lockinfo = (
        b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
        b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        b"<D:owner><D:href>WIN\\alice</D:href></D:owner></D:lockinfo>"
    )
    agent = {"User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045"}
    # Explorer's copy: a zero-byte PUT, LOCK, the real PUT, PROPPATCH of Win32 times, UNLOCK.
    assert dav(gw, "PUT", "/pikpak/report.docx", data=b"", headers=agent).status_code == 201
    lock = dav(
        gw,
        "LOCK",
        "/pikpak/report.docx",
        data=lockinfo,
        headers={**agent, "Timeout": "Second-3600", "Depth": "0"},
    )
    assert lock.status_code == 200
    token = lock.headers["Lock-Token"]
    body = os.urandom(200_000)
    put = dav(gw, "PUT", "/pikpak/report.docx", data=body, headers={**agent, "If": f"({token})"})
    assert put.status_code == 204
    patch = dav(
        gw,
        "PROPPATCH",
        "/pikpak/report.docx",
        headers={**agent, "If": f"({token})"},
        data=(
            b'<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"'
            b' xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
            b"<Z:Win32CreationTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32CreationTime>"
            b"<Z:Win32LastModifiedTime>Sat, 21 Nov 2026 10:00:00 GMT"
            b"</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020"
            b"</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"
        ),
    )
    assert patch.status_code == 207 and patch.text.count("200 OK") >= 1
    assert "424" not in patch.text and "403" not in patch.text
    assert (
        dav(gw, "UNLOCK", "/pikpak/report.docx", headers={**agent, "Lock-Token": token}).status_code
        == 204
    )
    assert dav(gw, "GET", "/pikpak/report.docx").content == body
    assert set(drive_tree(emulator)) == {"report.docx"}
    assert drive_tree(emulator, trashed=True) == {}  # the empty first version is not in the trash


def test_lock_on_an_unmapped_url_then_put(emulator, gw):
    lock = dav(
        gw,
        "LOCK",
        "/pikpak/new.txt",
        headers={"Timeout": "Second-60"},
        data=b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
        b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        b"</D:lockinfo>",
    )
    assert lock.status_code == 201
    token = lock.headers["Lock-Token"]
    assert "new.txt" in propfind_names(gw, "/pikpak/")  # RFC 4918: an empty file exists
    assert dav(gw, "PUT", "/pikpak/new.txt", data=b"x").status_code == 423  # no token
    assert (
        dav(gw, "PUT", "/pikpak/new.txt", data=b"content", headers={"If": f"({token})"}).status_code
        == 204
    )
    assert set(drive_tree(emulator)) == {"new.txt"} and drive_tree(emulator, trashed=True) == {}


def test_finder_chunked_put_without_length(emulator, gw):
    data = os.urandom(5 * MIB + 123)

    def body():
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    resp = dav(
        gw,
        "PUT",
        "/pikpak/movie.mov",
        data=body(),
        headers={
            "User-Agent": "WebDAVFS/3.0.0 (03008000) Darwin/21.6.0",
            "X-Expected-Entity-Length": str(len(data)),
        },
    )
    assert resp.status_code == 201
    assert dav(gw, "GET", "/pikpak/movie.mov").content == data
    assert drive_tree(emulator)["movie.mov"]["size"] == len(data)


def test_finder_metadata_stays_out_of_pikpak(emulator, gw):
    assert dav(gw, "PUT", "/pikpak/a.txt", data=b"a").status_code == 201
    for name, content in (("._a.txt", b"\x00\x05\x16\x07xattrs"), (".DS_Store", b"Bud1")):
        assert dav(gw, "PUT", f"/pikpak/{name}", data=content).status_code == 201
        assert dav(gw, "GET", f"/pikpak/{name}").content == content
        assert dav(gw, "PROPFIND", f"/pikpak/{name}", headers={"Depth": "0"}).status_code == 207
    assert set(drive_tree(emulator)) == {"a.txt"}
    assert propfind_names(gw, "/pikpak/") == {"a.txt"}
    assert (
        dav(
            gw, "MOVE", "/pikpak/._a.txt", headers={"Destination": gw.url + "/pikpak/._b.txt"}
        ).status_code
        == 201
    )
    assert dav(gw, "GET", "/pikpak/._b.txt").content.endswith(b"xattrs")
    assert dav(gw, "DELETE", "/pikpak/._b.txt").status_code == 204
    assert dav(gw, "GET", "/pikpak/._b.txt").status_code == 404


def test_finder_metadata_can_be_stored(emulator, make_gateway):
    gw = make_gateway(download="proxy", finder_metadata="store")
    assert dav(gw, "PUT", "/pikpak/._a.txt", data=b"xattrs").status_code == 201
    assert set(drive_tree(emulator)) == {"._a.txt"}


def test_mkcol_move_rename_across_folders_keeps_the_item(emulator, gw):
    assert dav(gw, "MKCOL", "/pikpak/src").status_code == 201
    assert dav(gw, "MKCOL", "/pikpak/src").status_code == 405
    assert dav(gw, "MKCOL", "/pikpak/no/such").status_code == 409
    assert dav(gw, "MKCOL", "/pikpak/dst").status_code == 201
    assert dav(gw, "PUT", "/pikpak/src/a.txt", data=b"payload").status_code == 201
    assert dav(gw, "PUT", "/pikpak/dst/a.txt", data=b"other").status_code == 201
    item = drive_tree(emulator)["src/a.txt"]["id"]
    moved = dav(
        gw, "MOVE", "/pikpak/src/a.txt", headers={"Destination": gw.url + "/pikpak/dst/b.txt"}
    )
    assert moved.status_code == 201
    live = drive_tree(emulator)
    assert live["dst/b.txt"]["id"] == item  # moved and renamed, not copied
    assert "dst/a.txt" in live and "src/a.txt" not in live
    assert not any("(1)" in p or ".pikdav-" in p for p in live)
    assert propfind_names(gw, "/pikpak/dst") == {"a.txt", "b.txt"}
    assert propfind_names(gw, "/pikpak/src") == set()


def test_overwrite_header(emulator, gw):
    dav(gw, "PUT", "/pikpak/a.txt", data=b"a")
    dav(gw, "PUT", "/pikpak/b.txt", data=b"b")
    refused = dav(
        gw,
        "MOVE",
        "/pikpak/a.txt",
        headers={"Destination": gw.url + "/pikpak/b.txt", "Overwrite": "F"},
    )
    assert refused.status_code == 412
    done = dav(
        gw,
        "COPY",
        "/pikpak/a.txt",
        headers={"Destination": gw.url + "/pikpak/b.txt", "Overwrite": "T"},
    )
    assert done.status_code == 204
    assert dav(gw, "GET", "/pikpak/b.txt").content == b"a"


def test_copy_file_and_folder_server_side(emulator, gw):
    data = os.urandom(2 * MIB)
    dav(gw, "MKCOL", "/pikpak/album")
    dav(gw, "MKCOL", "/pikpak/album/disc 1")
    dav(gw, "PUT", "/pikpak/album/disc 1/track.flac", data=data)
    dav(gw, "PUT", "/pikpak/album/cover.jpg", data=b"jpeg")
    moved = account_stats(emulator)["objstore_bytes"]
    assert (
        dav(
            gw,
            "COPY",
            "/pikpak/album/cover.jpg",
            headers={"Destination": gw.url + "/pikpak/album/cover copy.jpg"},
        ).status_code
        == 201
    )
    assert (
        dav(
            gw, "COPY", "/pikpak/album", headers={"Destination": gw.url + "/pikpak/backup"}
        ).status_code
        == 201
    )
    assert (
        dav(
            gw,
            "COPY",
            "/pikpak/album",
            headers={"Destination": gw.url + "/pikpak/empty", "Depth": "0"},
        ).status_code
        == 201
    )
    assert account_stats(emulator)["objstore_bytes"] == moved  # no byte moved for any copy
    live = drive_tree(emulator)
    assert {p for p in live if p.startswith("backup")} == {
        "backup",
        "backup/disc 1",
        "backup/disc 1/track.flac",
        "backup/cover.jpg",
        "backup/cover copy.jpg",
    }
    assert {p for p in live if p.startswith("empty")} == {"empty"}
    assert dav(gw, "GET", "/pikpak/backup/disc 1/track.flac").content == data


@pytest.mark.parametrize("use_trash", [True, False])
def test_delete_goes_to_the_trash_unless_configured(emulator, make_gateway, use_trash):
    gw = make_gateway(download="proxy", use_trash=use_trash)
    dav(gw, "MKCOL", "/pikpak/old")
    dav(gw, "PUT", "/pikpak/old/f.txt", data=b"f")
    assert dav(gw, "DELETE", "/pikpak/old").status_code == 204
    assert dav(gw, "PROPFIND", "/pikpak/old", headers={"Depth": "0"}).status_code == 404
    assert drive_tree(emulator) == {}
    assert bool(drive_tree(emulator, trashed=True)) is use_trash


def test_moving_between_mounts_is_refused_cleanly(emulator, gw):
    dav(gw, "PUT", "/pikpak/a.txt", data=b"a")
    resp = dav(gw, "MOVE", "/pikpak/a.txt", headers={"Destination": gw.url + "/other/a.txt"})
    assert resp.status_code in (502, 409)
    assert "Traceback" not in resp.text
    assert set(drive_tree(emulator)) == {"a.txt"}


def test_size_limit_is_413_and_quota_is_507(emulator, make_gateway):
    gw = make_gateway(download="proxy", server={"max_upload_size": 1000})
    assert dav(gw, "PUT", "/pikpak/big.bin", data=b"x" * 1001).status_code == 413
    assert drive_tree(emulator) == {}
    emulator.world.accounts[USER].quota = 10_000
    gw2 = make_gateway(download="proxy")
    assert dav(gw2, "PUT", "/pikpak/keep.bin", data=b"k" * 5000).status_code == 201
    full = dav(gw2, "PUT", "/pikpak/keep.bin", data=b"n" * 6000)
    assert full.status_code == 507
    assert dav(gw2, "GET", "/pikpak/keep.bin").content == b"k" * 5000


def test_a_part_that_fails_once_is_retried(emulator, make_gateway):
    gw = make_gateway(download="proxy")
    uploader = gw.mounts[0].source.uploader
    uploader.settings = type(uploader.settings)(cutoff=4 * MIB, part_size=4 * MIB, concurrency=1)
    control(
        emulator.base_url,
        "faults",
        {"path": "pikpak-emulator", "method": "PUT", "status": 500, "skip": 1, "times": 1},
    )
    data = os.urandom(10 * MIB)
    assert dav(gw, "PUT", "/pikpak/parts.bin", data=data).status_code == 201
    assert dav(gw, "GET", "/pikpak/parts.bin").content == data


@pytest.mark.parametrize("fault", ["objstore_down", "credentials_expired"])
def test_a_failed_overwrite_keeps_the_old_content(emulator, gw, fault):
    assert dav(gw, "PUT", "/pikpak/doc.txt", data=b"precious").status_code == 201
    if fault == "objstore_down":
        control(
            emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
        )
    else:
        control(emulator.base_url, "config", {"upload_ttl": 0})
    resp = dav(gw, "PUT", "/pikpak/doc.txt", data=os.urandom(MIB))
    assert resp.status_code == 502 and "Traceback" not in resp.text
    assert dav(gw, "GET", "/pikpak/doc.txt").content == b"precious"
    resp = dav(gw, "PUT", "/pikpak/new.txt", data=os.urandom(MIB))
    assert resp.status_code == 502
    live = drive_tree(emulator)
    assert set(live) == {"doc.txt"}  # no partial, pending or temporary file is visible
    assert all(r["phase"] == "PHASE_TYPE_COMPLETE" for r in live.values())


def test_a_client_that_drops_mid_upload_leaves_nothing(emulator, gw, caplog):
    assert dav(gw, "PUT", "/pikpak/doc.txt", data=b"precious").status_code == 201
    parts = urlsplit(gw.url)
    token = base64.b64encode(b"alice:wonderland").decode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            b"PUT /pikpak/doc.txt HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Basic " + token.encode() + b"\r\n"
            b"Content-Length: 10000000\r\n\r\n" + b"y" * 100_000
        )
    # The gateway says it noticed the cut body; only then is anything looked at.
    wait_until(lambda: "; nothing stored" in caplog.text, "the cut body noticed")
    assert dav(gw, "GET", "/pikpak/doc.txt").content == b"precious"
    assert set(drive_tree(emulator)) == {"doc.txt"}
    assert account_stats(emulator).get("upload_tickets", 0) == 1


def test_read_only_user_cannot_write(emulator, make_gateway):
    from pikdav.dav.auth import hash_password

    gw = make_gateway(
        download="proxy",
        users={"alice": {"password_hash": hash_password("wonderland"), "read_only": True}},
    )
    assert dav(gw, "PUT", "/pikpak/x.txt", data=b"x").status_code == 403
    assert drive_tree(emulator) == {}


# --- regressions found in review ---------------------------------------------------------


def test_moving_onto_itself_under_another_spelling_is_refused(emulator, gw):
    dav(gw, "PUT", "/pikpak/a.txt", data=b"keep me")
    resp = dav(gw, "MOVE", "/pikpak/a.txt", headers={"Destination": gw.url + "/PIKPAK/a.txt"})
    assert resp.status_code == 403
    assert dav(gw, "GET", "/pikpak/a.txt").content == b"keep me"
    assert drive_tree(emulator, trashed=True) == {}


@pytest.mark.parametrize("use_trash", [True, False])
def test_a_replace_whose_rename_fails_restores_the_old_file(
    emulator, quick_retries, make_gateway, use_trash
):
    gw = make_gateway(download="proxy", use_trash=use_trash)
    dav(gw, "PUT", "/pikpak/doc.txt", data=b"precious")
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/v1/files/[^/]+$", "method": "PATCH", "status": 500},
    )
    assert dav(gw, "PUT", "/pikpak/doc.txt", data=b"new").status_code == 502
    assert dav(gw, "GET", "/pikpak/doc.txt").content == b"precious"
    assert set(drive_tree(emulator)) == {"doc.txt"}  # and no hidden .pikdav- leftover


def test_a_move_whose_rename_fails_leaves_honest_listings(emulator, quick_retries, gw):
    dav(gw, "MKCOL", "/pikpak/a")
    dav(gw, "MKCOL", "/pikpak/b")
    dav(gw, "PUT", "/pikpak/a/x.txt", data=b"x")
    propfind_names(gw, "/pikpak/b")  # cache b's listing
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/v1/files/[^/]+$", "method": "PATCH", "status": 500},
    )
    resp = dav(gw, "MOVE", "/pikpak/a/x.txt", headers={"Destination": gw.url + "/pikpak/b/y.txt"})
    assert resp.status_code == 502
    assert propfind_names(gw, "/pikpak/a") == set()
    assert propfind_names(gw, "/pikpak/b") == {"x.txt"}  # where PikPak has it now


def test_overwrite_f_holds_for_names_that_clients_probe(emulator, gw):
    dav(gw, "MKCOL", "/pikpak/album")
    dav(gw, "PUT", "/pikpak/album/folder.jpg", data=b"art")
    dav(gw, "PUT", "/pikpak/cover.jpg", data=b"other")
    gw.mounts[0].tree.forget_everything()
    resp = dav(
        gw,
        "COPY",
        "/pikpak/cover.jpg",
        headers={"Destination": gw.url + "/pikpak/album/folder.jpg", "Overwrite": "F"},
    )
    assert resp.status_code == 412
    gw.mounts[0].tree.forget_everything()
    assert dav(gw, "GET", "/pikpak/album/folder.jpg").content == b"art"  # not a "probe"


def test_locking_the_server_root_is_refused(emulator, make_gateway):
    gw = make_gateway(download="proxy")
    resp = dav(
        gw,
        "LOCK",
        "/",
        headers={"Depth": "infinity", "Timeout": "Second-60"},
        data=b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
        b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        b"</D:lockinfo>",
    )
    assert resp.status_code in (403, 405, 423)
    assert dav(gw, "PUT", "/pikpak/free.txt", data=b"still writable").status_code == 201


def test_put_into_a_folder_that_vanished_is_409_and_leaves_no_spool(emulator, gw, tmp_path):
    import tempfile

    dav(gw, "MKCOL", "/pikpak/tmpdir")
    before = set(os.listdir(tempfile.gettempdir()))
    writer = gw.mounts[0].writer
    original = writer.store

    def vanish_first(folder, name, body, old):
        dav(gw, "DELETE", "/pikpak/tmpdir")
        return original(folder, name, body, old)

    writer.store = vanish_first
    try:
        resp = dav(gw, "PUT", "/pikpak/tmpdir/f.bin", data=os.urandom(100_000))
    finally:
        writer.store = original
    assert resp.status_code in (404, 409)
    leaked = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("pikdav-")}
    assert leaked == set()


def test_lock_on_unmapped_urls_leaks_no_file_descriptors(emulator, gw):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    body = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    dav(gw, "LOCK", "/pikpak/warm.txt", data=body)
    before = open_fds()
    for i in range(20):
        assert dav(gw, "LOCK", f"/pikpak/n{i}.txt", data=body).status_code == 201
    # The server closes its side of each connection when it sees the client's end.
    wait_until(lambda: open_fds() - before < 5, "the server closing its connections", 10)


def test_the_gateways_temporary_names_cannot_be_used(gw):
    assert dav(gw, "PUT", "/pikpak/.pikdav-put-x-a.txt", data=b"x").status_code == 403
    assert dav(gw, "MKCOL", "/pikpak/.pikdav-dir").status_code == 403


def test_a_damaged_token_file_is_a_502_with_advice_in_the_log(emulator, make_gateway, caplog):
    import logging

    caplog.set_level(logging.ERROR)
    gw = make_gateway(download="proxy")
    token_file = gw.config.token_path("main")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("{not json")
    resp = dav(gw, "PROPFIND", "/pikpak/", headers={"Depth": "1"})
    assert resp.status_code == 502 and "Traceback" not in resp.text
    assert "pikdav login" in caplog.text and "Traceback" not in caplog.text
