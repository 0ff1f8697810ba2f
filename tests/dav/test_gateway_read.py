"""Browsing and reading through the gateway: what Explorer, Finder, Infuse, Kodi and rclone
see. Gateway and emulator run on loopback and talk real HTTP."""

from __future__ import annotations

import base64
import http.client
import logging
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.netsource import session_from
from tests.support.pikpak_raw import account_stats, control
from tests.support.waits import request_lines, wait_until
from tests.support.web import propfind

USER = "alice@example.com"
DAV = "{DAV:}"
DATA = bytes(range(256)) * 4096  # 1 MiB of known bytes


def add_real(emulator, path: str, data: bytes = DATA) -> dict:
    return control(
        emulator.base_url,
        "files",
        {"username": USER, "path": path, "content": base64.b64encode(data).decode()},
    )


def responses_of(resp: requests.Response) -> dict[str, dict]:
    tree = ET.fromstring(resp.content)
    out = {}
    for item in tree.findall(f"{DAV}response"):
        href = item.findtext(f"{DAV}href")
        props = {}
        for prop in item.iter(f"{DAV}prop"):
            for child in prop:
                props[child.tag.replace(DAV, "")] = child
        out[href] = props
    return out


def test_big_folder_lists_in_pages_of_500_then_from_cache(emulator, gateway):
    acct = emulator.world.accounts[USER]
    folder = emulator.world.ensure_path(acct, "Many")
    blob = emulator.world.blobs.add_bytes(b"12345")
    for i in range(10_000):
        emulator.world.add_node(
            acct, folder, f"f{i:05d}.txt", "drive#file", blob=blob, rename_on_clash=False
        )
    propfind(gateway, "/pikpak", "1")  # the mount root's listing is now cached
    before = account_stats(emulator)["list"]
    cold = propfind(gateway, "/pikpak/Many")
    assert cold.status_code == 207
    assert account_stats(emulator)["list"] - before == 20  # 10,000 entries / 500 a page
    warm = propfind(gateway, "/pikpak/Many")
    assert account_stats(emulator)["list"] - before == 20  # nothing more upstream
    entries = responses_of(warm)
    assert len(entries) == 10_001
    node = next(n for n in acct.children[folder][:1] for n in [acct.nodes[n]])
    props = entries[f"/pikpak/Many/{node.name}"]
    assert props["getcontentlength"].text == "5"
    assert props["getcontenttype"].text == "text/plain"
    assert props["resourcetype"].find(f"{DAV}collection") is None
    modified = parsedate_to_datetime(props["getlastmodified"].text).timestamp()
    assert abs(modified - node.modified) < 1
    assert props["getetag"].text == node.gcid
    folder_props = entries["/pikpak/Many/"]
    assert folder_props["resourcetype"].find(f"{DAV}collection") is not None


def test_root_lists_mounts_and_mount_root_has_quota(emulator, gateway):
    add_real(emulator, "a.bin")
    root = responses_of(propfind(gateway, "/"))
    assert set(root) == {"/", "/pikpak/"}
    body = (
        b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><quota-used-bytes/>'
        b"<quota-available-bytes/></prop></propfind>"
    )
    quota = responses_of(propfind(gateway, "/pikpak", "0", body))["/pikpak/"]
    assert quota["quota-used-bytes"].text == str(len(DATA))
    assert int(quota["quota-available-bytes"].text) == (10 << 40) - len(DATA)


def test_folders_answer_with_and_without_slash_without_redirect(emulator, gateway):
    add_real(emulator, "Films/x.mp4")
    for path in ("/pikpak/Films", "/pikpak/Films/"):
        resp = requests.request(
            "PROPFIND",
            gateway.url + path,
            headers={"Depth": "1"},
            auth=gateway.auth,
            allow_redirects=False,
        )
        assert resp.status_code == 207, path
        assert "/pikpak/Films/x.mp4" in responses_of(resp)


