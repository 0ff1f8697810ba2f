"""``pikdav emulator``: the command prints its base URL first and serves accounts."""

from __future__ import annotations

import subprocess
import sys

from tests.support.pikpak_raw import RawSession


def test_cli_prints_the_base_url_first(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pikdav.cli",
            "emulator",
            "--port",
            "0",
            "--account",
            "carol:pw",
            "--token-ttl",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        session = RawSession(base, "carol", "pw")
        token = session.signin().json()
        assert token["expires_in"] == 60
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
