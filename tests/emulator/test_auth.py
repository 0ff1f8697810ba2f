"""The user API: captcha, sign-in and single-use refresh tokens, as PikPak answers them."""

from __future__ import annotations

import requests

from pikdav.pikpak import identity
from tests.support.pikpak_raw import RawSession, control


def test_signin_then_drive_call(alice):
    resp = alice.get("/drive/v1/about")
    assert resp.status_code == 200
    assert resp.json()["quota"]["limit"] == str(10 << 40)


def test_wrong_password_is_4022(emulator):
    session = RawSession(emulator.base_url, "alice@example.com", "wrong")
    resp = session.signin()
    assert resp.status_code == 400
    assert resp.json()["error_code"] == 4022
    assert resp.json()["error"] == "invalid_account_or_password"


def test_signin_without_captcha_is_refused(emulator):
    resp = requests.post(
        f"{emulator.base_url}/v1/auth/signin",
        json={
            "client_id": identity.WEB.client_id,
            "username": "alice@example.com",
            "password": "correct horse",
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "captcha_required"


def test_captcha_sign_is_checked_for_every_platform(emulator):
    for platform in identity.PLATFORMS.values():
        session = RawSession(emulator.base_url, "a", "b", platform=platform)
        good = session.captcha("GET:/drive/v1/files")
        assert good["_status"] == 200 and good["captcha_token"].startswith("ck0.")
        assert good["expires_in"] == 300
    forged = requests.post(
        f"{emulator.base_url}/v1/shield/captcha/init",
        json={
            "action": "GET:/drive/v1/files",
            "client_id": identity.WEB.client_id,
            "device_id": "0123456789abcdef0123456789abcdef",
            "meta": {
                "captcha_sign": "1." + "0" * 32,
                "client_version": "2.0.0",
                "package_name": "mypikpak.com",
                "timestamp": "1700000000000",
            },
        },
    )
    assert forged.status_code == 400
    assert forged.json()["error"] == "captcha_invalid"
    assert forged.json()["error_code"] == 4002


def test_a_drive_captcha_token_cannot_sign_in(emulator):
    session = RawSession(emulator.base_url, "alice@example.com", "correct horse")
    session.captcha("GET:/drive/v1/files")
    resp = requests.post(
        f"{emulator.base_url}/v1/auth/signin",
        json={
            "client_id": identity.WEB.client_id,
            "username": "alice@example.com",
            "password": "correct horse",
            "captcha_token": session.captcha_token,
        },
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["error_code"] == 4002
    assert body["error_description"].startswith("meta.username expect , but got map[")


def test_refresh_tokens_are_single_use(alice):
    first = alice.refresh_token
    assert alice.refresh().status_code == 200
    assert alice.refresh_token != first
    reused = alice.refresh(first)
    assert reused.status_code == 400
    body = reused.json()
    assert body["error"] == "invalid_grant"
    assert body["error_code"] == 4126
    assert body["error_description"].startswith(
        "invalid refresh token for it may be has been refreshed by other process"
    )
    assert body["details"][1]["message"] == "The refresh token is incorrect or expired"
    stats = control(alice.base, "stats", method="GET")["accounts"]["alice@example.com"]
    assert stats["refresh"] == 1 and stats["refresh_rejected"] == 1


def test_refresh_token_is_bound_to_its_client(alice):
    resp = alice.http.post(
        f"{alice.base}/v1/auth/token",
        json={
            "client_id": identity.ANDROID.client_id,
            "grant_type": "refresh_token",
            "refresh_token": alice.refresh_token,
        },
    )
    assert resp.status_code == 400 and resp.json()["error_code"] == 4126


def test_expired_access_token_is_401_unauthenticated(alice):
    control(alice.base, "expire-tokens", {"username": "alice@example.com"})
    resp = alice.get("/drive/v1/about")
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthenticated" and resp.json()["error_code"] == 16
    assert alice.refresh().status_code == 200
    assert alice.get("/drive/v1/about").status_code == 200


def test_a_wrong_captcha_token_on_a_drive_call_is_code_9(alice):
    alice.captcha_token = "ck0.not-a-token"
    resp = alice.post("/drive/v1/files", {"kind": "drive#folder", "name": "x", "parent_id": ""})
    assert resp.status_code == 400
    assert resp.json()["error"] == "captcha_invalid" and resp.json()["error_code"] == 9
    alice.captcha("POST:/drive/v1/files")
    made = alice.post("/drive/v1/files", {"kind": "drive#folder", "name": "x", "parent_id": ""})
    assert made.status_code == 200


def test_human_check_blocks_signin_until_solved(emulator):
    control(
        emulator.base_url,
        "faults",
        {"path": "^/v1/shield/captcha/init$", "captcha": {}, "times": 1},
    )
    session = RawSession(emulator.base_url, "alice@example.com", "correct horse")
    answer = session.captcha("POST:/v1/auth/signin", signin=True)
    assert answer["url"]
    resp = requests.post(
        f"{emulator.base_url}/v1/auth/signin",
        json={
            "client_id": identity.WEB.client_id,
            "username": "alice@example.com",
            "password": "correct horse",
            "captcha_token": answer["captcha_token"],
        },
    )
    assert resp.status_code == 400 and resp.json()["error_code"] == 4002
    assert requests.get(answer["url"]).status_code == 200  # a person solves the puzzle
    resp = requests.post(
        f"{emulator.base_url}/v1/auth/signin",
        json={
            "client_id": identity.WEB.client_id,
            "username": "alice@example.com",
            "password": "correct horse",
            "captcha_token": answer["captcha_token"],
        },
    )
    assert resp.status_code == 200


def test_too_frequent_and_rate_limit_faults(emulator, alice):
    control(
        emulator.base_url,
        "faults",
        {
            "rules": [
                {"path": "^/v1/shield/captcha/init$", "too_frequent": True, "times": 1},
                {"path": "^/drive/v1/about$", "rate_limit": {"retry_after": 7}, "times": 1},
            ]
        },
    )
    answer = alice.captcha("GET:/drive/v1/about")
    assert answer["_status"] == 400
    assert "too frequent" in answer["error_description"]
    limited = alice.get("/drive/v1/about")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert alice.get("/drive/v1/about").status_code == 200


def test_signin_and_refresh_accept_form_bodies(emulator):
    session = RawSession(emulator.base_url, "alice@example.com", "correct horse")
    session.captcha("POST:/v1/auth/signin", signin=True)
    resp = requests.post(
        f"{emulator.base_url}/v1/auth/signin",
        data={
            "client_id": identity.WEB.client_id,
            "username": "alice@example.com",
            "password": "correct horse",
        },
        headers={"X-Captcha-Token": session.captcha_token},
    )
    assert resp.status_code == 200
    token = resp.json()
    assert token["token_type"] == "Bearer" and token["refresh_token"].startswith("os.")
    assert token["access_token"].count(".") == 2 and token["expires_in"] == 7200
