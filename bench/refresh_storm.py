"""Refresh storm: many threads calling the drive while the access token is forced to expire.

For each (threads, expiries) pair: one pikdav session, ``threads`` threads calling the drive
in a loop, and the emulator expiring every access token ``expiries`` times. Prints the
refreshes the emulator saw (must equal the expiries), rejected refreshes and failed calls.

    python bench/refresh_storm.py [--threads 50 200] [--expiries 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.emulator import Emulator
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import FileTokenStore

USER = "storm@example.com"


def storm(threads: int, expiries: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, Emulator(threads=64) as emu:
        emu.world.add_account(USER, "pw")
        session = Session(
            Credentials(USER, "pw"),
            FileTokenStore(Path(tmp) / "t.json"),
            user_api=emu.base_url,
            drive_api=emu.base_url,
            pool_size=threads,
        )
        drive = Drive(session)
        drive.about()
        stop = threading.Event()
        calls, failures = [0], [0]
        lock = threading.Lock()

        def worker() -> None:
            while not stop.is_set():
                try:
                    drive.about()
                    ok = True
                except Exception:
                    ok = False
                with lock:
                    calls[0] += 1
                    failures[0] += not ok

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for _ in range(expiries):
            time.sleep(0.5)
            emu.world.expire_tokens(USER)
        time.sleep(0.5)
        stop.set()
        for t in pool:
            t.join()
        stats = emu.world.stats.snapshot()["accounts"][USER]
        return {
            "threads": threads,
            "expiries": expiries,
            "calls": calls[0],
            "failed": failures[0],
            "refresh": stats["refresh"],
            "rejected": stats["refresh_rejected"],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--expiries", type=int, default=5)
    args = parser.parse_args()
    print("| threads | expiries | drive calls | failed calls | refreshes | rejected |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        r = storm(threads, args.expiries)
        print(
            f"| {r['threads']} | {r['expiries']} | {r['calls']} | {r['failed']} | "
            f"{r['refresh']} | {r['rejected']} |"
        )


if __name__ == "__main__":
    main()
