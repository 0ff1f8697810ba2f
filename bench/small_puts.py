"""Many small PUTs through the gateway, as ``rclone sync`` of a folder of documents sends
them: this checkout side by side with another one (``--baseline``), on one emulator.

One ``pikdav emulator`` process; one ``pikdav serve`` process per leg, each with its own
state. Fresh random content for every file (else PikPak would recognise it and no byte would
reach the object store). One untimed warm-up PUT per leg first (the sign-in). Timed: PUTs one
after the other, then the same count 4 at a time (rclone's default ``--transfers``).

    python bench/small_puts.py [--files 200] [--kib 20] [--baseline OTHER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DAV_PASSWORD, DAV_USER, serve, stop
from pikdav.dav.auth import hash_password

USER, PASSWORD = "alice@example.com", "correct horse"
CONCURRENCY = 4


def config_for(state: Path, base: str) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(state),
        "accounts": {
            "main": {"username": USER, "password": PASSWORD, "user_api": base, "drive_api": base}
        },
        "mounts": [{"name": "pikpak", "download": "proxy"}],
        "users": {DAV_USER: {"password_hash": hash_password(DAV_PASSWORD)}},
    }


def timed_puts(url: str, folder: str, count: int, size: int, workers: int) -> float:
    """Seconds for ``count`` PUTs of ``size`` fresh random bytes into ``folder``."""
    http = requests.Session()
    http.auth = (DAV_USER, DAV_PASSWORD)
    assert http.request("MKCOL", f"{url}/pikpak/{folder}", timeout=60).status_code == 201
    bodies = [os.urandom(size) for _ in range(count)]

    def put(index: int) -> None:
        got = http.put(f"{url}/pikpak/{folder}/f{index:04d}.bin", data=bodies[index], timeout=60)
        assert got.status_code == 201, got.text[:300]

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, range(count)))
    return time.perf_counter() - started


def leg(tmp: Path, base: str, name: str, source: Path | None, count: int, size: int) -> dict:
    proc, url = serve(tmp / name, config_for(tmp / name / "state", base), source)
    try:
        warm = requests.put(
            f"{url}/pikpak/warm-{name}.bin", data=b"w", auth=(DAV_USER, DAV_PASSWORD), timeout=60
        )
        assert warm.status_code == 201, warm.text[:300]
        return {
            "one at a time": timed_puts(url, f"{name}-seq", count, size, 1),
            f"{CONCURRENCY} at a time": timed_puts(url, f"{name}-par", count, size, CONCURRENCY),
        }
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--kib", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="another checkout of pikdav to compare")
    args = parser.parse_args()
    size = args.kib << 10
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        emu = subprocess.Popen(
            [sys.executable, "-m", "pikdav.cli", "emulator", "--account", f"{USER}:{PASSWORD}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            base = emu.stdout.readline().strip()
            rows = {"this checkout": leg(tmp, base, "this", None, args.files, size)}
            if args.baseline:
                source = args.baseline.resolve()
                rows["baseline"] = leg(tmp, base, "baseline", source, args.files, size)
        finally:
            stop(emu)
    print(f"# bench/small_puts.py — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
    print(f"{args.files} PUTs of {args.kib} KiB each, fresh content; seconds for all of them")
    kinds = list(rows["this checkout"])
    print("| leg | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.2f} s" for k in kinds) + " |")
    if "baseline" in rows:
        ratios = [rows["baseline"][k] / rows["this checkout"][k] for k in kinds]
        print("| baseline / this checkout | " + " | ".join(f"**{r:.1f}×**" for r in ratios) + " |")


if __name__ == "__main__":
    main()
