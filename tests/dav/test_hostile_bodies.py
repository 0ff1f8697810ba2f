"""Bodies sent to fill the gateway's memory: XML bodies above 1 MiB are refused (413) before
they are read, or while they are read when chunked; dead properties are capped per value,
per item and in all (507 in the PROPPATCH answer, with the reason), and a refused PROPPATCH
stores nothing."""

from __future__ import annotations

import base64
import socket
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from pikdav.dav import limits
from pikdav.dav.cluster import ClusterPropertyManager
from pikdav.dav.deadprops import CappedPropertyManager
from pikdav.vfs.cluster import Cluster
from tests.support.gateway import DAV_PASSWORD, DAV_USER, dav
from tests.support.pikpak_raw import control

USER = "alice@example.com"
MIB = 1 << 20
BASIC = base64.b64encode(f"{DAV_USER}:{DAV_PASSWORD}".encode()).decode()


def proppatch_body(**props: bytes) -> bytes:
    inner = b"".join(b"<Z:%s>%s</Z:%s>" % (n.encode(), v, n.encode()) for n, v in props.items())
    return (
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x">'
        b"<D:set><D:prop>" + inner + b"</D:prop></D:set></D:propertyupdate>"
    )


def raw_exchange(gw, head: str, body: bytes) -> bytes:
    """Send ``head`` and ``body``, then nothing more; what the gateway answers."""
    url = urlsplit(gw.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def head_of(method: str, path: str, gw, extra: str) -> str:
    host = urlsplit(gw.url).netloc
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {BASIC}\r\n"
        f"Content-Type: application/xml\r\n{extra}\r\n"
    )


@pytest.fixture(params=["in memory", "on redis"])
def gw(request, make_gateway, emulator):
    """A gateway whose dead properties are in memory, or on the Redis of several instances
    (the same caps hold for both)."""
    cluster = {"redis": request.getfixturevalue("redis_url")} if request.param == "on redis" else {}
    gw = make_gateway(download="proxy", **cluster)
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "Docs/a.txt", "content": base64.b64encode(b"a").decode()},
    )
    return gw


def dead_props(gw, path: str) -> dict[str, int]:
    """The dead properties of ``path`` (urn:x namespace) → length of their text."""
    answer = dav(gw, "PROPFIND", path, headers={"Depth": "0"})
    assert answer.status_code == 207
    found = {}
    for prop in ET.fromstring(answer.content).iter("{DAV:}prop"):
        for child in prop:
            if child.tag.startswith("{urn:x}"):
                found[child.tag[len("{urn:x}") :]] = len(child.text or "")
    return found


def test_a_50_mib_body_is_refused_before_it_is_read(gw):
    for method in ("PROPPATCH", "PROPFIND", "LOCK"):
        head = head_of(method, "/pikpak/Docs/a.txt", gw, f"Content-Length: {50 * MIB}\r\n")
        answer = raw_exchange(gw, head, b"")  # not a byte of the 50 MiB is sent
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 413 "), (method, answer[:300])
        assert b"limited to 1 MiB" in rest
    assert dead_props(gw, "/pikpak/Docs/a.txt") == {}


def test_a_chunked_body_is_cut_at_the_cap(gw):
    head = head_of("PROPPATCH", "/pikpak/Docs/a.txt", gw, "Transfer-Encoding: chunked\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    # One byte more than the cap, and no last chunk: the answer cannot wait for the end.
    answer = raw_exchange(gw, head, chunk * 16 + b"1\r\nx\r\n")
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"limited to 1 MiB" in rest
    assert dead_props(gw, "/pikpak/Docs/a.txt") == {}


def test_a_chunked_propfind_body_is_read(gw):
    # WsgiDAV reads only bodies with a Content-Length: a chunked one used to be "allprop".
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/>'
    body += b"</D:prop></D:propfind>"
    answer = dav(
        gw, "PROPFIND", "/pikpak/Docs/", headers={"Depth": "1"}, data=iter([body[:40], body[40:]])
    )
    assert answer.status_code == 207
    assert "getcontentlength" in answer.text and "displayname" not in answer.text


def test_dead_properties_are_capped_per_value_and_per_item(gw):
    path = "/pikpak/Docs/a.txt"
    big = dav(gw, "PROPPATCH", path, data=proppatch_body(big=b"v" * (100 << 10)))
    assert big.status_code == 207
    assert "HTTP/1.1 507 " in big.text and "limited to 64 KiB" in big.text
    assert dead_props(gw, path) == {}
    value = b"v" * (62 << 10)
    for index in range(16):  # 16 of 62 KiB fit in 1 MiB, a 17th does not
        answer = dav(gw, "PROPPATCH", path, data=proppatch_body(**{f"p{index}": value}))
        assert answer.status_code == 207 and "200 OK" in answer.text, index
    over = dav(gw, "PROPPATCH", path, data=proppatch_body(p16=value, small=b"s"))
    assert "HTTP/1.1 507 " in over.text and "1 MiB in all" in over.text
    assert "424 Failed Dependency" in over.text  # PROPPATCH is all or nothing
    held = dead_props(gw, path)
    assert sorted(held) == sorted(f"p{i}" for i in range(16)) and set(held.values()) == {62 << 10}
    # Replacing a property frees what it held; another item has a budget of its own.
    assert "200 OK" in dav(gw, "PROPPATCH", path, data=proppatch_body(p0=b"short")).text
    assert "200 OK" in dav(gw, "PROPPATCH", path, data=proppatch_body(p16=value)).text
    other = dav(gw, "PROPPATCH", "/pikpak/Docs/", data=proppatch_body(p0=value))
    assert "200 OK" in other.text


@pytest.fixture(params=["in memory", "on redis"])
def store(request):
    if request.param == "in memory":
        return CappedPropertyManager()
    cluster = Cluster(request.getfixturevalue("redis_url"))
    return ClusterPropertyManager(cluster)


def test_the_store_keeps_its_count_through_moves_copies_and_deletes(monkeypatch, store):
    monkeypatch.setattr(limits, "DEAD_PROPERTIES_MAX", 1000)
    store.write_property("/m/a", "{urn:x}p", b"x" * 400)
    store.write_property("/m/b/", "{urn:x}p", b"y" * 300)
    store.write_property("/m/b/c", "{urn:x}q", b"z" * 100)
    assert store.held() == 800 + 3 * len("{urn:x}p")
    with pytest.raises(Exception) as refused:
        store.write_property("/m/d", "{urn:x}p", b"w" * 300, dry_run=True)
    assert "at most" in str(refused.value.context_info)
    store.copy_properties("/m/a", "/m/e")  # no room: the copy keeps no properties
    assert store.get_properties("/m/e") == []
    store.move_properties("/m/b/", "/m/f/", with_children=True)
    assert store.held() == 800 + 3 * len("{urn:x}p")
    store.remove_properties("/m/a")
    store.remove_property("/m/f/c", "{urn:x}q")
    assert store.held() == 300 + len("{urn:x}p")
    store.write_property("/m/d", "{urn:x}p", b"w" * 300)  # room again
