"""Reading a shared link: each share status as an error a user understands, the pass-code
token and the captcha token renewed when PikPak stops taking them, and no login ever."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from pikdav.pikpak.errors import (
    CaptchaError,
    NotFound,
    ShareBlocked,
    ShareExpired,
    ShareNotFound,
    SharePassCodeRefused,
    ShareRegionBlocked,
)
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.shares import SHARE_ACTION, SharedFolder
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control

USER, PASSWORD = "alice@example.com", "correct horse"


def session_for(base: str, user: str = USER, password: str | None = PASSWORD) -> Session:
    return Session(Credentials(user, password), MemoryTokenStore(), user_api=base, drive_api=base)


def share(emulator, path: str = "Trip/clip.mp4", pass_code: bool = True) -> tuple[dict, dict]:
    """A file in a folder of alice's drive, the folder shared; (the file, the share)."""
    made = control(
        emulator.base_url, "files", {"username": USER, "path": path, "size": 3000, "seed": 5}
    )
    shared = session_for(emulator.base_url).call(
        "POST",
        "/drive/v1/share",
        json={
            "file_ids": [made["parent_id"]],
            "share_to": "encryptedlink" if pass_code else "publiclink",
            "expiration_days": -1,
            "pass_code_option": "REQUIRED" if pass_code else "NOT_REQUIRED",
        },
    )
    return made, shared


def visitor(emulator) -> Session:
    control(emulator.base_url, "accounts", {"username": "visitor", "password": "pw"})
    return session_for(emulator.base_url, "visitor", None)


def counting(emulator, path: str) -> int:
    """A fault rule that changes nothing and counts the calls to ``path``; its index."""
    control(emulator.base_url, "faults", {"path": path, "delay": 0})
    return len(control(emulator.base_url, "faults", method="GET")["rules"]) - 1


def fired(emulator, index: int) -> int:
    return control(emulator.base_url, "faults", method="GET")["rules"][index]["fired"]


def test_a_missing_or_wrong_pass_code_says_so(emulator):
    _, made = share(emulator)
    reader = visitor(emulator)
    for given in ("", "nope"):
        with pytest.raises(SharePassCodeRefused, match="pass code") as caught:
            SharedFolder(reader, made["share_id"], given).list_folder()
        assert caught.value.final and caught.value.reason in ("PASS_CODE_EMPTY", "PASS_CODE_ERROR")


def test_a_pass_code_token_pikpak_stopped_taking_is_fetched_again_once(emulator):
    """PikPak's pass-code tokens do not last for ever: a refused one is not the end."""
    made_file, made = share(emulator)
    shared = SharedFolder(visitor(emulator), made["share_id"], made["pass_code"])
    [top] = shared.list_folder()
    asked = counting(emulator, "^/drive/v1/share$")
    emulator.world.shares[made["share_id"]].tokens.clear()  # every token given is void now
    assert [f.name for f in shared.list_folder(top.id)] == ["clip.mp4"]
    emulator.world.shares[made["share_id"]].tokens.clear()
    link = shared.download_link(made_file["id"])
    expected = emulator.world.blobs.get(made_file["hash"]).read_at(0, 3000)
    assert requests.get(link.url, timeout=30).content == expected
    assert fired(emulator, asked) == 2  # one new token each time, not one per call


def test_an_expired_share(emulator):
    _, made = share(emulator, pass_code=False)
    emulator.world.shares[made["share_id"]].expires_at = time.time() - 1
    with pytest.raises(ShareExpired, match="expired; ask its owner for a new link") as caught:
        SharedFolder(visitor(emulator), made["share_id"]).list_folder()
    assert isinstance(caught.value, NotFound) and caught.value.final


def test_a_share_that_does_not_exist_or_whose_files_were_deleted(emulator):
    made_file, made = share(emulator, pass_code=False)
    reader = visitor(emulator)
    with pytest.raises(ShareNotFound, match="does not exist"):
        SharedFolder(reader, "VSnosuchshare").list_folder()
    with emulator.world.lock:
        del emulator.world.accounts[USER].nodes[made_file["parent_id"]]
    with pytest.raises(ShareNotFound, match="deleted by its owner"):
        SharedFolder(reader, made["share_id"]).list_folder()


