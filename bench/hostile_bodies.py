"""Memory and answer sizes under hostile XML bodies (issue 8, item 6), on a real
``pikdav serve`` process in front of ``pikdav emulator``.

Four PROPPATCHes, each setting a 50 MiB dead property on its own file, then a Depth 1
PROPFIND of their folder, then a PROPFIND with a 50 MB body. Prints the gateway's RSS before
and after (VmRSS, from /proc), each answer's status, size and time.

    python bench/hostile_bodies.py                      # this checkout
    python bench/hostile_bodies.py --checkout /work/main  # another one's code
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DAV,
    MIB,
    PIKPAK_USER,
    ROOT,
    gateway_config,
    proc_status,
    serve,
    start_emulator,
    stop,
)
from tests.support.pikpak_raw import control


def rss_mib(pid: int) -> float:
    return proc_status(pid)["VmRSS"] / 1024


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
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--value-mib", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pikdav-bench-"))
    emulator = gateway = None
    try:
        emulator, base = start_emulator(tmp)
        content = base64.b64encode(b"x").decode()
        for index in range(4):
            control(
                base,
                "files",
                {"username": PIKPAK_USER, "path": f"Docs/f{index}.txt", "content": content},
            )
        mounts = [{"name": "pikpak", "download": "proxy"}]
        gateway, root = serve(tmp, gateway_config(tmp, base, mounts), args.checkout)
        url = f"{root}/pikpak/Docs/"
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
            stop(proc)


if __name__ == "__main__":
    main()
