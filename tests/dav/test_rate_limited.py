"""PikPak answers every drive call with 429 and ``Retry-After: 30``: the gateway does not sit
out 30 s waits that the client's own timeout ends first (a GET waited 60 s, then got 503). It
gives up at once with 503, the Retry-After PikPak gave, and a reason that says PikPak asks to
wait; and it asks PikPak once, not again and again, meanwhile."""

from __future__ import annotations

import base64

import requests

from tests.support.pikpak_raw import control, drive_calls

USER = "alice@example.com"
CLIENT_TIMEOUT = 20  # seconds: what players and file apps wait for an answer, or less


def test_a_long_retry_after_is_passed_on_to_the_client_at_once(gateway, emulator):
    data = base64.b64encode(b"film").decode()
    control(emulator.base_url, "files", {"username": USER, "path": "Films/a.mkv", "content": data})
    listing = requests.request(
        "PROPFIND", gateway.url + "/pikpak/Films/", auth=gateway.auth, headers={"Depth": "1"}
    )
    assert listing.status_code == 207  # the listing is cached; the GET needs a link
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/", "rate_limit": {"retry_after": 30}},
    )
    before = drive_calls(emulator)

    for _ in range(3):
        answer = requests.get(
            gateway.url + "/pikpak/Films/a.mkv", auth=gateway.auth, timeout=CLIENT_TIMEOUT
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "30"
        assert "PikPak asks" in answer.text and "30 s" in answer.text, answer.text

    assert drive_calls(emulator) - before <= 3  # one call per request: no retry in between
