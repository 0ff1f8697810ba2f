"""How fast the emulator's CDN serves a large synthetic file (goal: at least 1 GB/s).

Runs ``pikdav emulator`` as a subprocess, adds a synthetic file, gets its download link
through the drive API and downloads it with curl (and, side by side, with Python's
http.client) into nothing. Prints one line per client.

    python bench/emulator_download.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_file, cdn_link, curl, read_to_end, start_emulator, stop


def curl_download(url: str) -> int:
    return curl(url)[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_emulator(Path(tmp))
        try:
            url = cdn_link(base, add_file(base, "big.bin", size, 1))
            clients = {"python http.client": read_to_end}
            if shutil.which("curl"):
                clients["curl"] = curl_download
            for name, fetch in clients.items():
                best = 0.0
                for _ in range(args.runs):
                    start = time.perf_counter()
                    got = fetch(url)
                    elapsed = time.perf_counter() - start
                    assert got == size, (got, size)
                    best = max(best, size / elapsed / 1e9)
                print(f"{name:20s} {args.size_mib} MiB  best of {args.runs}: {best:.2f} GB/s")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
