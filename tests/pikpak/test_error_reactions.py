"""The error table's reactions, one answer at a time (``responses`` fakes PikPak here)."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from pikdav.pikpak import errors
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, RetryPolicy, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore, StoredAuth
from pikdav.pikpak.types import Token

USER_API, DRIVE_API = "https://user.test", "https://drive.test"
ABOUT = f"{DRIVE_API}/drive/v1/about"
CAPTCHA = f"{USER_API}/v1/shield/captcha/init"
QUOTA = {"quota": {"limit": "100", "usage": "1"}}


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def make_session(password: str | None = "pw") -> Session:
    now = time.time()
    token = Token("access-1", "os.refresh-1", now + 7200, now, "USER1", "YUMx5nI8ZU8Ap8pm")
    store = MemoryTokenStore(StoredAuth("web", "d" * 32, "alice", token))
    return Session(
        Credentials("alice", password),
        store,
        user_api=USER_API,
        drive_api=DRIVE_API,
        retry=RetryPolicy(attempts=4, seconds=60),
    )


def captcha_ok(rsps, token="ck0.one", url=""):
    rsps.add(responses.POST, CAPTCHA, json={"captcha_token": token, "expires_in": 300, "url": url})


def err(error: str, code: int, description: str = "") -> dict:
    return {"error": error, "error_code": code, "error_description": description or error}


@pytest.mark.parametrize(
    ("status", "body", "kind", "reaction"),
    [
        (401, err("unauthenticated", 16), errors.AuthError, errors.Reaction.REFRESH),
        (400, err("invalid_grant", 4126), errors.AuthError, errors.Reaction.RELOGIN),
        (400, err("captcha_invalid", 9), errors.CaptchaError, errors.Reaction.RENEW_CAPTCHA),
        (
            400,
            err(
                "captcha_invalid",
                4002,
                "Aborted - Your operation is too frequent, please try again later",
            ),
            errors.RateLimited,
            errors.Reaction.BACK_OFF,
        ),
        (400, err("invalid_account_or_password", 4022), errors.AuthError, errors.Reaction.GIVE_UP),
        (404, err("file_not_found", 5), errors.NotFound, errors.Reaction.GIVE_UP),
        (400, err("file_duplicated_name", 3), errors.Conflict, errors.Reaction.GIVE_UP),
        (400, err("file_rename_uncompleted", 9), errors.Transient, errors.Reaction.RETRY),
        (400, err("file_space_not_enough", 8), errors.QuotaExceeded, errors.Reaction.GIVE_UP),
        (
            400,
            err("task_daily_create_limit_vip", 11),
            errors.QuotaExceeded,
            errors.Reaction.GIVE_UP,
        ),
        (429, {}, errors.RateLimited, errors.Reaction.BACK_OFF),
        (502, {}, errors.Transient, errors.Reaction.RETRY),
        (418, {}, errors.PikPakError, errors.Reaction.GIVE_UP),
    ],
)
def test_every_answer_has_one_reaction(status, body, kind, reaction):
    exc, rule = errors.error_from_answer(status, body)
    assert type(exc) is kind and rule.reaction is reaction


def test_the_refused_refresh_token_never_reaches_a_message():
    body = err(
        "invalid_grant",
        4126,
        "invalid refresh token for it may be has been refreshed "
        "by other process, more info redis: nil, RefreshToken os.SECRETSECRETSECRET",
    )
    exc, _ = errors.error_from_answer(400, body)
    assert "SECRET" not in str(exc) and "refreshed by other process" in str(exc)


@responses.activate
def test_429_waits_as_long_as_retry_after_says(sleeps):
    captcha_ok(responses)
    responses.add(
        responses.GET,
        ABOUT,
        status=429,
        headers={"Retry-After": "7"},
        json=err("too_many_requests", 8),
    )
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(make_session()).about().limit == 100
    assert sleeps == [7.0]


@responses.activate
def test_rate_limit_that_persists_ends_in_a_clear_error(sleeps):
    captcha_ok(responses)
    responses.add(responses.GET, ABOUT, status=429, headers={"Retry-After": "1"})
    with pytest.raises(errors.RateLimited):
        Drive(make_session()).about()
    assert len(responses.calls) == 1 + 4  # one captcha init, then the bound of 4 attempts


@responses.activate
def test_5xx_burst_is_retried_with_backoff(sleeps):
    captcha_ok(responses)
    for _ in range(3):
        responses.add(responses.GET, ABOUT, status=503)
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(make_session()).about().usage == 1
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2]


@responses.activate
def test_a_post_that_may_have_happened_is_not_repeated(sleeps):
    captcha_ok(responses)
    responses.add(responses.POST, f"{DRIVE_API}/drive/v1/files", status=502)
    with pytest.raises(errors.Transient):
        Drive(make_session()).mkdir("", "x")
    posts = [c for c in responses.calls if c.request.url.startswith(DRIVE_API)]
    assert len(posts) == 1


@responses.activate
def test_dropped_connection_retries_reads_but_not_creates(sleeps):
    captcha_ok(responses)
    responses.add(responses.GET, ABOUT, body=requests.ConnectionError("connection reset"))
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(make_session()).about().limit == 100
    responses.add(
        responses.POST,
        f"{DRIVE_API}/drive/v1/files",
        body=requests.ConnectionError("connection reset"),
    )
    with pytest.raises(errors.Transient):
        Drive(make_session()).mkdir("", "x")


@responses.activate
def test_expired_captcha_is_renewed_once(sleeps):
    captcha_ok(responses, "ck0.old")
    captcha_ok(responses, "ck0.new")
    responses.add(responses.GET, ABOUT, status=400, json=err("captcha_invalid", 9))
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(make_session()).about().limit == 100
    drive_calls = [c for c in responses.calls if c.request.url == ABOUT]
    assert [c.request.headers["X-Captcha-Token"] for c in drive_calls] == ["ck0.old", "ck0.new"]


@responses.activate
def test_human_check_fails_with_the_url():
    captcha_ok(responses, url="https://user.test/puzzle?x=1")
    with pytest.raises(errors.HumanCheckRequired) as caught:
        Drive(make_session()).about()
    assert caught.value.url == "https://user.test/puzzle?x=1"


@responses.activate
def test_401_refreshes_then_retries(sleeps):
    captcha_ok(responses)
    responses.add(responses.GET, ABOUT, status=401, json=err("unauthenticated", 16))
    responses.add(
        responses.POST,
        f"{USER_API}/v1/auth/token",
        json={
            "access_token": "access-2",
            "refresh_token": "os.refresh-2",
            "expires_in": 7200,
            "sub": "USER1",
            "token_type": "Bearer",
        },
    )
    responses.add(responses.GET, ABOUT, json=QUOTA)
    session = make_session()
    assert Drive(session).about().limit == 100
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer access-2"
    assert session.store.load().token.refresh_token == "os.refresh-2"


@responses.activate
def test_dead_refresh_token_signs_in_again(sleeps):
    captcha_ok(responses)
    responses.add(responses.GET, ABOUT, status=401, json=err("unauthenticated", 16))
    responses.add(
        responses.POST, f"{USER_API}/v1/auth/token", status=400, json=err("invalid_grant", 4126)
    )
    captcha_ok(responses, "ck0.signin")
    responses.add(
        responses.POST,
        f"{USER_API}/v1/auth/signin",
        json={
            "access_token": "access-3",
            "refresh_token": "os.refresh-3",
            "expires_in": 7200,
            "sub": "USER1",
            "token_type": "Bearer",
        },
    )
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(make_session()).about().limit == 100
    signin = [c for c in responses.calls if c.request.url.endswith("/v1/auth/signin")]
    assert len(signin) == 1


@responses.activate
def test_too_frequent_at_sign_in_backs_off_instead_of_hammering(sleeps):
    session = make_session()
    session.store.save(StoredAuth("web", "d" * 32, "alice", None))
    responses.add(
        responses.POST,
        CAPTCHA,
        status=400,
        json=err(
            "captcha_invalid",
            4002,
            "Aborted - Your operation is too frequent, please try again later",
        ),
    )
    # Asking again while PikPak says "too frequent" only prolongs the block: no retry at
    # all, and a pause on sign-ins that every later call meets without asking PikPak.
    for _ in range(3):
        with pytest.raises(errors.LoginPaused) as caught:
            Drive(session).about()
        assert caught.value.kind == "too_frequent" and caught.value.retry_after >= 59
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_a_failed_early_refresh_keeps_using_the_valid_token(sleeps):
    session = make_session()
    now = time.time()
    # More than half of the token's life is gone, but it is valid for another 50 minutes.
    token = Token("access-1", "os.refresh-1", now + 3000, now - 4200, "USER1", "YUMx5nI8ZU8Ap8pm")
    session.store.save(StoredAuth("web", "d" * 32, "alice", token))
    captcha_ok(responses)
    responses.add(responses.POST, f"{USER_API}/v1/auth/token", status=503)
    responses.add(responses.GET, ABOUT, json=QUOTA)
    assert Drive(session).about().limit == 100
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer access-1"


@responses.activate
def test_a_rename_repeated_after_a_lost_answer_is_success(sleeps):
    captcha_ok(responses)
    url = f"{DRIVE_API}/drive/v1/files/F1"
    responses.add(responses.PATCH, url, body=requests.ConnectionError("reset after send"))
    responses.add(responses.PATCH, url, status=400, json=err("file_rename_to_same_name", 3))
    responses.add(
        responses.GET, url, json={"id": "F1", "name": "new.txt", "kind": "drive#file", "size": "3"}
    )
    renamed = Drive(make_session()).rename("F1", "new.txt")
    assert renamed.name == "new.txt"


@responses.activate
def test_a_refresh_answer_without_a_new_refresh_token_keeps_the_old_one(sleeps):
    captcha_ok(responses)
    responses.add(responses.GET, ABOUT, status=401, json=err("unauthenticated", 16))
    responses.add(
        responses.POST,
        f"{USER_API}/v1/auth/token",
        json={"access_token": "access-2", "expires_in": 7200, "token_type": "Bearer"},
    )
    responses.add(responses.GET, ABOUT, json=QUOTA)
    session = make_session()
    Drive(session).about()
    assert session.store.load().token.refresh_token == "os.refresh-1"


def test_a_rename_to_the_name_it_has_is_done_without_asking_again(sleeps):
    """PikPak's "same name" is the error table's ALREADY_DONE: the caller gets the file."""
    exc, rule = errors.error_from_answer(400, err("file_rename_to_same_name", 3))
    assert rule.reaction is errors.Reaction.ALREADY_DONE and exc.reaction is rule.reaction
    with responses.RequestsMock() as rsps:
        captcha_ok(rsps)
        url = f"{DRIVE_API}/drive/v1/files/F1"
        rsps.add(responses.PATCH, url, status=400, json=err("file_rename_to_same_name", 3))
        rsps.add(responses.GET, url, json={"id": "F1", "name": "same.txt", "kind": "drive#file"})
        assert Drive(make_session()).rename("F1", "same.txt").name == "same.txt"
        assert [c.request.method for c in rsps.calls[1:]] == ["PATCH", "GET"]
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "final"),
    [
        (400, err("file_space_not_enough", 8), True),
        (400, err("task_daily_create_limit_vip", 11), True),
        (404, err("file_not_found", 5), True),
        (400, err("file_name_invalid", 3), True),
        (502, {}, False),
        (429, {}, False),
        (401, err("unauthenticated", 16), False),
        (400, err("invalid_account_or_password", 4022), False),  # fixed by a person, then works
        (400, err("file_duplicated_name", 3), False),
    ],
)
def test_every_error_says_whether_any_retry_can_fix_it(status, body, final):
    exc, rule = errors.error_from_answer(status, body)
    assert exc.final is final and rule.final is final


def test_errors_raised_without_a_rule_are_final_by_their_class():
    assert errors.QuotaExceeded("full").final and errors.NotFound("gone").final
    assert not errors.Transient("later").final and not errors.PikPakError("?").final
    assert not errors.LoginPaused("password_refused", "refused", time.time() + 60).final


def store_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    answer = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(answer, "UploadPart")


@pytest.mark.parametrize(
    ("code", "status", "kind", "reaction", "final"),
    [
        ("ExpiredToken", 403, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("InvalidAccessKeyId", 403, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("SignatureDoesNotMatch", 403, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("AccessDenied", 403, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("NoSuchUpload", 404, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("CallbackFailed", 203, errors.Transient, errors.Reaction.GIVE_UP, False),
        ("EntityTooLarge", 400, errors.QuotaExceeded, errors.Reaction.GIVE_UP, True),
        ("QuotaExceeded", 403, errors.QuotaExceeded, errors.Reaction.GIVE_UP, True),
        ("SlowDown", 503, errors.RateLimited, errors.Reaction.BACK_OFF, False),
        ("InternalError", 500, errors.Transient, errors.Reaction.RETRY, False),
        ("ServiceUnavailable", 503, errors.RateLimited, errors.Reaction.BACK_OFF, False),
        ("InvalidArgument", 400, errors.Transient, errors.Reaction.GIVE_UP, False),
    ],
)
def test_every_object_store_code_has_one_reaction(code, status, kind, reaction, final):
    exc, rule = errors.object_store_error(store_error(code, status), "https://b.test/k")
    assert type(exc) is kind and rule.reaction is reaction and exc.final is final
    assert str(exc).startswith("the upload to PikPak's store failed: ") and code in str(exc)


def test_an_object_store_error_read_for_a_log_line_never_raises():
    """It used to raise QuotaExceeded while the message of a retry was being written."""
    for code in errors.OBJECT_STORE:
        exc, _ = errors.object_store_error(store_error(code, 400), "https://b.test/k")
        assert f"{exc}"  # formatting is all it does


def test_no_answer_at_all_is_a_transport_row():
    refused = requests.ConnectionError("x")
    refused.__context__ = ConnectionRefusedError(111, "Connection refused")
    exc, rule = errors.transport_failure(refused, "https://drive.test/drive/v1/files?secret=1")
    assert isinstance(exc, errors.Unreachable) and rule.reaction is errors.Reaction.RETRY
    assert rule.unchanged  # it never left: even a create may be sent again
    assert str(exc) == "cannot reach PikPak at drive.test:443: connection refused"
    lost, rule = errors.transport_failure(requests.ReadTimeout("slow"), "https://drive.test/x")
    assert not rule.unchanged and lost.reaction is errors.Reaction.RETRY
