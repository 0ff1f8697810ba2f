"""The failure users report most: a mount that dies because two refreshes raced.

PikPak's refresh tokens are single-use. These tests reproduce the race against the
emulator (which rotates and rejects exactly as PikPak does) and show pikdav's session
survives it, in one process with many threads and in several processes on one token file.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import AuthError
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import FileTokenStore, open_store
from tests.support.pikpak_raw import RawSession, account_stats
from tests.support.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice@example.com", "correct horse"


def session(emulator, store_path: Path, password: str | None = PASSWORD, **kw) -> Session:
    return Session(
        Credentials(USER, password),
        FileTokenStore(store_path),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
        **kw,
    )


def test_200_threads_and_an_expiry_make_exactly_one_refresh(emulator, tmp_path):
    drive = Drive(session(emulator, tmp_path / "t.json", pool_size=200))
    drive.about()
    emulator.world.expire_tokens(USER)
    failures: list[str] = []
    start = threading.Barrier(200)

    def call() -> None:
        start.wait()
        try:
            drive.list_folder("")
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=call) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    stats = account_stats(emulator)
    assert stats["refresh"] == 1 and stats["refresh_rejected"] == 0
    assert stats["signin"] == 1


def test_proactive_refresh_at_half_life(emulator, tmp_path):
    emulator.world.token_ttl = 4
    drive = Drive(session(emulator, tmp_path / "t.json"))
    drive.about()
    time.sleep(2.2)  # more than half of the 4 s life is gone
    drive.about()
    stats = account_stats(emulator)
    assert stats["refresh"] == 1 and stats["unauthenticated"] == 0


def _run_processes(
    emulator,
    tmp_path: Path,
    mode: str,
    processes: int = 3,
    threads: int = 50,
    rounds: int = 5,
    store: str | None = None,
) -> list[int]:
    token_file = store or str(tmp_path / "shared.json")
    # One login, then every process shares the token store (no password: only the
    # refresh token keeps them alive).
    first = Session(
        Credentials(USER, PASSWORD),
        open_store(token_file, Path(token_file), "shared"),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )
    Drive(first).about()
    signals = tmp_path / "signals"
    signals.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.refresh_worker",
                emulator.base_url,
                str(token_file),
                str(rounds),
                str(threads),
                str(signals),
                mode,
            ],
            cwd=ROOT,
        )
        for _ in range(processes)
    ]
    failures = []
    try:
        for rnd in range(1, rounds + 1):
            emulator.world.expire_tokens(USER)
            (signals / f"round-{rnd}").touch()
            wait_until(
                lambda rnd=rnd: len(list(signals.glob(f"done-{rnd}-*"))) >= processes,
                f"round {rnd} finished",
                120,
            )
            failures += [int(p.read_text().split()[0]) for p in signals.glob(f"done-{rnd}-*")]
    finally:
        for p in procs:
            p.wait(timeout=60)
    return failures


def test_three_processes_share_one_token_file_across_five_expiries(emulator, tmp_path):
    failures = _run_processes(emulator, tmp_path, "safe")
    stats = account_stats(emulator)
    assert sum(failures) == 0
    assert stats["refresh"] == 5
    assert stats["refresh_rejected"] == 0


def test_three_hosts_share_one_redis_store_across_five_expiries(emulator, tmp_path):
    """Several hosts: the same guarantee with the Redis store and a real redis-server."""
    from tests.support.redis_server import redis_server

    with redis_server(tmp_path) as url:
        failures = _run_processes(emulator, tmp_path, "safe", store=url)
    stats = account_stats(emulator)
    assert sum(failures) == 0
    assert stats["refresh"] == 5 and stats["refresh_rejected"] == 0


def test_a_naive_refresher_fails_the_same_test(emulator, tmp_path):
    """What AList did: each process refreshes with the token it holds in memory."""
    failures = _run_processes(emulator, tmp_path, "naive")
    stats = account_stats(emulator)
    assert stats["refresh_rejected"] > 0
    assert sum(failures) > 0


def _rotate_behind_our_back(emulator, store: Path) -> None:
    """Someone else (another app with the same login) uses our refresh token."""
    stolen = FileTokenStore(store).load().token.refresh_token
    assert RawSession(emulator.base_url, USER, PASSWORD).refresh(stolen).status_code == 200
    emulator.world.expire_tokens(USER)


def test_a_rejected_refresh_token_leads_to_a_new_sign_in(emulator, tmp_path):
    store = tmp_path / "t.json"
    Drive(session(emulator, store)).about()
    _rotate_behind_our_back(emulator, store)
    Drive(session(emulator, store)).about()
    stats = account_stats(emulator)
    assert stats["refresh_rejected"] == 1 and stats["signin"] == 2


def test_without_a_password_a_dead_refresh_token_is_a_clear_error(emulator, tmp_path):
    store = tmp_path / "t.json"
    Drive(session(emulator, store)).about()
    _rotate_behind_our_back(emulator, store)
    with pytest.raises(AuthError, match="pikdav login"):
        Drive(session(emulator, store, password=None)).about()


def test_log_in_with_a_refresh_token_alone(emulator, tmp_path):
    first = session(emulator, tmp_path / "a.json")
    Drive(first).about()
    refresh_token = first.auth.token.refresh_token
    only_token = Session(
        Credentials(USER, None, refresh_token=refresh_token),
        FileTokenStore(tmp_path / "b.json"),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )
    assert Drive(only_token).about().limit > 0
    assert account_stats(emulator)["refresh"] == 1 and account_stats(emulator)["signin"] == 1


def test_token_file_is_private_and_never_half_written(emulator, tmp_path):
    store = tmp_path / "deep" / "t.json"
    Drive(session(emulator, store)).about()
    assert store.stat().st_mode & 0o777 == 0o600
    assert not list(store.parent.glob(".t.json.*"))  # no temporary files left behind


def test_platform_is_kept_with_the_token(emulator, tmp_path):
    from pikdav.pikpak import identity

    store = tmp_path / "t.json"
    Drive(session(emulator, store)).about()
    android = Session(
        Credentials(USER, PASSWORD),
        FileTokenStore(store),
        platform=identity.ANDROID,
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )
    with pytest.raises(AuthError, match="platform"):
        Drive(android).about()


@pytest.mark.parametrize("step", ["before_request", "after_rotation", "mid_write", "after_save"])
@pytest.mark.parametrize("password", [PASSWORD, None], ids=["password", "token-only"])
def test_a_crash_at_any_step_of_a_refresh_is_survived(emulator, tmp_path, step, password):
    store = tmp_path / "t.json"
    Drive(session(emulator, store)).about()
    emulator.world.expire_tokens(USER)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_worker", emulator.base_url, str(store), step],
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == -9, "the worker should have been killed mid-refresh"
    assert FileTokenStore(store).load() is not None  # never a half-written store
    rotated_but_lost = step in ("after_rotation", "mid_write")
    restarted = Drive(session(emulator, store, password=password))
    if rotated_but_lost and password is None:
        with pytest.raises(AuthError, match="pikdav login"):
            restarted.about()
        return
    assert restarted.about().limit > 0
    stats = account_stats(emulator)
    assert stats["refresh_rejected"] == (1 if rotated_but_lost else 0)
    assert stats["signin"] == (2 if rotated_but_lost else 1)
