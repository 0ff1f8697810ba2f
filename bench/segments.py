"""Proxied streams by parallel segments against one connection, with PikPak's CDN limits.

One ``pikdav emulator`` process, one ``pikdav serve`` process with the same account mounted
twice: ``one`` (``stream_connections: 1``, a single upstream connection, as before) and
``multi`` (the default ``stream_connections``), both ``download: proxy``. curl and ffprobe
are the clients. Side by side in one run:

1. unthrottled CDN: a 1 GiB GET — the CDN link directly, through ``one``, through ``multi``
   (best of ``--runs``);
2. the CDN set as PikPak's (``--rate`` MB/s per connection, 8 connections per link, 20 per
   account, 30 ms before the first byte):
   a. a 256 MiB GET: the link directly with one connection (what a redirected player gets),
      through ``one``, through ``multi``;
   b. seek: time to first byte of a 64 KiB Range at a random offset, median of 20: the link
      directly, and through ``multi``;
   c. four concurrent streams of different files through ``multi``: aggregate throughput,
      503s counted at the emulator, peak connections of the account;
   d. gateway RSS growth with 8 concurrent streams through ``multi`` (VmHWM minus VmRSS);
   e. an ffprobe of an MKV through ``multi``, twice: the bytes the CDN sent each time.

    python bench/segments.py [--size-mib 256] [--rate 4] [--runs 2]
    python bench/segments.py --smoke    # seconds: small files, checks that it all runs
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MIB,
    PIKPAK_USER,
    add_file,
    at_once,
    cdn_link,
    curl,
    gateway_config,
    heading,
    proc_status,
    serve,
    start_emulator,
    stop,
)
from tests.support.command import basic
from tests.support.pikpak_raw import control, pikpak_cdn


def start_gateway(tmp: Path, emulator: str) -> tuple[subprocess.Popen, str]:
    mounts = [
        {"name": "one", "account": "main", "download": "proxy", "stream_connections": 1},
        {"name": "multi", "account": "main", "download": "proxy"},
    ]
    return serve(tmp, gateway_config(tmp, emulator, mounts))


def stats(base: str) -> dict:
    return control(base, "stats", method="GET")["total"]


def throughput(url: str, size: int, auth: bool) -> float:
    _, total, got, code = curl(url, auth=auth)
    assert (got, code) == (size, 200), (url.rsplit("/", 1)[-1], got, code)
    return size / total / 1e6


def ttfb(url: str, offset: int, auth: bool) -> float:
    first, _, got, code = curl(url, "-r", f"{offset}-{offset + 65535}", auth=auth)
    assert (got, code) == (65536, 206), (got, code)
    return first


def make_mkv(tmp: Path, seconds: int) -> Path:
    """A real Matroska file with cues at its end, as players seek in."""
    out = tmp / "film.mkv"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc=size=640x360:rate=25:duration={seconds}", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-b:v", "1M", "-c:a", "aac", "-shortest", str(out)],
        check=True,
    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=1024, help="the unthrottled GET")
    parser.add_argument("--rate", type=float, default=4.0, help="MB/s per CDN connection")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seeks", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it all run")
    parser.add_argument(
        "--unthrottled-only", action="store_true", help="only the unthrottled comparison"
    )
    args = parser.parse_args()
    if args.smoke:
        args.size_mib, args.big_mib, args.runs, args.seeks, args.rate = 8, 16, 1, 3, 16.0
    for tool in ("curl", "ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    size, big = args.size_mib * MIB, args.big_mib * MIB
    emu = gateway = None
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            emu, base = start_emulator(tmp)
            big_id = add_file(base, "big.bin", big, 1)
            file_id = add_file(base, "film.bin", size, 2)
            seek_id = add_file(base, "seek.bin", size, 3)  # read only by the seeks (nothing cached)
            for n in range(8):
                add_file(base, f"other{n}.bin", size, 10 + n)
            mkv = make_mkv(tmp, 20 if args.smoke else 90)
            control(
                base,
                "files",
                {
                    "username": PIKPAK_USER,
                    "path": "film.mkv",
                    "content": base64.b64encode(mkv.read_bytes()).decode(),
                },
            )
            gateway, url = start_gateway(tmp, base)
            one, multi = f"{url}/one", f"{url}/multi"
            for target in (f"{one}/big.bin", f"{multi}/big.bin"):
                curl(target, "-r", "0-0", auth=True)  # sign-in, listings, links

            print(heading(__file__))
            # 1. unthrottled
            best = {"direct": 0.0, "one": 0.0, "multi": 0.0}
            link = cdn_link(base, big_id)
            for _ in range(args.runs):
                best["direct"] = max(best["direct"], throughput(link, big, False))
                best["one"] = max(best["one"], throughput(f"{one}/big.bin", big, True))
                best["multi"] = max(best["multi"], throughput(f"{multi}/big.bin", big, True))
            print(f"| unthrottled GET of {args.big_mib} MiB, best of {args.runs} | "
                  f"direct {best['direct']:.0f} MB/s | one connection {best['one']:.0f} MB/s "
                  f"| segments {best['multi']:.0f} MB/s |")  # fmt: skip

            if args.unthrottled_only:
                return
            # 2. PikPak-like
            control(base, "config", pikpak_cdn(int(args.rate * 1e6)))
            control(base, "stats", method="DELETE")
            link = cdn_link(base, file_id)
            direct = throughput(link, size, False)
            through_one = throughput(f"{one}/film.bin", size, True)
            through_multi = throughput(f"{multi}/film.bin", size, True)
            refused = stats(base)["download_refused_busy"]
            print(f"| {args.size_mib} MiB GET, CDN {args.rate:g} MB/s per connection | direct "
                  f"{direct:.1f} MB/s | one connection {through_one:.1f} MB/s | segments "
                  f"{through_multi:.1f} MB/s ({through_multi / direct:.1f}× direct) | 503s "
                  f"{refused} |")  # fmt: skip

            rng = random.Random(5)
            offsets = [rng.randrange(size - 65536) for _ in range(args.seeks)]
            seek_link = cdn_link(base, seek_id)
            direct_seek = statistics.median(ttfb(seek_link, o, False) for o in offsets)
            multi_seek = statistics.median(ttfb(f"{multi}/seek.bin", o, True) for o in offsets)
            print(f"| seek: TTFB of a 64 KiB Range, median of {args.seeks} | direct "
                  f"{direct_seek * 1000:.0f} ms | segments {multi_seek * 1000:.0f} ms "
                  f"({multi_seek / direct_seek:.2f}×) |")  # fmt: skip

            control(base, "stats", method="DELETE")
            began = time.monotonic()
            at_once(lambda n: throughput(f"{multi}/other{n}.bin", size, True), range(4))
            aggregate = 4 * size / (time.monotonic() - began) / 1e6
            counted = stats(base)
            print(f"| 4 concurrent streams | aggregate {aggregate:.1f} MB/s | 503s "
                  f"{counted['download_refused_busy']} | peak connections of the account "
                  f"{counted['download_peak_account_conns']} (limit 20) |")  # fmt: skip

            before = proc_status(gateway.pid)["VmRSS"]
            at_once(lambda n: throughput(f"{multi}/other{n}.bin", size, True), range(8))
            growth = (proc_status(gateway.pid)["VmHWM"] - before) / 1024
            print(f"| 8 concurrent streams | gateway RSS growth {growth:.0f} MiB |")

            control(base, "config", {"cdn_conn_rate": 0, "cdn_first_byte_delay": 0})
            sent = []
            for _ in range(2):
                first = stats(base)["download_bytes"]
                probe = subprocess.run(
                    ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-user_agent",
                     "Lavf", "-headers", f"Authorization: {basic()}\r\n", f"{multi}/film.mkv"],
                    capture_output=True,
                    text=True,
                )  # fmt: skip
                assert probe.returncode == 0, probe.stderr
                sent.append(stats(base)["download_bytes"] - first)
            print(f"| ffprobe of a {len(mkv.read_bytes()) / MIB:.0f} MiB MKV, twice | CDN bytes "
                  f"first {sent[0] / MIB:.2f} MiB | second {sent[1] / MIB:.2f} MiB |")  # fmt: skip
        finally:
            stop(gateway)
            stop(emu)


if __name__ == "__main__":
    main()
