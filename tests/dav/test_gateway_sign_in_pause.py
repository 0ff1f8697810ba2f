"""What DAV clients see while the gateway cannot sign in: 503, Retry-After and the reason.

The gateway here is built from a config file, as `pikdav serve -c` builds it, so that the
hint it gives (`pikdav login -c <that file>`) can be followed literally by another process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from pikdav.assembly import build_app, build_mounts, make_server
from pikdav.config import load_config
from tests.support.command import write_config
from tests.support.pikpak_raw import control, sign_ins
from tests.support.web import propfind

ROOT = Path(__file__).resolve().parents[2]
USER, CONFIGURED = "alice@example.com", "correct horse"
NEW_PASSWORD = "changed in the PikPak app"
DAV = ("alice", "wonderland")


@contextmanager
def serving(path: str) -> Iterator[str]:
    config = load_config(path)
    server = make_server(config, build_app(config, build_mounts(config)))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        host, port = server.bind_addr[:2]
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)


def assert_paused_answer(resp: requests.Response, config: str) -> None:
    assert resp.status_code == 503, resp.text
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "PikPak refused the configured username or password" in resp.text
    assert f"pikdav login -c {config}" in resp.text
    assert CONFIGURED not in resp.text and "os." not in resp.text


def test_fifty_requests_with_a_wrong_password_cost_one_sign_in_and_a_login_recovers(
    emulator, tmp_path
):
    config = write_config(tmp_path, emulator, threads=64)
    emulator.world.accounts[USER].password = NEW_PASSWORD  # the stored password is wrong now
    with serving(config) as url:
        start = threading.Barrier(50)
        answers: list[requests.Response] = []

        def client() -> None:
            start.wait()
            answers.append(propfind(url, "/pikpak/", auth=DAV))

        threads = [threading.Thread(target=client) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 50
        for resp in answers:
            assert_paused_answer(resp, config)
        for _ in range(50):
            assert_paused_answer(propfind(url, "/pikpak/", auth=DAV), config)
        assert sign_ins(emulator) <= 2
        gateway_sign_ins = sign_ins(emulator)

        # What the 503 says to do, done by another process: the gateway recovers at once.
        login = subprocess.run(
            [sys.executable, "-m", "pikdav.cli", "login", "-c", str(config), "--password-stdin"],
            input=NEW_PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert login.returncode == 0, login.stderr
        assert "pause is over" in login.stdout
        for _ in range(5):
            assert propfind(url, "/pikpak/", auth=DAV).status_code == 207
        assert sign_ins(emulator) == gateway_sign_ins + 1  # the login's, nothing more


def test_a_human_check_at_sign_in_is_a_503_that_says_what_to_do(emulator, tmp_path, caplog):
    config = write_config(tmp_path, emulator, threads=64)
    control(emulator.base_url, "faults", {"path": "^/v1/shield/captcha/init$", "captcha": {}})
    with serving(config) as url:
        answers = [propfind(url, "/pikpak/", auth=DAV) for _ in range(20)]
    for resp in answers:
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1
        assert "human check" in resp.text and "did not answer properly" not in resp.text
        assert f"pikdav login -c {config} --captcha-token" in resp.text
        assert "captcha_token=" not in resp.text and "__emulator__" not in resp.text
    said = [r for r in caplog.records if "human check" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
    assert not [r for r in caplog.records if "captcha_token=" in r.getMessage()]
    assert emulator.world.stats.snapshot()["total"]["captcha_init"] == 1


@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_a_file_without_a_link_yet_gets_a_quick_503(emulator, tmp_path, download):
    config = write_config(tmp_path, emulator, mount={"download": download}, threads=64)
    control(emulator.base_url, "config", {"link_delay": 120})
    with serving(config) as url:
        put = requests.put(url + "/pikpak/fresh.bin", data=b"new" * 1000, auth=DAV, timeout=30)
        assert put.status_code == 201, put.text
        for _ in range(2):
            started = time.monotonic()
            resp = requests.get(
                url + "/pikpak/fresh.bin", auth=DAV, timeout=60, allow_redirects=False
            )
            # A few seconds of asking, then "try again later" (it was a silent minute).
            assert time.monotonic() - started < 10
            assert resp.status_code == 503
            assert int(resp.headers["Retry-After"]) >= 1
            assert "download link" in resp.text
        with emulator.world.lock:  # PikPak has made the link meanwhile
            for node in emulator.world.accounts[USER].nodes.values():
                node.link_ready_at = 0.0
        ready = requests.get(url + "/pikpak/fresh.bin", auth=DAV, timeout=20)
        assert ready.status_code == 200 and ready.content == b"new" * 1000


def test_while_sign_ins_are_paused_no_request_sends_pikpak_the_refused_token(
    make_gateway, emulator, caplog
):
    """PikPak revokes the access token before its time and refuses to renew the login: the
    first request learns it (one drive call, one "renewing" line, the pause logged once);
    the other 19 get the pause's 503 with no call at all and no line of their own."""
    for i in range(20):
        control(emulator.base_url, "files", {"username": USER, "path": f"Docs/{i}.bin", "size": 9})
    gw = make_gateway(download="proxy")
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Docs/", auth=gw.auth, headers={"Depth": "1"}, timeout=30
    )
    assert listing.status_code == 207  # signed in; the listing is cached
    control(
        emulator.base_url, "faults", {"path": "^/v1/auth/(token|signin)$", "too_frequent": True}
    )
    control(emulator.base_url, "expire-tokens", {"username": USER})
    control(emulator.base_url, "stats", method="DELETE")
    caplog.clear()

    for i in range(20):  # each needs a download link: a drive call, were it signed in
        answer = requests.get(f"{gw.url}/pikpak/Docs/{i}.bin", auth=gw.auth, timeout=30)
        assert answer.status_code == 503, answer.text
        assert "too frequent" in answer.text.lower() or "paused" in answer.text.lower()

    drive_calls = sum(
        areas.get("drive", 0)
        for areas in control(emulator.base_url, "stats", method="GET")["calls_by_ip"].values()
    )
    assert drive_calls <= 1
    renewing = [r for r in caplog.records if "renewing the login" in r.getMessage()]
    paused = [r for r in caplog.records if "sign in to PikPak again before" in r.getMessage()]
    assert len(renewing) <= 1 and len(paused) == 1, [r.getMessage() for r in caplog.records]
