"""Where PikPak wants a captcha token on drive calls, and what it does without one.

PikPak refuses a wrong or expired token (code 9), but it lets ``POST /drive/v1/files``
through with no token at all (a widely used third-party client creates folders and offline
tasks that way), and since mid-2024 it answers ``GET /drive/v1/files/{id}`` without a valid
token too, with links that its CDN does not serve (404).
"""

from __future__ import annotations

import base64

import requests

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control

USER = "alice@example.com"
FOLDER = {"kind": "drive#folder", "name": "made without a captcha", "parent_id": ""}


def _without_captcha(alice) -> dict[str, str]:
    headers = alice.headers()
    del headers["X-Captcha-Token"]
    return headers


def test_creating_a_folder_without_any_captcha_token_is_accepted(emulator, alice):
    resp = alice.http.post(
        f"{alice.base}/drive/v1/files", json=FOLDER, headers=_without_captcha(alice)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["file"]["name"] == "made without a captcha"
    names = [f["name"] for f in alice.list_all("")[0]]
    assert "made without a captcha" in names


def test_an_offline_task_without_any_captcha_token_is_accepted(emulator, alice):
    resp = alice.http.post(
        f"{alice.base}/drive/v1/files",
        json={
            "kind": "drive#file",
            "upload_type": "UPLOAD_TYPE_URL",
            "url": {"url": "magnet:?xt=urn:btih:abc"},
        },
        headers=_without_captcha(alice),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["task"]["id"]


def test_an_expired_captcha_token_is_still_refused_with_code_9(emulator, alice):
    alice.captcha("POST:/drive/v1/files")
    with emulator.world.lock:
        emulator.world.captcha_tokens[alice.captcha_token].expires_at = 0
    resp = alice.post("/drive/v1/files", FOLDER)
    assert resp.status_code == 400 and resp.json()["error_code"] == 9


def _file(emulator, data: bytes) -> str:
    made = control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "clip.mp4", "content": base64.b64encode(data).decode()},
    )
    return made["id"]


def test_file_detail_without_a_valid_captcha_carries_links_the_cdn_does_not_serve(emulator, alice):
    data = b"0123456789" * 100
    file_id = _file(emulator, data)
    for headers in (_without_captcha(alice), alice.headers() | {"X-Captcha-Token": "ck0.wrong"}):
        resp = alice.http.get(f"{alice.base}/drive/v1/files/{file_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        detail = resp.json()
        assert detail["id"] == file_id and detail["size"] == str(len(data))
        url = detail["links"]["application/octet-stream"]["url"]
        assert detail["web_content_link"] == url
        assert requests.get(url).status_code == 404
        for media in detail["medias"]:
            assert requests.get(media["link"]["url"]).status_code == 404
    # With a valid token the same call gives links that work.
    alice.captcha(f"GET:/drive/v1/files/{file_id}")
    good = alice.get(f"/drive/v1/files/{file_id}").json()
    assert requests.get(good["links"]["application/octet-stream"]["url"]).content == data
    stats = emulator.world.stats.snapshot()["total"]
    assert stats["links_without_captcha"] == 2 and stats["download_not_found"] >= 2


def test_our_client_downloads_and_creates_against_the_emulator(emulator):
    """pikdav sends a captcha token on every drive call, so both rules leave it working."""
    data = b"pikdav" * 1000
    file_id = _file(emulator, data)
    drive = Drive(
        Session(
            Credentials(USER, "correct horse"),
            MemoryTokenStore(),
            user_api=emulator.base_url,
            drive_api=emulator.base_url,
        )
    )
    link = drive.download_link(file_id)
    assert requests.get(link.url).content == data
    assert drive.mkdir("", "from pikdav").name == "from pikdav"
    assert emulator.world.stats.snapshot()["total"]["links_without_captcha"] == 0
