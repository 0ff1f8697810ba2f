"""A pikdav process for the multi-process token tests (run with ``python -m``).

    python -m tests.support.refresh_worker BASE TOKEN_FILE ROUNDS THREADS SIGNAL_DIR MODE

For each round it waits for ``SIGNAL_DIR/round-N``, runs THREADS concurrent drive calls and
writes ``SIGNAL_DIR/done-N-PID`` holding the number of failed calls. MODE ``safe`` uses
pikdav's session; ``naive`` replaces its refresh with what AList did: refresh with the
refresh token in memory, no cross-process lock, no re-read of the store.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import open_store
from pikdav.pikpak.types import Token


class NaiveSession(Session):
    def refresh(self, rejected: str | None) -> Token:
        with self._refresh_lock:
            current = self.auth.token
            if current is not None and current.access_token != rejected and current.fresh():
                return current
            new = self._refresh_request(current.refresh_token)
            self._auth = self.auth.__class__(
                self.auth.platform, self.auth.device_id, self.auth.username, new
            )
            self.store.save(self._auth)
            return new


def main() -> int:
    base, token_file, rounds, threads, signal_dir, mode = sys.argv[1:7]
    signals = Path(signal_dir)
    cls = NaiveSession if mode == "naive" else Session
    # No password: a refresh that PikPak refuses cannot be papered over by a new sign-in.
    # TOKEN_FILE may also be a redis:// URL: several hosts sharing one Redis store.
    store = open_store(token_file, Path(token_file), "shared")
    session = cls(
        Credentials("alice@example.com"),
        store,
        user_api=base,
        drive_api=base,
        pool_size=int(threads),
    )
    drive = Drive(session)
    for rnd in range(1, int(rounds) + 1):
        while not (signals / f"round-{rnd}").exists():
            time.sleep(0.01)
        failures: list[str] = []

        def one(failures: list[str] = failures) -> None:
            try:
                drive.about()
            except Exception as exc:
                failures.append(repr(exc))

        workers = [threading.Thread(target=one) for _ in range(int(threads))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        (signals / f"done-{rnd}-{os.getpid()}").write_text(
            f"{len(failures)}\n" + "\n".join(failures[:3])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
