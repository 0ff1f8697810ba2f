"""Names that would rewrite a log line as a person reads it: U+202E turns the rest of the line
right to left, U+2028 breaks it for many log viewers. Every line that carries such a name (the
request line, the upload lines of a direct and a background PUT, a failed upload's retries) has
them escaped, as the request line escapes control characters."""

from __future__ import annotations

import logging
import os
from urllib.parse import quote

import pytest
import requests

from pikdav.logtext import client_text
from tests.support.gateway import start_gateway
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

NAME = "invoice\u202efdp.exe\u2028forged line.txt"  # shown as "invoice" + "exe.pdf" reversed
RAW = ("\u202e", "\u2028")


def raw_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if any(c in r.getMessage() for c in RAW)]


@pytest.mark.parametrize("background", [False, True], ids=["direct", "background"])
def test_log_lines_escape_bidi_overrides_and_line_separators(
    emulator, tmp_path, caplog, background
):
    caplog.set_level(logging.DEBUG)
    if background:  # the first attempt fails: the retry line carries the name too
        control(
            emulator.base_url,
            "faults",
            {"path": "pikpak-emulator", "method": "PUT", "status": 500, "times": 1},
        )
    gw = start_gateway(
        emulator, tmp_path / "state", download="proxy", background_uploads=background
    )
    try:
        data = os.urandom(300_000)
        url = f"{gw.url}/pikpak/{quote(NAME)}"
        assert requests.put(url, data=data, auth=gw.auth, timeout=60).status_code == 201
        if background:
            wait_until(lambda: "done" in caplog.text and "background upload" in caplog.text)
        assert requests.get(url, auth=gw.auth, timeout=60).content == data
    finally:
        gw.stop()

    assert raw_lines(caplog) == []
    escaped = client_text(NAME)
    assert "\\u202e" in escaped and "\\u2028" in escaped
    carrying = [r.getMessage() for r in caplog.records if escaped in r.getMessage()]
    assert any(line.startswith("PUT ") for line in carrying), carrying  # request or PUT line
    if background:
        assert any("background upload of" in line for line in carrying), carrying
