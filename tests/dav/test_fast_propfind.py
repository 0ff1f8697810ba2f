"""The PROPFIND fast path answers exactly what WsgiDAV's generic path answers."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
import requests

import pikdav.dav.propfind as fast
from tests.support.pikpak_raw import control

USER = "alice@example.com"
D = "{DAV:}"
NAMES = [
    "Amélie (2001).mkv",
    "a&b <c>.txt",
    "100% #1.mp4",
    "plain.bin",
    "sub dir/x.txt",
    "Ünïcødé/ñ.txt",
    "empty.txt",
]


def canonical(body: bytes) -> dict:
    """href → status → {prop: serialized value}, ignoring prefixes and element order."""
    out: dict = {}
    for response in ET.fromstring(body).findall(f"{D}response"):
        href = response.findtext(f"{D}href")
        for propstat in response.findall(f"{D}propstat"):
            status = propstat.findtext(f"{D}status")
            for prop in propstat.find(f"{D}prop"):
                value = prop.text or "".join(
                    sorted(ET.tostring(c).decode() for c in prop.iter() if c is not prop)
                )
                out.setdefault(href, {}).setdefault(status, {})[prop.tag] = value
    return out


@pytest.fixture
def tree(emulator):
    for i, name in enumerate(NAMES):
        data = b"" if name == "empty.txt" else bytes([i]) * (100 + i)
        control(
            emulator.base_url,
            "files",
            {"username": USER, "path": f"Media/{name}", "content": base64.b64encode(data).decode()},
        )


BODIES = {
    "empty": b"",
    "allprop": b'<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>',
    "named": (
        b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/>'
        b"<D:getlastmodified/><D:resourcetype/><D:getetag/><D:quota-used-bytes/>"
        b"<D:displayname/></D:prop></D:propfind>"
    ),
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize(
    ("path", "depth"), [("/pikpak/", "1"), ("/pikpak/Media", "1"), ("/pikpak/Media/", "0")]
)
def test_fast_path_matches_wsgidav(tree, gateway, monkeypatch, body, path, depth):
    def ask() -> requests.Response:
        return requests.request(
            "PROPFIND",
            gateway.url + path,
            data=BODIES[body],
            headers={"Depth": depth},
            auth=gateway.auth,
        )

    quick = ask()
    monkeypatch.setattr(fast, "try_fast_propfind", lambda *a: None)
    slow = ask()
    assert quick.status_code == slow.status_code == 207
    assert canonical(quick.content) == canonical(slow.content)
    expected = 1 if depth == "0" else 2 if path == "/pikpak/" else 8  # Media: 5 files, 2 dirs
    assert len(canonical(quick.content)) == expected
