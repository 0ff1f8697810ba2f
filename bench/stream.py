"""Downloads through the gateway: proxied streaming against the CDN, RSS, redirects, TTFB.

One ``pikdav emulator`` process holds a synthetic file; one ``pikdav serve`` process (the
gateway) shows the same account twice: mount ``proxy`` (download: proxy) and mount ``redir``
(download: redirect). curl is the client. Side by side in one run:

1. a direct download of the CDN link (asked for from 127.0.0.1, as the gateway does) against
   the same file proxied through the gateway, best of N each;
2. the gateway's peak RSS while N parallel curl streams pull the file through ``proxy``
   (VmHWM after, minus VmRSS right before; VmHWM cannot be reset);
3. 302 redirects per second on ``redir`` with a warm link cache, from keep-alive
   ``http.client`` connections in a few threads (the gateway caches scrypt checks for 60 s);
4. time to first byte (curl's ``time_starttransfer``), median of N: the 302 itself, the
   redirect followed with ``-L`` to the CDN's first byte, the proxy, and the CDN directly.

    python bench/stream.py [--size-mib 1024] [--runs 3] [--streams 8] [--ttfb-runs 20]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path
from subprocess import Popen
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MIB,
    RssSampler,
    add_file,
    at_once,
    cdn_link,
    curl,
    gateway_config,
    proc_status,
    serve,
    start_emulator,
    stop,
)
from tests.support.command import basic
from tests.support.pikpak_raw import control


def redirects_per_second(url: str, threads: int, seconds: float) -> tuple[float, int]:
    """302s per second from keep-alive connections; and how many answers were not 302."""
    parts = urlsplit(url)
    headers = {"Authorization": basic()}
    deadline = time.perf_counter() + seconds
    counts = [0] * threads
    wrong = [0] * threads

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        while time.perf_counter() < deadline:
            conn.request("GET", parts.path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 302:
                counts[i] += 1
            else:
                wrong[i] += 1
        conn.close()

    start = time.perf_counter()
    at_once(worker, range(threads))
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed, sum(wrong)


def start_gateway(tmp: Path, emulator: str) -> tuple[Popen, str]:
    mounts = [
        {"name": "proxy", "account": "main", "download": "proxy"},
        {"name": "redir", "account": "main", "download": "redirect"},
    ]
    return serve(tmp, gateway_config(tmp, emulator, mounts))


def best_of(runs: int, size: int, direct: str, proxied: str) -> dict[str, float]:
    """GB/s of the best of ``runs`` whole GETs of the CDN link and through the gateway,
    taking turns."""
    best = {"direct": 0.0, "proxy": 0.0}
    for _ in range(runs):
        for kind, target, auth in (("direct", direct, False), ("proxy", proxied, True)):
            _, total, got, code = curl(target, auth=auth)
            assert (got, code) == (size, 200), (kind, got, code)
            best[kind] = max(best[kind], size / total / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--redirect-threads", type=int, default=4)
    parser.add_argument("--redirect-seconds", type=float, default=5.0)
    parser.add_argument("--ttfb-runs", type=int, default=20)
    parser.add_argument(
        "--cdn-rate-mbs",
        type=int,
        default=200,
        help="CDN speed (MB/s) for the rate-limited comparison",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    emu = gateway = None
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            emu, base = start_emulator(tmp)
            direct = cdn_link(base, add_file(base, "big.bin", size, 1))
            gateway, url = start_gateway(tmp, base)
            proxied, redirected = f"{url}/proxy/big.bin", f"{url}/redir/big.bin"
            # Warm-up (untimed): sign-in, listings, link caches, the scrypt cache.
            for target in (proxied, redirected):
                first = curl(target, "-r", "0-0", auth=True)
                assert first[3] in (206, 302), first

            # 1. throughput, one stream, best of N (alternating).
            best = best_of(args.runs, size, direct, proxied)
            # 1b. the same with the CDN limited to a realistic speed (it never is unlimited).
            control(base, "config", {"cdn_rate": args.cdn_rate_mbs * 1_000_000})
            limited = best_of(2, size, direct, proxied)
            control(base, "config", {"cdn_rate": 0})

            # 2. peak RSS with parallel streams.
            before = proc_status(gateway.pid)
            with RssSampler(gateway.pid) as sampler:
                start = time.perf_counter()
                results = at_once(lambda _: curl(proxied, auth=True), range(args.streams))
                wall = time.perf_counter() - start
            sampled = sampler.samples
            after = proc_status(gateway.pid)
            assert all((r[2], r[3]) == (size, 200) for r in results), results
            aggregate = args.streams * size / wall / 1e9

            # 3. redirects per second, warm link cache.
            rate, wrong = redirects_per_second(
                redirected, args.redirect_threads, args.redirect_seconds
            )

            # 4. time to first byte, median of N.
            ttfb: dict[str, list[float]] = {"302": [], "302 -L": [], "proxy": [], "direct": []}
            for _ in range(args.ttfb_runs):
                for kind, target, extra, auth in (
                    ("302", redirected, (), True),
                    ("302 -L", redirected, ("-L",), True),
                    ("proxy", proxied, (), True),
                    ("direct", direct, (), False),
                ):
                    first_byte, _, got, code = curl(target, *extra, auth=auth)
                    assert code == (302 if kind == "302" else 200), (kind, code)
                    assert kind == "302" or got == size, (kind, got)
                    ttfb[kind].append(first_byte * 1000)
            med = {k: statistics.median(v) for k, v in ttfb.items()}
        finally:
            stop(gateway)
            stop(emu)

    mib = 1024
    print(f"| measure | {args.size_mib} MiB synthetic file |")
    print("|---|---|")
    print(f"| direct CDN download, curl, best of {args.runs} | {best['direct']:.2f} GB/s |")
    print(f"| proxied through the gateway, curl, best of {args.runs} | {best['proxy']:.2f} GB/s |")
    print(f"| ratio proxied / direct | **{best['proxy'] / best['direct']:.2f}×** |")
    print(
        f"| CDN limited to {args.cdn_rate_mbs} MB/s: direct / proxied, best of 2 | "
        f"{limited['direct'] * 1000:.0f} / {limited['proxy'] * 1000:.0f} MB/s |"
    )
    print(
        f"| ratio proxied / direct at {args.cdn_rate_mbs} MB/s | "
        f"**{limited['proxy'] / limited['direct']:.2f}×** |"
    )
    print(f"| {args.streams} parallel proxied streams, aggregate | {aggregate:.2f} GB/s |")
    print(
        f"| gateway VmHWM after the streams − VmRSS before | "
        f"**{(after['VmHWM'] - before['VmRSS']) / mib:.0f} MiB** |"
    )
    print(
        f"| gateway VmRSS before / VmHWM before / VmHWM after / max sampled VmRSS | "
        f"{before['VmRSS'] / mib:.0f} / {before['VmHWM'] / mib:.0f} / "
        f"{after['VmHWM'] / mib:.0f} / {max(sampled) / mib:.0f} MiB |"
    )
    print(
        f"| 302 redirects per second, warm link cache, {args.redirect_threads} keep-alive "
        f"clients, {args.redirect_seconds:.0f} s | {rate:.0f}/s ({wrong} not 302) |"
    )
    print(f"| TTFB, 302 answer (no -L), median of {args.ttfb_runs} | {med['302']:.1f} ms |")
    print(f"| TTFB, redirect followed (-L) to the CDN | {med['302 -L']:.1f} ms |")
    print(f"| TTFB, proxied | {med['proxy']:.1f} ms |")
    print(f"| TTFB, direct CDN | {med['direct']:.1f} ms |")


if __name__ == "__main__":
    main()
