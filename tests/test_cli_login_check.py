"""`pikdav login` and `pikdav check` as a user runs them: passwords from a pipe, hints that
name the config in use, what `check` verified and what it did not, and paused sign-ins."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import requests

from pikdav.dav.auth import hash_password
from tests.support.command import write_config
from tests.support.pikpak_raw import control, sign_ins
from tests.support.web import free_port

PIKDAV = [sys.executable, "-m", "pikdav.cli"]
USER, PASSWORD = "alice@example.com", "correct horse"
SPACED = "my config.yaml"  # a config path with a space: the hints must quote it
QUOTA = (
    '<?xml version="1.0"?><propfind xmlns="DAV:"><prop>'
    "<quota-available-bytes/><quota-used-bytes/></prop></propfind>"
)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIKDAV, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_login_reads_the_password_from_stdin(emulator, tmp_path):
    config = write_config(tmp_path, emulator.base_url, password=None, name=SPACED)
    proc = run("login", "-c", config, "--password-stdin", stdin=PASSWORD + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "Signed in to PikPak as alice@example.com" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr
    store = tmp_path / "state" / "tokens" / "main.json"
    assert json.loads(store.read_text())["token"]["refresh_token"]
    # Without a config too, and an empty line is refused before PikPak is asked.
    alone = run(
        "login",
        "--username",
        USER,
        "--password-stdin",
        "--user-api",
        emulator.base_url,
        "--drive-api",
        emulator.base_url,
        "--token-store",
        str(tmp_path / "other.json"),
        stdin=PASSWORD + "\r\n",
    )
    assert alone.returncode == 0, alone.stderr
    empty = run("login", "-c", config, "--password-stdin", stdin="\n")
    assert empty.returncode == 2 and "empty" in empty.stderr
    both = run("login", "-c", config, "--password", "x", "--password-stdin", stdin="y\n")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert sign_ins(emulator) == 2


def test_login_help_says_the_password_flag_is_visible():
    text = " ".join(run("login", "--help").stdout.split())
    assert "--password-stdin" in text and "Visible to other users in `ps`" in text


def test_hints_name_the_config_in_use(emulator, tmp_path):
    config = write_config(tmp_path, emulator.base_url, password=None, name=SPACED)
    quoted = f"pikdav login -c '{config}'"  # the path has a space: quoted as a shell needs
    check = run("check", "-c", config)
    assert check.returncode == 1
    assert f"run `{quoted}` to sign in" in check.stdout
    control(emulator.base_url, "faults", {"path": "^/v1/shield/captcha/init$", "captcha": {}})
    login = run("login", "-c", config, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 3
    assert f"`{quoted} --captcha-token TOKEN`" in login.stderr


def test_check_with_a_stored_token_says_the_password_was_not_verified(emulator, tmp_path):
    config = write_config(tmp_path, emulator.base_url, password="a wrong password", name=SPACED)
    login = run("login", "-c", config, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    check = run("check", "-c", config)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "password: NOT verified: pikdav used the stored token" in check.stdout
    assert f"run `pikdav login -c '{config}'`" in check.stdout
    assert sign_ins(emulator) == 1  # check did not sign in
    # With no stored token, check signs in, and then it can say the password works.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    verified = run("check", "-c", write_config(fresh, emulator.base_url, name=SPACED))
    assert verified.returncode == 0
    assert "password: verified (pikdav signed in with it just now)" in verified.stdout


def test_check_shows_the_pause_that_serve_recorded(emulator, tmp_path):
    config = write_config(tmp_path, emulator.base_url, password="a wrong password", name=SPACED)
    serve = subprocess.Popen(
        [*PIKDAV, "serve", "-c", config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = serve.stdout.readline().strip()
        for _ in range(5):
            listing = requests.request(
                "PROPFIND", url + "pikpak/", headers={"Depth": "1"}, auth=("alice", "wonderland")
            )
            assert listing.status_code == 503 and int(listing.headers["Retry-After"]) > 0
            # The quota, as `rclone about` asks: left out while it cannot be read, and
            # not logged per request.
            about = requests.request(
                "PROPFIND",
                url + "pikpak/",
                headers={"Depth": "0"},
                data=QUOTA,
                auth=("alice", "wonderland"),
            )
            assert about.status_code == 207
    finally:
        # How serve stops is not this test's subject (tests/test_cli.py has it): kill it.
        serve.kill()
        serve.wait(timeout=20)
    log = serve.stderr.read()
    assert log.count("pikdav does not sign in to PikPak again") == 1  # once, not per request
    assert sign_ins(emulator) == 1
    check = run("check", "-c", config)
    assert check.returncode == 1
    assert "FAILED: sign-ins are paused" in check.stdout
    assert "PikPak refused the username or password" in check.stdout
    assert "pikdav does not sign in to PikPak again before" in check.stdout
    assert f"then run `pikdav login -c '{config}'` once" in check.stdout
    assert sign_ins(emulator) == 1  # check honoured the pause


def test_check_fails_fast_on_a_refused_connection(tmp_path, monkeypatch, capsys):
    port = free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}", name=SPACED)
    started = time.monotonic()
    check = run("check", "-c", config)
    took = time.monotonic() - started
    assert check.returncode == 1
    assert f"cannot reach PikPak at 127.0.0.1:{port}: connection refused" in check.stdout
    assert "HTTPConnection" not in check.stdout and "Traceback" not in check.stderr
    assert took < 30, f"check took {took:.1f} s to report a refused connection"
    # The waits between attempts, counted rather than timed (a slow machine's start-up is
    # no part of them): check's policy waits 0.5 s at most, a server's would wait 7.75-15.5 s.
    from pikdav import cli
    from pikdav.pikpak import retry

    waits: list[float] = []
    clock = SimpleNamespace(monotonic=time.monotonic, sleep=lambda s: waits.append(s))
    monkeypatch.setattr(retry, "time", clock)
    assert cli.run_check(cli.build_parser().parse_args(["check", "-c", config])) == 1
    assert "connection refused" in capsys.readouterr().out
    assert sum(waits) <= 1.0, waits


def test_the_documented_optional_password_works_when_the_variable_is_unset(tmp_path, monkeypatch):
    """The README's minimal config and config.example.yaml, with PIKPAK_PASSWORD unset."""
    import re

    from pikdav.config import load_config

    root = Path(__file__).resolve().parent.parent
    monkeypatch.delenv("PIKPAK_PASSWORD", raising=False)
    readme = (root / "README.md").read_text()
    block = re.search(r"\*\*2\. A minimal `config.yaml`:\*\*\n\n```yaml\n(.*?)```", readme, re.S)
    minimal = tmp_path / "config.yaml"
    minimal.write_text(block.group(1).replace("scrypt$16384$8$1$...", hash_password("x")))
    for path in (minimal, root / "config.example.yaml"):
        account = next(iter(load_config(path).accounts.values()))
        assert not account.password, path
