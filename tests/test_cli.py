"""The ``pikdav`` command: hash-password, check, login -c and serve, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import requests

from pikdav.dav.auth import verify_password
from tests.support.command import PIKDAV, write_config


def run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIKDAV, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=kw.pop("stdin", subprocess.DEVNULL),
        **kw,
    )


def test_hash_password_without_a_terminal_refuses_and_points_to_stdin():
    proc = subprocess.run(
        [*PIKDAV, "hash-password"], input="a\nb\n", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""  # no hash of "a" behind the user's back
    assert "no terminal to ask for the password twice" in proc.stderr
    assert "pikdav hash-password --stdin" in proc.stderr


def test_version_names_the_release_and_the_checkouts_commit():
    from pathlib import Path

    from pikdav import __version__
    from pikdav.version import git_commit

    commit = git_commit(Path(__file__).resolve().parent.parent)
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"pikdav {__version__}" + (f" (commit {commit})" if commit else "") + "\n"


def test_hash_password_from_stdin():
    proc = subprocess.run(
        [*PIKDAV, "hash-password", "--stdin"],
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert verify_password("s3cret", proc.stdout.strip())
    assert "s3cret" not in proc.stdout


def test_check_validates_logs_in_and_shows_quota(emulator, tmp_path):
    proc = run("check", "-c", write_config(tmp_path, emulator))
    assert proc.returncode == 0, proc.stderr
    assert "the configuration is valid (1 mount, 1 user)." in proc.stdout
    assert "quota: 0.00 GiB used of 10240.0 GiB" in proc.stdout
    assert "token valid until" in proc.stdout
    token = json.loads((tmp_path / "state" / "tokens" / "main.json").read_text())["token"]
    for secret in (token["access_token"], token["refresh_token"], "correct horse"):
        assert secret not in proc.stdout + proc.stderr


def test_check_names_the_key_of_a_bad_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "accounts:\n  main:\n    username: a\nmounts:\n  - name: pikpak\n"
        "    download: sometimes\nusers: {}\n"
    )
    proc = run("check", "-c", str(path))
    assert proc.returncode == 2
    assert "mounts[0].download" in proc.stderr and "Traceback" not in proc.stderr


def test_login_with_config_then_serve(emulator, tmp_path):
    config = write_config(tmp_path, emulator, password=None)
    login = run("login", "-c", config, "--password", "correct horse")
    assert login.returncode == 0, login.stderr
    assert str(tmp_path / "state" / "tokens" / "main.json") in login.stdout
    serve = subprocess.Popen(
        [*PIKDAV, "serve", "-c", config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = serve.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        listing = requests.request(
            "PROPFIND",
            url + "pikpak/",
            headers={"Depth": "1"},
            auth=("alice", "wonderland"),
            timeout=30,
        )
        assert listing.status_code == 207
        assert requests.get(url + "healthz", timeout=10).text == "ok\n"
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
    log = serve.stderr.read()
    assert serve.returncode == 0
    assert "PROPFIND /pikpak/ 207" in log  # one line per request
    assert log.rstrip().endswith("pikdav: stopped")
    assert emulator.world.stats.snapshot()["total"]["signin"] == 1  # the stored login served


def test_serve_reports_a_busy_port(emulator, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, emulator)
        text = open(config).read().replace("port: 0", f"port: {port}")
        open(config, "w").write(text)
        started = time.time()
        proc = run("serve", "-c", config)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in proc.stderr
    # what to do, as the demo says it
    assert f"choose another server.port in {config} (0 picks a free one)" in proc.stderr
    assert "None" not in proc.stderr and "Traceback" not in proc.stderr
    assert time.time() - started < 60


def test_demo_with_a_busy_port_it_was_given_fails_and_says_why():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run("demo", "--port", str(port))
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in proc.stderr
    assert "choose another --port" in proc.stderr
    assert "Traceback" not in proc.stderr and "http://" not in proc.stdout


def test_help_describes_pikdav_and_its_options():
    top = run("--help")
    assert top.returncode == 0
    assert "serves a PikPak cloud drive over WebDAV" in top.stdout
    assert "``" not in top.stdout
    for command in ("demo", "emulator"):
        text = run(command, "--help").stdout
        assert "--host HOST address to listen on (default: 127.0.0.1)" in " ".join(text.split())
    demo = " ".join(run("demo", "--help").stdout.split())
    assert "default: 8080, or a free one if 8080 is busy" in demo


def test_json_logs_at_the_chosen_level(emulator, tmp_path):
    from tests.support.command import start

    config = write_config(tmp_path, emulator)
    for level, upstream in (("debug", True), ("warning", False)):
        log_path = tmp_path / f"{level}.log"
        running = start(
            "--log-format", "json", "--log-level", level, "serve", "-c", config, log_path=log_path
        )
        try:
            resp = requests.request(
                "PROPFIND", running.url + "pikpak/", headers={"Depth": "1"},
                auth=("alice", "wonderland"), timeout=30,
            )  # fmt: skip
            assert resp.status_code == 207
            bad = requests.get(running.url + "pikpak/", auth=("alice\x1b[31m", "x"), timeout=30)
            assert bad.status_code == 401
        finally:
            assert running.stop()[0] == 0
        lines = [json.loads(line) for line in log_path.read_text().splitlines()]
        assert lines and all(set(e) == {"time", "level", "logger", "message"} for e in lines)
        assert all(e["time"].endswith("Z") for e in lines)
        messages = "\n".join(e["message"] for e in lines)
        assert "login failed for user 'alice\\x1b[31m'" in messages  # escaped, as in text
        assert "\x1b" not in log_path.read_text() and "correct horse" not in messages
        said_upstream = any(e["logger"] == "pikdav.pikpak.session" and e["level"] == "debug"
                            for e in lines)  # fmt: skip
        assert said_upstream is upstream
        assert ("PROPFIND /pikpak/ 207" in messages) is (level == "debug")
        assert {e["level"] for e in lines} <= (
            {"debug", "info", "warning"} if upstream else {"warning", "error"}
        )


def test_a_bad_log_level_is_refused():
    proc = run("--log-level", "loud", "check", "-c", "x.yaml")
    assert proc.returncode == 2 and "invalid choice: 'loud'" in proc.stderr
