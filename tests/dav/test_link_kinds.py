"""``mounts[].link``: original (default), media or transcoded. Whatever the kind, a DAV client
sees in PROPFIND the size of the bytes a GET returns, redirected or proxied."""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.support.pikpak_raw import control

USER = "alice@example.com"
FILM = os.urandom(40_000)  # a video PikPak has transcoded: its 480P is a quarter of it
NOTES = b"just text\n" * 100


@pytest.fixture
def drive(emulator):
    def add(path: str, data: bytes, transcode: bool = False) -> None:
        control(
            emulator.base_url,
            "files",
            {
                "username": USER,
                "path": path,
                "content": base64.b64encode(data).decode(),
                "transcode": transcode,
            },
        )

    add("film.mp4", FILM, transcode=True)
    add("home.mp4", NOTES)  # a video without a transcode
    add("notes.txt", NOTES)
    return emulator


def listed(gw) -> dict[str, tuple[int, str]]:
    resp = requests.request(
        "PROPFIND", f"{gw.url}/pikpak/", headers={"Depth": "1"}, auth=gw.auth, timeout=30
    )
    assert resp.status_code == 207
    found = {}
    for item in ET.fromstring(resp.content).iter("{DAV:}response"):
        name = item.findtext("{DAV:}href").rstrip("/").rsplit("/", 1)[-1]
        size = item.findtext(".//{DAV:}getcontentlength")
        if size is not None:
            found[name] = (int(size), item.findtext(".//{DAV:}getetag"))
    return found


def fetched(gw, name: str) -> bytes:
    resp = requests.get(f"{gw.url}/pikpak/{name}", auth=gw.auth, timeout=30)
    assert resp.status_code == 200, resp.status_code
    return resp.content


@pytest.mark.parametrize("download", ["proxy", "redirect"])
@pytest.mark.parametrize("kind", ["original", "media"])
def test_original_and_media_links_read_the_stored_bytes(drive, make_gateway, kind, download):
    gw = make_gateway(download=download, link=kind)
    sizes = listed(gw)
    assert sizes["film.mp4"][0] == len(FILM)
    # media: the play interface's link only where it is the original (its fid), never the
    # transcode PikPak lists first and plays by default
    assert fetched(gw, "film.mp4") == FILM
    assert fetched(gw, "home.mp4") == NOTES
    assert fetched(gw, "notes.txt") == NOTES


@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_transcoded_link_shows_and_serves_the_transcode(drive, make_gateway, download):
    original = listed(make_gateway(download=download))
    gw = make_gateway(download=download, link="transcoded")
    sizes = listed(gw)
    film = fetched(gw, "film.mp4")
    assert len(film) == sizes["film.mp4"][0] == len(FILM) // 4
    assert film != FILM[: len(film)]
    assert sizes["film.mp4"][1] != original["film.mp4"][1]  # another ETag: other bytes
    # files without a transcode are served as stored
    assert sizes["home.mp4"] == original["home.mp4"] and fetched(gw, "home.mp4") == NOTES
    assert sizes["notes.txt"] == original["notes.txt"] and fetched(gw, "notes.txt") == NOTES
    # a range of the transcode is a range of the same bytes
    part = requests.get(
        f"{gw.url}/pikpak/film.mp4", headers={"Range": "bytes=100-199"}, auth=gw.auth, timeout=30
    )
    assert part.status_code == 206 and part.content == film[100:200]


def test_a_transcoded_mount_is_read_only(drive, make_gateway):
    gw = make_gateway(download="proxy", link="transcoded")
    put = requests.put(f"{gw.url}/pikpak/new.txt", data=b"x", auth=gw.auth, timeout=30)
    assert put.status_code == 405  # as on any read-only mount
