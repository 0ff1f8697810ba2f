"""Each client habit pikdav answers on purpose (see pikdav/dav/clients.py), through a real
gateway on the emulator: Finder's quota stall and hint files, Unicode spellings of one name,
Infuse's seeks under a redirect, rclone's and players' ranges."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
import requests

from tests.support.clientseq import EXPLORER, FINDER, FINDER_OLD, INFUSE, QUOTA_PROPFIND, RCLONE
from tests.support.davclients import put_files
from tests.support.gateway import PIKPAK_USER
from tests.support.gateway import dav as gateway_dav
from tests.support.replay import Answer

HINTS = (".metadata_never_index", ".ql_disablethumbnails", ".ql_disablecache")
DAVFS2 = "davfs2/1.7.0 neon/0.33.0"


def dav(gw, method: str, path: str, agent: str = "", **kw) -> requests.Response:
    """The support ``dav`` with ``path`` quoted here, as the client ``agent``."""
    headers = {"User-Agent": agent, **kw.pop("headers", {})} if agent else kw.pop("headers", {})
    return gateway_dav(gw, method, quote(path), headers=headers, **kw)


def props(resp: requests.Response) -> dict:
    return Answer(resp.status_code, resp.headers, resp.content).props()


def quota_shown(resp: requests.Response, href: str = "/pikpak/") -> bool:
    found = props(resp)[href]
    return any(
        " 200 " in found.get(f"{{DAV:}}{p}", ("",))[0]
        for p in ("quota-available-bytes", "quota-used-bytes")
    )


# ---------------------------------------------------------------------------- quota
# named with Apple's own property too: answered by WsgiDAV, not by pikdav's fast path
APPLE = QUOTA_PROPFIND.replace(
    "<D:quotaused/>",
    '<D:quotaused/><A:appledoubleheader xmlns:A="http://www.apple.com/webdav_fs/props/"/>',
)


@pytest.mark.parametrize("depth", ["0", "1"])
@pytest.mark.parametrize(
    "body", [b"", QUOTA_PROPFIND.encode(), APPLE.encode()], ids=["allprop", "named", "apple"]
)
def test_finder_on_macos_15_4_gets_no_quota_and_other_clients_do(gateway, depth, body):
    headers = {"Depth": depth}
    for agent, shown in (
        (FINDER, False),
        (FINDER_OLD, True),
        (RCLONE, True),
        (DAVFS2, True),
        (EXPLORER, True),
        ("WebDAVFS/3.0.0 (03008000)", False),
    ):
        resp = dav(gateway, "PROPFIND", "/pikpak/", agent, headers=headers, data=body)
        assert resp.status_code == 207, (agent, resp.text)
        assert quota_shown(resp) is shown, agent


# ---------------------------------------------------------------------------- hint files
def test_finders_hint_files_exist_empty_at_each_mount_root_and_are_never_listed(gateway):
    for hint in HINTS:
        got = dav(gateway, "GET", f"/pikpak/{hint}", FINDER)
        assert got.status_code == 200 and got.content == b""
        head = dav(gateway, "HEAD", f"/pikpak/{hint}", FINDER)
        assert head.status_code == 200 and head.headers["Content-Length"] == "0"
        stat = dav(gateway, "PROPFIND", f"/pikpak/{hint}", FINDER, headers={"Depth": "0"})
        assert stat.status_code == 207
        assert props(stat)[f"/pikpak/{hint}"]["{DAV:}getcontentlength"][1] == "0"
        # a mount at the server root (http://host/) finds them there too
        assert dav(gateway, "GET", f"/{hint}", FINDER).status_code == 200
    listing = dav(gateway, "PROPFIND", "/pikpak/", FINDER, headers={"Depth": "1"})
    assert not {f"/pikpak/{h}" for h in HINTS} & set(props(listing))
    # only at the root: deeper down they are names like any other
    put_files(gateway.emulator, {"Films/x.txt": b"x"})
    assert dav(gateway, "GET", "/pikpak/Films/.ql_disablethumbnails").status_code == 404


def test_finders_hint_files_cannot_be_written_moved_locked_or_deleted(emulator, gateway):
    put_files(emulator, {"a.txt": b"aaa"})
    for hint in HINTS:
        path = f"/pikpak/{hint}"
        for method, kw in (
            ("PUT", {"data": b"index me"}),
            ("DELETE", {}),
            ("MOVE", {"headers": {"Destination": f"{gateway.url}/pikpak/b.txt"}}),
            ("COPY", {"headers": {"Destination": f"{gateway.url}/pikpak/c.txt"}}),
            (
                "PROPPATCH",
                {
                    "data": b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:">'
                    b'<D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set>'
                    b"</D:propertyupdate>"
                },
            ),
            (
                "LOCK",
                {
                    "data": b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
                    b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
                    b"</D:lockinfo>"
                },
            ),
        ):
            resp = dav(gateway, method, path, **kw)
            assert resp.status_code in (403, 207), (method, hint, resp.status_code)
            if resp.status_code == 207:  # PROPPATCH: the property is refused
                assert "403" in resp.text and "200 OK" not in resp.text
            assert b"<html" not in resp.content.lower()
        moved_onto = dav(
            gateway, "MOVE", "/pikpak/a.txt", headers={"Destination": f"{gateway.url}{path}"}
        )
        assert moved_onto.status_code == 403
    names = {n.name for n in emulator.world.accounts[PIKPAK_USER].nodes.values()}
    assert not names & set(HINTS)
    assert dav(gateway, "GET", "/pikpak/a.txt").content == b"aaa"


def test_the_mount_option_turns_the_hint_files_off(emulator, make_gateway):
    gw = make_gateway(download="proxy", finder_hints=False)
    for hint in HINTS:
        assert dav(gw, "GET", f"/pikpak/{hint}", FINDER).status_code == 404
        assert dav(gw, "GET", f"/{hint}", FINDER).status_code == 404


# ---------------------------------------------------------------------------- Unicode names
NFC = unicodedata.normalize("NFC", "Café Müller.txt")
NFD = unicodedata.normalize("NFD", NFC)


def stored_names(emulator) -> list[str]:
    account = emulator.world.accounts[PIKPAK_USER]
    return [n.name for n in account.nodes.values() if not n.trashed]


def test_a_name_put_in_nfd_is_found_in_nfc_and_stored_in_nfc(emulator, gateway):
    assert NFC != NFD
    assert dav(gateway, "PUT", f"/pikpak/{NFD}", FINDER, data=b"from Finder").status_code == 201
    assert dav(gateway, "GET", f"/pikpak/{NFC}", EXPLORER).content == b"from Finder"
    assert dav(gateway, "GET", f"/pikpak/{NFD}", FINDER).content == b"from Finder"
    assert NFC in stored_names(emulator) and NFD not in stored_names(emulator)


def test_a_put_in_one_spelling_replaces_the_file_of_the_other(emulator, gateway):
    put_files(emulator, {NFD: b"held by PikPak in NFD"})  # e.g. uploaded by Finder elsewhere
    assert dav(gateway, "GET", f"/pikpak/{NFC}").content == b"held by PikPak in NFD"
    assert dav(gateway, "PUT", f"/pikpak/{NFC}", EXPLORER, data=b"new").status_code == 204
    assert dav(gateway, "GET", f"/pikpak/{NFD}").content == b"new"
    same = [n for n in stored_names(emulator) if unicodedata.normalize("NFC", n) == NFC]
    assert len(same) == 1, same
    listing = dav(gateway, "PROPFIND", "/pikpak/", headers={"Depth": "1"})
    assert len([h for h in props(listing) if "Caf" in h]) == 1


def test_folders_and_moves_clash_across_spellings(emulator, gateway):
    put_files(emulator, {"old.txt": b"old", "other.txt": b"other"})
    folder_nfd = unicodedata.normalize("NFD", "Musée")
    assert dav(gateway, "MKCOL", f"/pikpak/{folder_nfd}").status_code == 201
    again = dav(gateway, "MKCOL", f"/pikpak/{unicodedata.normalize('NFC', 'Musée')}")
    assert again.status_code == 405
    dest = f"{gateway.url}/pikpak/{quote(NFD)}"
    assert dav(gateway, "MOVE", "/pikpak/old.txt", headers={"Destination": dest}).status_code == 201
    moved = dav(
        gateway,
        "MOVE",
        "/pikpak/other.txt",
        headers={"Destination": f"{gateway.url}/pikpak/{quote(NFC)}", "Overwrite": "F"},
    )
    assert moved.status_code == 412  # the NFD name is taken, whatever its spelling
    assert NFC in stored_names(emulator) and "Musée" in stored_names(emulator)


# ---------------------------------------------------------------------------- Infuse
def test_each_seek_under_a_redirect_is_answered_from_the_link_cache(emulator, make_gateway):
    gw = make_gateway(download="redirect")
    data = bytes(range(256)) * 4096
    put_files(emulator, {"Films/film.mkv": data})
    before = emulator.world.stats.snapshot()["accounts"].get(PIKPAK_USER, {}).get("link_issued", 0)
    for start in (0, 900_000, 10, 500_000, 1_000_000, 250_000):  # play, then five seeks
        resp = dav(
            gw,
            "GET",
            "/pikpak/Films/film.mkv",
            INFUSE,
            headers={"Range": f"bytes={start}-"},
            allow_redirects=False,
        )
        assert resp.status_code == 302
        cdn = requests.get(resp.headers["Location"], headers={"Range": f"bytes={start}-"})
        assert cdn.status_code == 206 and cdn.content == data[start:]
    after = emulator.world.stats.snapshot()["accounts"].get(PIKPAK_USER, {}).get("link_issued", 0)
    assert after - before == 1  # one link asked of PikPak for the play and its five seeks
