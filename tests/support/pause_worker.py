"""One pikdav process making one drive call, for the tests of paused sign-ins.

    python -m tests.support.pause_worker BASE STORE PASSWORD

STORE is a token file or a redis:// URL. Prints one JSON line: ``{"ok": true}``, or what
stopped the call (``{"paused": kind, "retry_after": s}`` or ``{"error": text}``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import LoginPaused, PikPakError
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import open_store


def main() -> int:
    base, spec, password = sys.argv[1:4]
    session = Session(
        Credentials("alice@example.com", password),
        open_store(spec, Path(spec), "shared"),
        user_api=base,
        drive_api=base,
        name="worker",
    )
    try:
        Drive(session).about()
        answer: dict = {"ok": True}
    except LoginPaused as exc:
        answer = {"paused": exc.kind, "retry_after": exc.retry_after}
    except PikPakError as exc:
        answer = {"error": str(exc)}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
