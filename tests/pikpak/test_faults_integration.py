"""The designed reactions, against the emulator's injected faults over real HTTP."""

from __future__ import annotations

import pytest
import requests

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import CaptchaError, HumanCheckRequired, LoginPaused
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control

USER, PASSWORD = "alice@example.com", "correct horse"


def drive_for(emulator, **creds) -> Drive:
    credentials = Credentials(USER, PASSWORD, **creds)
    return Drive(
        Session(
            credentials, MemoryTokenStore(), user_api=emulator.base_url, drive_api=emulator.base_url
        )
    )


def fired(emulator) -> list[int]:
    return [r["fired"] for r in control(emulator.base_url, "faults", method="GET")["rules"]]


def test_rate_limit_is_waited_out(emulator):
    drive = drive_for(emulator)
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/v1/about$", "rate_limit": {"retry_after": 1}, "times": 2},
    )
    assert drive.about().limit > 0
    assert fired(emulator) == [2]


def test_5xx_burst_and_dropped_connection_on_listing(emulator):
    control(emulator.base_url, "files", {"username": USER, "path": "a/b.bin", "size": 5})
    drive = drive_for(emulator)
    control(
        emulator.base_url,
        "faults",
        {
            "rules": [
                {"path": "^/drive/v1/files$", "method": "GET", "status": 502, "times": 3},
                {"path": "^/drive/v1/files$", "method": "GET", "drop_after": 10, "times": 1},
            ]
        },
    )
    assert [f.name for f in drive.list_folder("")] == ["a"]
    assert fired(emulator) == [3, 1]


def test_captcha_expiry_on_a_drive_call_is_renewed(emulator):
    drive = drive_for(emulator)
    drive.about()
    control(
        emulator.base_url,
        "faults",
        {
            "path": "^/drive/v1/files$",
            "status": 400,
            "error": {"error": "captcha_invalid", "error_code": 9},
            "times": 1,
        },
    )
    assert drive.list_folder("") == []
    stats = emulator.world.stats.snapshot()["total"]
    assert stats["captcha_init"] == 3  # sign-in, first drive token, the renewal


def test_human_check_then_a_solved_token_signs_in(emulator, caplog):
    control(
        emulator.base_url,
        "faults",
        {"path": "^/v1/shield/captcha/init$", "captcha": {}, "times": 2},
    )
    with pytest.raises(LoginPaused) as caught:
        drive_for(emulator).about()
    assert caught.value.kind == "human_check" and "__emulator__" not in str(caught.value)
    # The page carries a captcha token: never in the log. The person gets it from an
    # explicit login (what `pikdav login` does and prints).
    assert not [r for r in caplog.records if "captcha_token=" in r.getMessage()]
    with pytest.raises(HumanCheckRequired) as asked:
        drive_for(emulator).session.login()
    url = asked.value.url
    assert requests.get(url).status_code == 200  # the person solves the puzzle
    solved = url.split("captcha_token=")[1].split("&")[0]
    assert drive_for(emulator, captcha_token=solved).about().limit > 0


@pytest.mark.parametrize("refusals", [1, 2])
def test_a_refused_sign_in_captcha_is_renewed_once(emulator, refusals):
    """Like a drive call's: a new captcha token and one more sign-in, then an error."""
    control(
        emulator.base_url,
        "faults",
        {
            "path": "^/v1/auth/signin$",
            "status": 400,
            "error": {
                "error": "captcha_invalid",
                "error_code": 4002,
                "error_description": "Code(4002) - captcha_token expired",
            },
            "times": refusals,
        },
    )
    drive = drive_for(emulator)
    if refusals == 1:
        assert drive.about().limit > 0
    else:
        with pytest.raises(CaptchaError, match="refused the captcha token"):
            drive.about()
    assert fired(emulator) == [refusals]
    stats = emulator.world.stats.snapshot()["total"]
    assert stats.get("signin", 0) == (1 if refusals == 1 else 0)
    assert stats["captcha_init"] == 2 + (1 if refusals == 1 else 0)  # two for sign-in
