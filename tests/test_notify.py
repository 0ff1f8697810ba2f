"""Notifications: a local webhook receiver gets the JSON of each event exactly once — a human
check, a login lost with no password, a sign-in pause and its end, a background upload that
failed for good."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.gateway import PIKPAK_USER
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until
from tests.support.web import propfind


class Receiver:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.events.append(
                    {"content_type": self.headers["Content-Type"], **json.loads(body)}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, event: str) -> list[dict]:
        return [e for e in self.events if e["event"] == event]

    def wait_for(self, event: str, count: int = 1) -> dict:
        """The first ``event``, once ``count`` of them have arrived. That one was told only
        once is shown by a later event: the webhook sends in order."""
        wait_until(lambda: len(self.named(event)) >= count, f"{count} {event}", 15)
        return self.named(event)[0]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def propfind_statuses(gw, times: int = 1) -> list[int]:
    return [propfind(gw, "/pikpak/", timeout=30).status_code for _ in range(times)]


def session_of(gw):
    return gw.mounts[0].source.drive.session


def test_a_human_check_then_the_recovery_are_told_once_each(
    emulator, make_gateway, receiver, caplog
):
    control(
        emulator.base_url,
        "faults",
        {"path": "^/v1/shield/captcha/init$", "captcha": {}, "account": PIKPAK_USER, "times": 1},
    )
    gw = make_gateway(notify={"webhook": receiver.url})
    assert propfind_statuses(gw, 20) == [503] * 20
    event = receiver.wait_for("human_check")
    assert event["account"] == "main" and "human check" in event["message"]
    assert event["content_type"] == "application/json" and event["time"].endswith("Z")
    assert "captcha_token" not in json.dumps(event) and "correct horse" not in json.dumps(event)
    assert [e["event"] for e in receiver.events] == ["human_check"]

    session_of(gw).login()  # what the status page's form does, once the puzzle is solved
    assert propfind_statuses(gw, 3) == [207] * 3
    resumed = receiver.wait_for("sign_in_resumed")
    assert resumed["account"] == "main"
    assert [e["event"] for e in receiver.events] == ["human_check", "sign_in_resumed"]
    assert "s3cret" not in caplog.text and "/hook" not in caplog.text


def test_a_dead_refresh_token_without_a_password_is_told_once(emulator, make_gateway, receiver):
    gw = make_gateway(
        notify={"webhook": receiver.url},
        account_options={"username": None, "password": None, "refresh_token": "os.dead"},
    )
    assert propfind_statuses(gw, 10) == [503] * 10
    event = receiver.wait_for("login_lost")
    assert "no password" in event["message"] and "os.dead" not in json.dumps(event)
    # A later event: a login with a password, as `pikdav login` makes it.
    session = session_of(gw)
    session.credentials = replace(
        session.credentials, username=PIKPAK_USER, password="correct horse", refresh_token=None
    )
    session.login()
    receiver.wait_for("sign_in_resumed")
    assert [e["event"] for e in receiver.events] == ["login_lost", "sign_in_resumed"]


def test_a_refused_password_pauses_and_a_new_login_resumes(emulator, make_gateway, receiver):
    emulator.world.accounts[PIKPAK_USER].password = "changed in the app"
    gw = make_gateway(notify={"webhook": receiver.url})
    assert propfind_statuses(gw, 10) == [503] * 10
    event = receiver.wait_for("sign_in_paused")
    assert "username or password" in event["message"] and "changed" not in event["message"]
    emulator.world.accounts[PIKPAK_USER].password = "correct horse"
    session_of(gw).login()
    receiver.wait_for("sign_in_resumed")
    assert [e["event"] for e in receiver.events] == ["sign_in_paused", "sign_in_resumed"]


def test_a_background_upload_that_fails_for_good_is_told_once(emulator, make_gateway, receiver):
    gw = make_gateway(notify={"webhook": receiver.url}, background_uploads=True)
    assert propfind_statuses(gw) == [207]  # signed in
    control(
        emulator.base_url,
        "faults",
        {
            "path": "^/drive/v1/files$",
            "method": "POST",
            "status": 400,
            "error": {
                "error": "file_space_not_enough",
                "error_code": 8,
                "error_description": "Storage space is not enough",
            },
        },
    )
    resp = requests.put(gw.url + "/pikpak/report.pdf", data=b"%PDF" * 1000, auth=gw.auth)
    assert resp.status_code == 201  # answered once on local disk
    event = receiver.wait_for("upload_failed")
    assert event["mount"] == "pikpak" and event["file"] == "report.pdf"
    assert event["attempts"] == 1 and "full" in event["message"]
    # A later upload that fails too: its event comes after any repeat of the first.
    resp = requests.put(gw.url + "/pikpak/later.pdf", data=b"%PDF" * 999, auth=gw.auth)
    assert resp.status_code == 201
    receiver.wait_for("upload_failed", count=2)
    assert [(e["event"], e["file"]) for e in receiver.events] == [
        ("upload_failed", "report.pdf"),
        ("upload_failed", "later.pdf"),
    ]


def test_a_webhook_that_fails_is_tried_three_times_then_given_up(receiver, caplog):
    from pikdav.notify import Webhook

    receiver.status = 503
    hook = Webhook(receiver.url, backoff=0.01)
    hook.send("sign_in_paused", account="main", message="m")
    hook.close()
    assert len(receiver.events) == 3
    assert "notification sign_in_paused could not be sent to the webhook (HTTP 503)" in caplog.text
    assert "s3cret" not in caplog.text