def test_get_and_head_headers(emulator, gateway):
    made = add_real(emulator, "Films/clip.mp4")
    before = account_stats(emulator)
    head = requests.head(gateway.url + "/pikpak/Films/clip.mp4", auth=gateway.auth)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Content-Type"] == "video/mp4"
    assert head.headers["ETag"] == f'"{made["hash"]}"'
    assert head.headers["Last-Modified"]
    assert account_stats(emulator).get("download_requests", 0) == before.get("download_requests", 0)
    get = requests.get(gateway.url + "/pikpak/Films/clip.mp4", auth=gateway.auth)
    assert get.status_code == 200 and get.content == DATA
    assert get.headers["ETag"] == head.headers["ETag"]


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        ("bytes=0-99", 206, DATA[:100]),
        ("bytes=500000-500999", 206, DATA[500000:501000]),
        ("bytes=-1000", 206, DATA[-1000:]),
        ("bytes=1048000-", 206, DATA[1048000:]),
        (f"bytes={len(DATA)}-", 416, b""),
        ("bytes=abc", 200, DATA),
        ("pages=1-2", 200, DATA),
    ],
)
def test_ranges_through_the_proxy(emulator, gateway, header, status, expected):
    add_real(emulator, "r.bin")
    resp = requests.get(gateway.url + "/pikpak/r.bin", auth=gateway.auth, headers={"Range": header})
    assert resp.status_code == status
    if status != 416:
        assert resp.content == expected
    else:
        assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_redirect_works_only_from_the_gateways_address(emulator, make_gateway):
    add_real(emulator, "v.mp4")
    gw = make_gateway(download="redirect")
    resp = requests.get(gw.url + "/pikpak/v.mp4", auth=gw.auth, allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Cache-Control"] == "no-store"
    location = resp.headers["Location"]
    assert "sig=" in location and location not in resp.text
    assert requests.get(location).content == DATA  # same address as the gateway: works
    assert session_from("127.0.0.2").get(location).status_code == 403  # another host


def test_auto_redirects_local_network_and_proxies_others(emulator, make_gateway):
    add_real(emulator, "v.mp4")
    gw = make_gateway(download="auto", redirect_networks=["127.0.0.1/32"])
    local = requests.get(gw.url + "/pikpak/v.mp4", auth=gw.auth, allow_redirects=False)
    assert local.status_code == 302
    remote = session_from("127.0.0.2")
    whole = remote.get(gw.url + "/pikpak/v.mp4", auth=gw.auth, allow_redirects=False)
    assert whole.status_code == 200 and whole.content == DATA
    part = remote.get(gw.url + "/pikpak/v.mp4", auth=gw.auth, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == DATA[10:20]
    finder = requests.get(
        gw.url + "/pikpak/v.mp4",
        auth=gw.auth,
        allow_redirects=False,
        headers={"User-Agent": "WebDAVFS/3.0.0 (03008000) Darwin/21.6.0"},
    )
    assert finder.status_code == 200 and finder.content == DATA  # Finder is always proxied


def test_a_dropped_cdn_connection_is_resumed(emulator, gateway):
    add_real(emulator, "long.bin", DATA * 8)
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 3 << 20, "times": 2})
    resp = requests.get(gateway.url + "/pikpak/long.bin", auth=gateway.auth)
    assert resp.status_code == 200 and resp.content == DATA * 8
    fired = control(emulator.base_url, "faults", method="GET")["rules"][0]["fired"]
    assert fired == 2


@pytest.mark.parametrize("connections", [1, 8])
def test_link_expiry_in_the_middle_of_a_long_read_loses_no_byte(
    emulator, make_gateway, connections
):
    gateway = make_gateway(download="proxy", stream_connections=connections)
    made = control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "film.mkv", "size": 64 << 20, "seed": 9},
    )
    expected = emulator.world.blobs.get(made["hash"]).read_at(0, 64 << 20)
    # The CDN connection breaks at 48 MiB; by then PikPak has ended the link.
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 48 << 20, "times": 1})
    resp = requests.get(gateway.url + "/pikpak/film.mkv", auth=gateway.auth, stream=True)
    head = resp.raw.read(4 << 20)
    control(emulator.base_url, "expire-links", {"username": USER})
    body = head + resp.raw.read()
    assert resp.status_code == 200 and len(body) == len(expected) and body == expected
    # The old link is refused once for each connection that still used it.
    assert 1 <= account_stats(emulator)["download_forbidden"] <= connections
    assert control(emulator.base_url, "faults", method="GET")["rules"][0]["fired"] == 1


@pytest.mark.parametrize("connections", [1, 8])
def test_a_client_that_goes_away_releases_the_upstream_connection(
    emulator, make_gateway, connections
):
    gateway = make_gateway(download="proxy", stream_connections=connections)
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "huge.bin", "size": 512 << 20, "seed": 4},
    )
    resp = requests.get(gateway.url + "/pikpak/huge.bin", auth=gateway.auth, stream=True)
    assert len(resp.raw.read(1 << 20)) == 1 << 20
    if connections == 1:
        assert account_stats(emulator)["downloads_active"] == 1  # held while the client waits
    else:
        time.sleep(0.5)  # segments read ahead a bounded distance, then wait for the client
        assert account_stats(emulator)["download_bytes"] < 64 << 20
    resp.close()
    wait_until(lambda: account_stats(emulator)["downloads_active"] == 0, "connections closed", 20)
    assert account_stats(emulator)["download_bytes"] < 512 << 20