def test_an_expired_captcha_token_is_renewed_for_anonymous_calls(emulator):
    _, made = share(emulator, pass_code=False)
    reader = visitor(emulator)
    shared = SharedFolder(reader, made["share_id"])
    assert [f.name for f in shared.list_folder()] == ["Trip"]
    with emulator.world.lock:
        for token in emulator.world.captcha_tokens.values():
            token.expires_at = 0  # PikPak ended it early; the client does not know
    rejected = emulator.world.stats.snapshot()["total"].get("captcha_rejected", 0)
    assert [f.name for f in shared.list_folder()] == ["Trip"]
    stats = emulator.world.stats.snapshot()
    assert stats["total"]["captcha_rejected"] == rejected + 1
    assert stats["accounts"].get("visitor", {}).get("signin", 0) == 0


# PikPak statuses and refusals the emulator does not produce (yet): faked with responses.
BASE = "https://pikpak.test"
CAPTCHA = f"{BASE}/v1/shield/captcha/init"
DETAIL = f"{BASE}/drive/v1/share/detail"
INFO = f"{BASE}/drive/v1/share"


def status_body(status: str, text: str) -> dict:
    return {"share_status": status, "share_status_text": text, "files": [], "pass_code_token": ""}


def captcha_ok(token: str = "ck0.share") -> None:
    responses.add(responses.POST, CAPTCHA, json={"captcha_token": token, "expires_in": 300})


@responses.activate
def test_a_share_blocked_as_sensitive():
    captcha_ok()
    responses.add(responses.GET, INFO, json=status_body("SENSITIVE_RESOURCE", "blocked"))
    with pytest.raises(ShareBlocked, match="PikPak blocked this share"):
        SharedFolder(session_for(BASE), "VSx").list_folder()


@responses.activate
@pytest.mark.parametrize("as_status", [False, True], ids=["error-answer", "share-status"])
def test_the_region_block_says_to_use_a_proxy(as_status):
    captcha_ok()
    text = "Sorry, sharing is not available in the current region"
    if as_status:
        responses.add(responses.GET, INFO, json=status_body("REGION_BLOCKED", text))
    else:
        responses.add(
            responses.GET,
            INFO,
            status=403,
            json={"error": "permission_denied", "error_code": 7, "error_description": text},
        )
    with pytest.raises(ShareRegionBlocked, match="set a proxy") as caught:
        SharedFolder(session_for(BASE), "VSx").list_folder()
    assert caught.value.final


@responses.activate
def test_anonymous_calls_carry_no_login_and_a_share_captcha():
    """Even a session that has a login reads shares without it."""
    captcha_ok("ck0.old")
    captcha_ok("ck0.new")
    responses.add(responses.GET, INFO, json=status_body("OK", "") | {"pass_code_token": "pct"})
    responses.add(
        responses.GET,
        DETAIL,
        status=400,
        json={"error": "captcha_invalid", "error_code": 9, "error_description": "expired"},
    )
    responses.add(responses.GET, DETAIL, json=status_body("OK", "") | {"files": [{"id": "F"}]})
    files = SharedFolder(session_for(BASE), "VSx", "1234").list_folder()
    assert [f.id for f in files] == ["F"]
    inits = [c for c in responses.calls if c.request.url == CAPTCHA]
    assert len(inits) == 2
    for init in inits:
        body = init.request.body.decode()
        assert SHARE_ACTION in body and '"user_id": ""' in body
    reads = [c.request for c in responses.calls if c.request.url.split("?")[0] != CAPTCHA]
    assert all("Authorization" not in r.headers for r in reads)
    assert [r.headers["X-Captcha-Token"] for r in reads] == ["ck0.old", "ck0.old", "ck0.new"]
    assert "pass_code_token=pct" in reads[-1].url
    assert not [c for c in responses.calls if "/v1/auth/" in c.request.url]  # no sign-in


@responses.activate
def test_a_captcha_refused_twice_in_a_row_is_an_error():
    captcha_ok("ck0.a")
    captcha_ok("ck0.b")
    refused = {"error": "captcha_invalid", "error_code": 9, "error_description": "expired"}
    responses.add(responses.GET, INFO, status=400, json=refused)
    responses.add(responses.GET, INFO, status=400, json=refused)
    with pytest.raises(CaptchaError):
        SharedFolder(session_for(BASE), "VSx").list_folder()
