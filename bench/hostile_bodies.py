"""Memory and answer sizes under hostile XML bodies (issue 8, item 6), on a real
``pikdav serve`` process in front of ``pikdav emulator``.

Four PROPPATCHes, each setting a 50 MiB dead property on its own file, then a Depth 1
PROPFIND of their folder, then a PROPFIND with a 50 MB body. Prints the gateway's RSS before
and after (VmRSS, from /proc), each answer's status, size and time.

    python bench/hostile_bodies.py                      # this checkout
    python bench/hostile_bodies.py --checkout /work/main  # another one (its .venv)
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.dav.auth import hash_password
from tests.support.pikpak_raw import control

MIB = 1 << 20
USER, PASSWORD = "bench@example.com", "pw"
DAV = ("alice", "wonderland")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def timed(method: str, url: str, **kw) -> tuple[str, int, float]:
    started = time.perf_counter()
    try:
        answer = requests.request(method, url, auth=DAV, timeout=300, **kw)
        outcome, size = str(answer.status_code), len(answer.content)
    except requests.ConnectionError as exc:  # refused early, the rest of the body unsent
        outcome, size = f"connection closed ({type(exc).__name__})", 0
    return outcome, size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--value-mib", type=int, default=50)
    args = parser.parse_args()
    python = args.checkout / ".venv" / "bin" / "python"
    tmp = Path(tempfile.mkdtemp(prefix="pikdav-bench-"))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "pikdav.cli", "emulator", "--port", "0", "--account",
         f"{USER}:{PASSWORD}"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    gateway = None
    try:
        base = emulator.stdout.readline().strip()
        content = base64.b64encode(b"x").decode()
        for index in range(4):
            control(
                base, "files", {"username": USER, "path": f"Docs/f{index}.txt", "content": content}
            )
        config = {
            "server": {"host": "127.0.0.1", "port": 0},
            "state_dir": str(tmp / "state"),
            "accounts": {
                "main": {
                    "username": USER,
                    "password": PASSWORD,
                    "user_api": base,
                    "drive_api": base,
                }
            },
            "mounts": [{"name": "pikpak", "download": "proxy"}],
            "users": {DAV[0]: {"password_hash": hash_password(DAV[1])}},
        }
        (tmp / "config.yaml").write_text(yaml.safe_dump(config))
        gateway = subprocess.Popen(
            [str(python), "-m", "pikdav.cli", "serve", "-c", str(tmp / "config.yaml")],
            cwd=args.checkout,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        url = gateway.stdout.readline().strip() + "pikpak/Docs/"
        timed("PROPFIND", url, headers={"Depth": "1"})  # signed in, listing cached
        before = rss_mib(gateway.pid)
        print(f"checkout {args.checkout}; gateway RSS before: {before:.0f} MiB")
        value = b"v" * (args.value_mib * MIB)
        for index in range(4):
            body = (
                b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x">'
                b"<D:set><D:prop><Z:big>" + value + b"</Z:big></D:prop></D:set></D:propertyupdate>"
            )
            outcome, size, seconds = timed("PROPPATCH", f"{url}f{index}.txt", data=body)
            print(f"PROPPATCH f{index}.txt ({len(body) / MIB:.0f} MiB): {outcome}, {seconds:.1f} s")
        del value, body
        time.sleep(1)
        after = rss_mib(gateway.pid)
        print(f"gateway RSS after: {after:.0f} MiB (grew {after - before:+.0f} MiB)")
        outcome, size, seconds = timed("PROPFIND", url, headers={"Depth": "1"})
        print(f"PROPFIND Depth 1: {outcome}, {size / 1e6:.3f} MB in {seconds:.2f} s")
        junk = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
        junk += b"<D:displayname/>" * (50_000_000 // 16) + b"</D:prop></D:propfind>"
        outcome, size, seconds = timed("PROPFIND", url, headers={"Depth": "1"}, data=junk)
        print(f"PROPFIND with a {len(junk) / 1e6:.0f} MB body: {outcome} in {seconds:.2f} s")
        print(f"gateway RSS at the end: {rss_mib(gateway.pid):.0f} MiB")
    finally:
        for proc in (gateway, emulator):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
