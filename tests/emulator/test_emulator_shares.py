"""Emulator shares: restoring a share copies it into the visitor's drive."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.pikpak_raw import RawSession, control

USER = "alice@example.com"


def test_share_restore_copies_into_the_visitors_drive(emulator, alice):
    made = control(
        emulator.base_url, "files", {"username": USER, "path": "pub/a.txt", "size": 10, "seed": 3}
    )
    share = alice.post(
        "/drive/v1/share",
        {
            "file_ids": [made["parent_id"]],
            "share_to": "publiclink",
            "expiration_days": -1,
            "pass_code_option": "NOT_REQUIRED",
        },
    ).json()
    control(emulator.base_url, "accounts", {"username": "bob", "password": "pw"})
    bob = RawSession(emulator.base_url, "bob", "pw")
    bob.signin()
    info = bob.get("/drive/v1/share", share_id=share["share_id"]).json()
    restored = bob.post(
        "/drive/v1/share/restore",
        {
            "share_id": share["share_id"],
            "pass_code_token": info["pass_code_token"],
            "file_ids": [made["parent_id"]],
        },
    )
    assert restored.status_code == 200
    folders, _ = bob.list_all("")
    assert [f["name"] for f in folders] == ["pub"]
    assert [f["name"] for f in bob.list_all(folders[0]["id"])[0]] == ["a.txt"]


# --------------------------------------------------------------------- the control API
def _visitor(emulator) -> RawSession:
    control(emulator.base_url, "accounts", {"username": "carol", "password": "pw"})
    carol = RawSession(emulator.base_url, "carol", "pw")
    carol.signin()
    return carol


def _file_info(session: RawSession, share: dict, file_id: str) -> dict:
    info = session.get(
        "/drive/v1/share", share_id=share["share_id"], pass_code=share["pass_code"]
    ).json()
    return session.get(
        "/drive/v1/share/file_info",
        share_id=share["share_id"],
        file_id=file_id,
        pass_code_token=info["pass_code_token"],
    ).json()["file_info"]


def test_control_api_shares_paths_with_a_pass_code_and_sets_a_status(emulator):
    a = control(emulator.base_url, "files", {"username": USER, "path": "x/a.txt", "size": 5})
    control(emulator.base_url, "files", {"username": USER, "path": "y/b.txt", "size": 5})
    made = requests.post(
        f"{emulator.base_url}/__emulator__/shares",
        json={"username": USER, "paths": ["x", "y"], "pass_code": "42"},
    )
    assert made.status_code == 201
    share = made.json()
    assert share["share_url"] == f"https://mypikpak.com/s/{share['share_id']}"
    assert share["pass_code"] == "42"
    carol = _visitor(emulator)
    info = carol.get("/drive/v1/share", share_id=share["share_id"], pass_code="42").json()
    assert info["share_status"] == "OK" and [f["name"] for f in info["files"]] == ["x", "y"]
    assert carol.get("/drive/v1/share", share_id=share["share_id"]).json()["share_status"] == (
        "PASS_CODE_EMPTY"
    )
    for status in ("EXPIRED", "NOT_FOUND", "SENSITIVE_RESOURCE", "OK"):
        control(emulator.base_url, "shares", {"share_id": share["share_id"], "status": status})
        answer = carol.get("/drive/v1/share", share_id=share["share_id"], pass_code="42").json()
        assert answer["share_status"] == status
    bad = requests.post(
        f"{emulator.base_url}/__emulator__/shares",
        json={"share_id": share["share_id"], "status": "GONE"},
    )
    assert bad.status_code == 400
    assert _file_info(carol, share, a["id"])["name"] == "a.txt"


def test_shared_files_have_media_links_only_the_transcode_second(emulator):
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "v/film.mp4", "size": 4000, "transcode": True},
    )
    plain = control(emulator.base_url, "files", {"username": USER, "path": "v/a.bin", "size": 9})
    share = control(emulator.base_url, "shares", {"username": USER, "path": "v"})
    carol = _visitor(emulator)
    film = next(f for f in emulator.world.accounts[USER].nodes.values() if f.name == "film.mp4")
    info = _file_info(carol, share, film.id)
    assert info["web_content_link"] == ""
    assert [m["is_origin"] for m in info["medias"]] == [True, False]
    whole = requests.get(info["medias"][0]["link"]["url"])
    assert len(whole.content) == 4000
    assert len(requests.get(info["medias"][1]["link"]["url"]).content) == 1000
    other = _file_info(carol, share, plain["id"])
    assert other["web_content_link"] == "" and len(other["medias"]) == 1


def test_the_play_limit_cuts_a_share_link_but_not_the_owners_link(emulator, alice):
    size = 4 << 20
    made = control(
        emulator.base_url, "files", {"username": USER, "path": "p/big.bin", "size": size}
    )
    control(emulator.base_url, "files", {"username": USER, "path": "p/small.bin", "size": 1000})
    control(
        emulator.base_url, "config", {"share_play_limit": {"min_size": 2 << 20, "fraction": 0.45}}
    )
    share = control(emulator.base_url, "shares", {"username": USER, "path": "p"})
    url = _file_info(_visitor(emulator), share, made["id"])["medias"][0]["link"]["url"]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.headers["Content-Length"]) == size
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    conn.close()
    assert len(cut.value.partial) == int(size * 0.45)  # then the connection closed
    beyond = requests.get(url, headers={"Range": f"bytes={int(size * 0.5)}-"})
    assert beyond.status_code == 403
    assert requests.get(url, headers={"Range": "bytes=0-99"}).status_code == 206
    own = alice.get(f"/drive/v1/files/{made['id']}").json()["web_content_link"]
    assert len(requests.get(own).content) == size


def test_a_blocked_region_answers_every_share_call_with_pikpaks_words(emulator):
    control(emulator.base_url, "files", {"username": USER, "path": "r/a.txt", "size": 5})
    share = control(emulator.base_url, "shares", {"username": USER, "path": "r"})
    control(emulator.base_url, "config", {"share_region_blocked": True})
    carol = _visitor(emulator)
    for path in ("/drive/v1/share", "/drive/v1/share/detail", "/drive/v1/share/file_info"):
        resp = carol.get(path, share_id=share["share_id"])
        assert resp.status_code == 403
        assert "not available in the current region" in resp.json()["error_description"]


def test_the_control_api_says_the_root_folder_cannot_be_shared(emulator):
    control(emulator.base_url, "files", {"username": USER, "path": "x/a.txt", "size": 5})
    for body in ({"path": "/"}, {"paths": ["x", ""]}):
        refused = requests.post(
            f"{emulator.base_url}/__emulator__/shares", json={"username": USER, **body}
        )
        assert refused.status_code == 400
        assert refused.json()["error_description"] == (
            "the root folder (/) cannot be shared; share the files or folders inside it"
        )
