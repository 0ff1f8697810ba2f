"""``pikdav login``: signs in, stores the tokens, prints the account and expiry, never a token."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.pikpak_raw import control

ALICE = ("--username", "alice@example.com", "--password", "correct horse")


def run_login(emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pikdav.cli",
            "login",
            "--user-api",
            emulator.base_url,
            "--drive-api",
            emulator.base_url,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_login_with_password_stores_tokens_and_prints_no_secret(emulator, tmp_path):
    store = tmp_path / "tokens.json"
    proc = run_login(
        emulator,
        *ALICE,
        "--token-store",
        str(store),
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(store.read_text())
    assert "Signed in to PikPak as alice@example.com" in proc.stdout
    assert str(store) in proc.stdout and "valid until" in proc.stdout
    for secret in (
        saved["token"]["access_token"],
        saved["token"]["refresh_token"],
        "correct horse",
    ):
        assert secret not in proc.stdout + proc.stderr
    assert store.stat().st_mode & 0o777 == 0o600


def test_login_with_a_refresh_token(emulator, tmp_path):
    first = tmp_path / "a.json"
    run_login(emulator, *ALICE, "--token-store", str(first))
    refresh = json.loads(first.read_text())["token"]["refresh_token"]
    proc = run_login(
        emulator, "--refresh-token", refresh, "--token-store", str(tmp_path / "b.json")
    )
    assert proc.returncode == 0, proc.stderr
    assert refresh not in proc.stdout


def test_wrong_password_is_a_one_line_error(emulator, tmp_path):
    proc = run_login(
        emulator,
        "--username",
        "alice@example.com",
        "--password",
        "nope",
        "--token-store",
        str(tmp_path / "t.json"),
    )
    assert proc.returncode == 1
    assert "username or password" in proc.stderr and "Traceback" not in proc.stderr


def test_human_check_prints_the_url_and_accepts_the_solved_token(emulator, tmp_path):
    control(
        emulator.base_url,
        "faults",
        {"path": "^/v1/shield/captcha/init$", "captcha": {}, "times": 1},
    )
    store = str(tmp_path / "t.json")
    proc = run_login(
        emulator,
        *ALICE,
        "--token-store",
        store,
    )
    assert proc.returncode == 3 and "human check" in proc.stderr
    url = next(word for word in proc.stderr.split() if word.startswith("http"))
    import requests

    requests.get(url)
    solved = url.split("captcha_token=")[1].split("&")[0]
    again = run_login(
        emulator,
        *ALICE,
        "--token-store",
        store,
        "--captcha-token",
        solved,
    )
    assert again.returncode == 0, again.stderr
