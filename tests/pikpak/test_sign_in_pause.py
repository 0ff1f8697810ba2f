"""Sign-ins that cannot succeed by asking again pause every sign-in, for everyone.

With a wrong password, every call used to sign in again (one captcha init and one sign-in
per DAV request): against PikPak that earns "Your operation is too frequent" for hours.
Now the first failure records a pause in the token store, every call that needs a login
fails at once with :class:`LoginPaused` until it ends, and a new login in the store ends it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import LoginPaused
from pikdav.pikpak.retry import SIGN_IN_PAUSE
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import FileTokenStore, StoredAuth, open_store
from tests.support.pikpak_raw import RawSession, control, sign_ins

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice@example.com", "correct horse"


def session(emulator, store, password: str | None = "wrong", **kw) -> Session:
    store = store if not isinstance(store, Path) else FileTokenStore(store)
    return Session(
        Credentials(USER, password),
        store,
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
        login="pikdav login -c /etc/pikdav.yaml",
        **kw,
    )


def burst(call, threads: int) -> list[BaseException | None]:
    """``threads`` calls at once; what each one raised (None: it worked)."""
    start = threading.Barrier(threads)
    outcomes: list[BaseException | None] = []

    def one() -> None:
        start.wait()
        try:
            call()
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return outcomes


def test_a_wrong_password_costs_one_sign_in_however_many_threads_ask(emulator, tmp_path):
    drive = Drive(session(emulator, tmp_path / "t.json"))
    for round_ in range(5):
        caught = burst(lambda: drive.list_folder(""), 20)
        assert all(isinstance(e, LoginPaused) for e in caught), (round_, caught[:3])
        assert {e.kind for e in caught} == {"password_refused"}
        assert all(50 <= e.retry_after <= 60 for e in caught)
    for _ in range(50):
        with pytest.raises(LoginPaused):
            drive.about()
    assert sign_ins(emulator) == 1
    stats = emulator.world.stats.snapshot()["total"]
    assert stats["captcha_init"] == 1 and stats["signin_rejected"] == 1


def test_the_error_says_what_is_wrong_what_to_do_and_until_when(emulator, tmp_path):
    with pytest.raises(LoginPaused) as caught:
        Drive(session(emulator, tmp_path / "t.json")).about()
    text = str(caught.value)
    assert "PikPak refused the username or password" in text
    assert "put the right password in the config" in text
    assert "`pikdav login -c /etc/pikdav.yaml`" in text
    assert "does not sign in to PikPak again before" in text
    assert "wrong" not in text.replace("went wrong", "")  # never the password


def test_the_pause_is_kept_in_the_store_and_grows(emulator, tmp_path):
    store = tmp_path / "t.json"
    pauses = dataclasses.replace(SIGN_IN_PAUSE, backoff=1.0, backoff_max=2.0)
    drive = Drive(session(emulator, store, login_pause=pauses))
    lengths = []
    for attempt in range(1, 4):
        with pytest.raises(LoginPaused):
            drive.about()
        pause = FileTokenStore(store).load().pause
        assert pause.kind == "password_refused" and pause.failures == attempt
        lengths.append(round(pause.until - pause.since, 1))
        calls = 0
        # Calls while the pause lasts ask PikPak nothing (only those surely inside it: a
        # loaded machine must not let the pause run out in the middle of the loop).
        while calls < 10 and time.time() < pause.until - 0.3:
            with pytest.raises(LoginPaused):
                drive.about()
            calls += 1
        assert calls > 0
        assert sign_ins(emulator) == attempt
        time.sleep(max(0.0, pause.until - time.time()) + 0.05)
    assert lengths == [1.0, 2.0, 2.0]  # doubling, up to the bound


def test_a_new_login_in_the_store_ends_the_pause(emulator, tmp_path, caplog):
    store = tmp_path / "t.json"
    paused = Drive(session(emulator, store))
    with pytest.raises(LoginPaused):
        paused.about()
    # `pikdav login` with the right password, in another process or here: a new login.
    session(emulator, store, password=PASSWORD).login()
    assert FileTokenStore(store).load().pause is None
    caplog.set_level(logging.INFO, logger="pikdav.pikpak.session")
    assert paused.about().limit > 0  # without a restart
    assert paused.list_folder("") == []
    assert sign_ins(emulator) == 2  # the wrong one and the login; nothing after
    assert "sign-ins are no longer paused" in caplog.text


def test_a_pause_is_logged_once_per_change_not_per_call(emulator, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="pikdav.pikpak.session")
    pauses = dataclasses.replace(SIGN_IN_PAUSE, backoff=2.0)
    drive = Drive(session(emulator, tmp_path / "t.json", login_pause=pauses))

    def pause_lines() -> list[tuple[str, str]]:
        return [
            (r.levelname, r.getMessage())
            for r in caplog.records
            if any(w in r.getMessage() for w in ("pause", "sign-ins", "sign in to PikPak"))
        ]

    with pytest.raises(LoginPaused):
        drive.about()
    pause = FileTokenStore(tmp_path / "t.json").load().pause
    calls = 1
    while calls < 30 and time.time() < pause.until - 0.3:  # surely within the pause
        with pytest.raises(LoginPaused):
            drive.about()
        calls += 1
    assert calls > 10
    [(level, start)] = pause_lines()  # the start of the pause, once
    assert level == "WARNING" and "does not sign in to PikPak again" in start
    time.sleep(max(0.0, pause.until - time.time()) + 0.05)
    emulator.world.accounts[USER].password = "wrong"  # the configured password is right now
    for _ in range(30):
        drive.about()
    assert pause_lines()[1:] == [
        ("INFO", "pikpak: the pause on signing in is over; trying again"),
        ("INFO", "pikpak: logged in to PikPak again; sign-ins resume"),
    ]
    # Later refreshes and adopted tokens say nothing more about pauses.
    emulator.world.expire_tokens(USER)
    drive.about()
    session(emulator, tmp_path / "t.json").refresh(rejected=None)
    assert len(pause_lines()) == 3


def test_no_password_and_a_dead_refresh_token_pause_too(emulator, tmp_path):
    store = tmp_path / "t.json"
    Drive(session(emulator, store, password=PASSWORD)).about()
    stolen = FileTokenStore(store).load().token.refresh_token
    assert RawSession(emulator.base_url, USER, PASSWORD).refresh(stolen).status_code == 200
    emulator.world.expire_tokens(USER)
    drive = Drive(session(emulator, store, password=None))
    for _ in range(20):
        with pytest.raises(LoginPaused) as caught:
            drive.about()
        assert caught.value.kind == "no_password"
        assert "run `pikdav login -c /etc/pikdav.yaml`" in str(caught.value)
    stats = emulator.world.stats.snapshot()["total"]
    assert stats["refresh_rejected"] == 1 and stats["signin"] == 1  # the first login only


@pytest.mark.parametrize(
    ("fault", "kind", "at_least"),
    [
        (
            {
                "path": "^/v1/auth/signin$",
                "status": 400,
                "error": {
                    "error": "invalid_grant",
                    "error_code": 4126,
                    "error_description": "AccessProhibited",
                },
            },
            "access_prohibited",
            59,
        ),
        ({"path": "^/v1/auth/signin$", "too_frequent": True}, "too_frequent", 59),
        ({"path": "^/v1/auth/signin$", "rate_limit": {"retry_after": 600}}, "too_frequent", 599),
        ({"path": "^/v1/shield/captcha/init$", "captcha": {}}, "human_check", 59),
    ],
    ids=["access-prohibited", "too-frequent", "429-retry-after", "human-check"],
)
def test_each_reason_no_retry_can_fix_pauses_sign_ins(emulator, tmp_path, fault, kind, at_least):
    control(emulator.base_url, "faults", fault)
    drive = Drive(session(emulator, tmp_path / "t.json", password=PASSWORD))
    for _ in range(20):
        with pytest.raises(LoginPaused) as caught:
            drive.about()
        assert caught.value.kind == kind and caught.value.retry_after >= at_least
        assert "captcha_token" not in str(caught.value) and "ck0." not in str(caught.value)
    stats = emulator.world.stats.snapshot()["total"]
    assert stats["captcha_init"] == 1 and stats["signin"] <= 1


def test_a_human_check_is_logged_once_without_its_page(emulator, tmp_path, caplog):
    control(emulator.base_url, "faults", {"path": "^/v1/shield/captcha/init$", "captcha": {}})
    drive = Drive(session(emulator, tmp_path / "t.json", password=PASSWORD))
    for _ in range(10):
        with pytest.raises(LoginPaused):
            drive.about()
    said = [r for r in caplog.records if "human check" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "pikdav login -c /etc/pikdav.yaml" in said[0].getMessage()
    # The page carries the captcha token the puzzle validates: never in a log line.
    assert not [r for r in caplog.records if "captcha_token=" in r.getMessage()]
    assert not [r for r in caplog.records if "ck0." in r.getMessage()]


def _worker(emulator, spec: str, password: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.pause_worker", emulator.base_url, spec, password],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_processes_sharing_a_store_share_the_pause(emulator, tmp_path, kind):
    from tests.support.redis_server import redis_server

    def scenario(spec: str) -> None:
        first = _worker(emulator, spec, "wrong")
        assert first["paused"] == "password_refused"
        for _ in range(3):  # other processes: no sign-in of their own
            assert _worker(emulator, spec, "wrong")["paused"] == "password_refused"
        here = Drive(session(emulator, open_store(spec, Path(spec), "shared")))
        with pytest.raises(LoginPaused):
            here.about()
        assert sign_ins(emulator) == 1
        # A login elsewhere (right password) ends the pause for every process.
        session(emulator, open_store(spec, Path(spec), "shared"), password=PASSWORD).login()
        assert _worker(emulator, spec, "wrong") == {"ok": True}
        assert here.about().limit > 0
        assert sign_ins(emulator) == 2

    if kind == "file":
        scenario(str(tmp_path / "shared.json"))
    else:
        with redis_server(tmp_path) as url:
            scenario(url)


def test_token_files_without_a_pause_still_load_and_pauses_round_trip(tmp_path):
    old = {
        "platform": "web",
        "device_id": "d" * 32,
        "username": USER,
        "token": {
            "access_token": "a",
            "refresh_token": "os.r",
            "expires_at": 2.0,
            "issued_at": 1.0,
            "user_id": "U",
            "client_id": "YUMx5nI8ZU8Ap8pm",
        },
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = FileTokenStore(path).load()
    assert loaded.pause is None and loaded.token.refresh_token == "os.r"
    FileTokenStore(path).save(loaded)
    assert "pause" not in json.loads(path.read_text())  # unchanged shape without a pause
    assert StoredAuth.from_json(old | {"pause": "garbage"}).pause is None
