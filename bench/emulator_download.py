"""How fast the emulator's CDN serves a large synthetic file (goal: at least 1 GB/s).

Runs ``pikdav emulator`` as a subprocess, adds a synthetic file, gets its download link
through the drive API and downloads it with curl (and, side by side, with Python's
http.client) into nothing. Prints one line per client.

    python bench/emulator_download.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.pikpak_raw import RawSession, control


def python_download(url: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("GET", f"{parts.path}?{parts.query}")
    resp = conn.getresponse()
    total = 0
    buf = bytearray(1 << 20)
    while n := resp.readinto(buf):
        total += n
    conn.close()
    return total


def curl_download(url: str) -> int:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(float(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib << 20
    proc = subprocess.Popen(
        [sys.executable, "-m", "pikdav.cli", "emulator", "--port", "0", "--account", "bench:pw"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = proc.stdout.readline().strip()
        made = control(
            base, "files", {"username": "bench", "path": "big.bin", "size": size, "seed": 1}
        )
        session = RawSession(base, "bench", "pw")
        session.signin()
        session.captcha(f"GET:/drive/v1/files/{made['id']}")
        url = session.get(f"/drive/v1/files/{made['id']}").json()["links"][
            "application/octet-stream"
        ]["url"]
        clients = {"python http.client": python_download}
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
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
