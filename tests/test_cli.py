"""The ``pikdav`` command: hash-password, check, login -c and serve, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import requests
import yaml

from pikdav.dav.auth import hash_password, verify_password

PIKDAV = [sys.executable, "-m", "pikdav.cli"]


def run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIKDAV, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=kw.pop("stdin", subprocess.DEVNULL),
        **kw,
    )


def write_config(tmp_path, emulator, password: str | None = "correct horse") -> str:
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp_path / "state"),
        "accounts": {
            "main": {
                "username": "alice@example.com",
                "password": password,
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
            }
        },
        "mounts": [{"name": "pikpak", "download": "proxy"}],
        "users": {"alice": {"password_hash": hash_password("wonderland")}},
    }
    if password is None:
        del config["accounts"]["main"]["password"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("pikdav ")


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
    assert "the configuration is valid" in proc.stdout
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
    assert proc.returncode == 1 and "cannot listen" in proc.stderr
    assert time.time() - started < 60
