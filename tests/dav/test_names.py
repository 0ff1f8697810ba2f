"""Names that would break listings: control characters and overlong names are refused on the
way in; names PikPak already holds with control characters (the PikPak app can make them)
are listed with control pictures, so every client can read the folder and reach the item."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote

import pytest
import requests

from tests.support.davclients import Rclone, cadaver, netrc_home
from tests.support.gateway import dav
from tests.support.pikpak_raw import control, drive_tree

USER = "alice@example.com"
# As PikPak holds them → as the gateway shows them.
HELD = {
    "bell\x07.txt": "bell\u2407.txt",
    "nul\x00byte.txt": "nul\u2400byte.txt",
    "two\nlines.txt": "two\u240alines.txt",
    "carriage\rreturn.txt": "carriage\u240dreturn.txt",
    "esc\x1b[31mred.txt": "esc\u241b[31mred.txt",
    "del\x7f.txt": "del\u2421.txt",
    "c1\x85next.txt": "c1\ufffdnext.txt",
    "plain.txt": "plain.txt",
}
PROPNAME = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


def add(emulator, path: str, data: bytes) -> None:
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": path, "content": base64.b64encode(data).decode()},
    )


def twin_of(emulator, name: str, data: bytes) -> None:
    """A second item named ``name`` beside the first, newer (the control API replaces)."""
    world = emulator.world
    acct = world.accounts[USER]
    with world.lock:
        first = next(n for n in acct.nodes.values() if n.name == name)
        blob = world.blobs.add_bytes(data)
        twin = world.add_node(
            acct, first.parent_id, name, first.kind, blob=blob, rename_on_clash=False
        )
        twin.link_ready_at = 0.0


def listed(answer: requests.Response) -> dict[str, str]:
    """A 207 as an XML parser reads it: href name → displayname (members only)."""
    assert answer.status_code == 207, answer.text
    root = ET.fromstring(answer.content)  # raises on a character XML cannot carry
    out = {}
    for response in root.iter("{DAV:}response"):
        href = response.findtext("{DAV:}href")
        name = unquote(href.rstrip("/").rsplit("/", 1)[-1])
        out[name] = response.findtext(".//{DAV:}displayname")
    return out


@pytest.fixture
def gw(make_gateway, emulator):
    gw = make_gateway(download="proxy")
    for index, name in enumerate(HELD):
        add(emulator, f"Inbox/{name}", f"content {index}".encode())
    return gw


def test_every_propfind_of_a_folder_with_control_names_parses(emulator, gw):
    shown = set(HELD.values())
    fast = listed(dav(gw, "PROPFIND", "/pikpak/Inbox/", headers={"Depth": "1"}))
    assert set(fast) - {"Inbox"} == shown
    assert {v for k, v in fast.items() if k != "Inbox"} == shown  # displayname too
    # propname, and allprop once a member has a dead property, are WsgiDAV's own answers.
    names = listed(dav(gw, "PROPFIND", "/pikpak/Inbox/", headers={"Depth": "1"}, data=PROPNAME))
    assert set(names) - {"Inbox"} == shown
    patch = dav(
        gw,
        "PROPPATCH",
        "/pikpak/Inbox/plain.txt",
        data=b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x">'
        b"<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>",
    )
    assert patch.status_code == 207
    full = listed(dav(gw, "PROPFIND", "/pikpak/Inbox/", headers={"Depth": "1"}, data=ALLPROP))
    assert {v for k, v in full.items() if k != "Inbox"} == shown


def test_an_item_is_reachable_by_its_shown_name(emulator, gw):
    for index, shown in enumerate(HELD.values()):
        path = f"/pikpak/Inbox/{quote(shown)}"
        assert dav(gw, "GET", path).content == f"content {index}".encode(), shown
        depth0 = listed(dav(gw, "PROPFIND", path, headers={"Depth": "0"}))
        assert depth0 == {shown: shown}
    bell, lines = quote(HELD["bell\x07.txt"]), quote(HELD["two\nlines.txt"])
    moved = dav(
        gw,
        "MOVE",
        f"/pikpak/Inbox/{bell}",
        headers={"Destination": f"{gw.url}/pikpak/{quote('bell, renamed.txt')}"},
    )
    assert moved.status_code == 201
    assert drive_tree(emulator)["bell, renamed.txt"]["kind"] == "drive#file"
    assert dav(gw, "DELETE", f"/pikpak/Inbox/{lines}").status_code == 204
    assert "Inbox/two\nlines.txt" in drive_tree(emulator, trashed=True)
    assert "Inbox/two\nlines.txt" not in drive_tree(emulator)


def test_control_characters_in_new_names_are_refused(emulator, gw):
    before = drive_tree(emulator)
    for char in ("%01", "%00", "%0a", "%0d", "%1b", "%7f", "%c2%85"):
        answers = [
            dav(gw, "PUT", f"/pikpak/new{char}file.txt", data=b"x"),
            dav(gw, "MKCOL", f"/pikpak/new{char}folder"),
            dav(
                gw,
                "COPY",
                "/pikpak/Inbox/plain.txt",
                headers={"Destination": f"{gw.url}/pikpak/copy{char}.txt"},
            ),
            dav(
                gw,
                "MOVE",
                "/pikpak/Inbox/plain.txt",
                headers={"Destination": f"/pikpak/moved{char}.txt"},
            ),
        ]
        for answer in answers:
            assert answer.status_code == 400, (char, answer.text)
            assert "control characters" in answer.text
    assert drive_tree(emulator) == before


def test_a_name_longer_than_pikpaks_limit_is_refused(emulator, gw):
    before = drive_tree(emulator)
    for name in ("n" * 256, "x" * 10_000 + ".txt"):
        put = dav(gw, "PUT", f"/pikpak/{name}", data=b"x")
        assert put.status_code == 400 and "255 characters" in put.text, put.text
        mkcol = dav(gw, "MKCOL", f"/pikpak/{name}")
        assert mkcol.status_code == 400 and "255 characters" in mkcol.text
    assert drive_tree(emulator) == before
    # 255 is fine, also for a second item of that name (the " (2)" stays within 255).
    longest = "L" * 251 + ".txt"
    assert dav(gw, "PUT", f"/pikpak/{longest}", data=b"first").status_code == 201
    twin_of(emulator, longest, b"second")  # PikPak allows two items of one name
    names = listed(dav(gw, "PROPFIND", "/pikpak/", headers={"Depth": "1"}))
    numbered = [n for n in names if n.endswith(" (2).txt")]
    assert len(numbered) == 1 and len(numbered[0]) == 255
    assert dav(gw, "GET", f"/pikpak/{quote(numbered[0])}").content == b"second"
    assert dav(gw, "GET", f"/pikpak/{quote(longest)}").content == b"first"


def test_rclone_and_cadaver_list_the_folder(emulator, gw, tmp_path):
    rclone = Rclone(gw.url, tmp_path / "rclone")
    listing = rclone("lsf", ":webdav:Inbox").stdout.decode()
    assert len(listing.splitlines()) == len(HELD) and "plain.txt" in listing
    out = cadaver(f"{gw.url}/pikpak/Inbox/", netrc_home(tmp_path / "home"), "ls")
    assert "succeeded" in out and "plain.txt" in out and "bell\u2407.txt" in out
