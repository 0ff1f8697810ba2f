"""A pikdav process that kills itself (SIGKILL) at one step of a token refresh.

    python -m tests.support.crash_worker BASE TOKEN_FILE STEP

STEP is before_request, after_rotation (PikPak rotated, nothing saved), mid_write (the
new token half written to the temporary file) or after_save.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import FileTokenStore, StoredAuth
from pikdav.pikpak.types import Token


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingStore(FileTokenStore):
    def __init__(self, path: str, step: str) -> None:
        super().__init__(path)
        self.step = step

    def save(self, auth: StoredAuth) -> None:
        if self.step == "mid_write":
            fd, _ = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            os.write(fd, b'{"platform": "web", "tok')
            die()
        super().save(auth)
        if self.step == "after_save":
            die()


class CrashingSession(Session):
    step = ""

    def _refresh_request(self, refresh_token: str) -> Token:
        if self.step == "before_request":
            die()
        token = super()._refresh_request(refresh_token)
        if self.step == "after_rotation":
            die()
        return token


def main() -> int:
    base, token_file, step = sys.argv[1:4]
    CrashingSession.step = step
    session = CrashingSession(
        Credentials("alice@example.com", "correct horse"),
        CrashingStore(token_file, step),
        user_api=base,
        drive_api=base,
    )
    Drive(session).about()
    Path(token_file).with_suffix(".survived").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