def test_junk_names_are_404_without_asking_pikpak(emulator, gateway):
    add_real(emulator, "Films/a.mp4")
    propfind(gateway, "/pikpak/Films")
    before = account_stats(emulator)
    for name in ("._a.mp4", ".DS_Store", "Thumbs.db", "desktop.ini"):
        assert propfind(gateway, f"/pikpak/Films/{name}", "0").status_code == 404
        assert (
            requests.get(gateway.url + f"/pikpak/Films/{name}", auth=gateway.auth).status_code
            == 404
        )
    after = account_stats(emulator)
    assert after["list"] == before["list"] and after.get("file_get", 0) == before.get("file_get", 0)


def test_a_read_only_mount_refuses_writes_with_405(emulator, make_gateway):
    gateway = make_gateway(download="proxy", read_only=True)
    add_real(emulator, "keep.txt", b"keep")
    url = gateway.url + "/pikpak/keep.txt"
    assert "PUT" not in requests.options(url, auth=gateway.auth).headers["Allow"]
    assert requests.put(url, data=b"x", auth=gateway.auth).status_code == 405
    assert requests.delete(url, auth=gateway.auth).status_code == 405
    assert (
        requests.request("MKCOL", gateway.url + "/pikpak/new", auth=gateway.auth).status_code == 405
    )
    assert requests.get(url, auth=gateway.auth).content == b"keep"


def _raw(gw, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    parts = urlsplit(gw.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    token = base64.b64encode(f"{gw.auth[0]}:{gw.auth[1]}".encode()).decode()
    conn.request(
        method, path, body=body, headers={"Authorization": f"Basic {token}", **(headers or {})}
    )
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_bad_input_gets_clean_answers(emulator, make_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    add_real(emulator, "Films/a.mp4")
    gw = make_gateway(download="redirect")
    unauth = propfind(gw, "/pikpak", auth=None)
    assert unauth.status_code == 401 and unauth.headers["WWW-Authenticate"].startswith("Basic")
    for path in (
        "/pikpak/../",
        "/pikpak/%2e%2e/",
        "/pikpak/Films/%2e%2e/%2e%2e/etc/passwd",
        "/pikpak/..%2f..%2fetc",
    ):
        status, body = _raw(gw, "PROPFIND", path, {"Depth": "1"})
        assert status in (400, 403, 404), path
        assert b"pikpak" not in body or status != 207
    status, _ = _raw(
        gw,
        "PROPFIND",
        "/pikpak/",
        {"Depth": "1", "Content-Type": "application/xml"},
        b"<propfind xmlns='DAV:'><prop><getetag></prop>",
    )
    assert status == 400
    status, body = _raw(gw, "PROPFIND", "/pikpak/", {"Depth": "infinity"})
    assert status == 403 and b"propfind-finite-depth" in body
    status, body = _raw(gw, "GET", "/pikpak/Films/a.mp4", {"Range": "bytes=5-2"})
    redirect = requests.get(gw.url + "/pikpak/Films/a.mp4", auth=gw.auth, allow_redirects=False)
    signed = redirect.headers["Location"]
    access = emulator.world.access_tokens
    secrets_seen = [*access, signed, "sig=", "os.", "Traceback", PIKPAK_PASSWORD]
    for text in [caplog.text, redirect.text, body.decode("utf-8", "replace")]:
        for secret in secrets_seen:
            assert secret not in text


PIKPAK_PASSWORD = "correct horse"


def test_healthz_needs_no_login(gateway):
    resp = requests.get(gateway.url + "/healthz")
    assert resp.status_code == 200 and resp.text == "ok\n"


def test_request_log_has_one_line_per_request(emulator, make_gateway, caplog):
    caplog.set_level(logging.INFO, logger="pikdav.requests")
    add_real(emulator, "a.mp4")
    gw = make_gateway(download="redirect")
    requests.get(gw.url + "/pikpak/a.mp4", auth=gw.auth, allow_redirects=False)
    lines = wait_until(lambda: request_lines(caplog, "GET", 1), "the request line", 10)
    assert len(lines) == 1
    assert "GET /pikpak/a.mp4 302" in lines[0] and "redirect (mode=redirect)" in lines[0]
    assert " ms" in lines[0]
