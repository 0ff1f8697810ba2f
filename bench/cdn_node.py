"""``cdn_node: auto`` against ``off``: time to first byte of a file read through the gateway,
proxied (the gateway reads the CDN) and redirected (the client follows the 302 to the CDN).

The emulator plays PikPak by its real names over TLS behind a CONNECT proxy (the account's
proxy, as in the tests); its download nodes answer after 30 ms, except ``dl-a10b-0870`` (5 ms).
PikPak's links name ``dl-a10b-0621`` (30 ms): ``off`` reads there, ``auto`` finds 0870. Link
caches are warm; each figure is the median of ``--runs`` requests, both mounts in one run.

    python bench/cdn_node.py [--runs 30] [--slow 0.03] [--fast 0.005]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from tests.support.named_hosts import add_files, control, named_emulator, named_gateway, tunnel_to
from tests.support.tlsca import make_test_ca

FAST = "dl-a10b-0870"
REDIRECTED = "bench-redirect"  # the User-Agent the mounts redirect (others are proxied)


def first_byte(session: requests.Session, url: str, **kwargs) -> float:
    started = time.perf_counter()
    with session.get(url, stream=True, timeout=30, **kwargs) as resp:
        assert resp.status_code in (200, 206), resp.status_code
        next(resp.iter_content(1))
        took = time.perf_counter() - started
        for _ in resp.iter_content(1 << 16):
            pass  # read to the end: a cut body is noise in the servers' logs
        return took


def proxied(gw, runs: int) -> float:
    with requests.Session() as client:
        client.auth = gw.auth
        url = f"{gw.url}/pikpak/film.mkv"
        first_byte(client, url)  # the link is cached from here on
        return statistics.median(first_byte(client, url) for _ in range(runs))


def redirected(gw, runs: int, proxy_url: str, ca: str) -> float:
    """The 302 from the gateway, then the client's request to the CDN (through the proxy,
    where PikPak's names lead), until its first byte."""
    with requests.Session() as client, requests.Session() as cdn:
        cdn.proxies = {"https": proxy_url}

        def once() -> float:
            started = time.perf_counter()
            resp = client.get(
                f"{gw.url}/pikpak/film.mkv",
                auth=gw.auth,
                allow_redirects=False,
                headers={"User-Agent": REDIRECTED},
                timeout=30,
            )
            assert resp.status_code == 302, resp.status_code
            location = resp.headers["Location"]
            with cdn.get(location, stream=True, verify=ca, timeout=30) as body:
                assert body.status_code == 200, body.status_code
                next(body.iter_content(1))
                took = time.perf_counter() - started
                for _ in body.iter_content(1 << 16):
                    pass
            return took

        once()
        return statistics.median(once() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--slow", type=float, default=0.03, help="seconds, every other node")
    parser.add_argument("--fast", type=float, default=0.005, help=f"seconds, {FAST}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ca = make_test_ca(base / "ca")
        with named_emulator(base / "emu", ca) as emulator, tunnel_to(emulator) as proxy:
            add_files(emulator, ca, {"film.mkv": os.urandom(1 << 20)})
            control(emulator, ca, "config", {"cdn_latency": {"*": args.slow, FAST: args.fast}})
            gateways = {
                node: named_gateway(
                    emulator,
                    ca,
                    base / node,
                    proxy,
                    cdn_node=node,
                    force_redirect_user_agents=[REDIRECTED],
                )
                for node in ("off", "auto")
            }
            try:
                chosen = gateways["auto"].mounts[0].reading.route.choice
                rows = [
                    (
                        "proxied GET",
                        proxied(gateways["off"], args.runs),
                        proxied(gateways["auto"], args.runs),
                    ),
                    (
                        "302 followed by the client",
                        redirected(gateways["off"], args.runs, proxy.url, str(ca.ca_cert)),
                        redirected(gateways["auto"], args.runs, proxy.url, str(ca.ca_cert)),
                    ),
                ]
            finally:
                for gw in gateways.values():
                    gw.stop()
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"# python bench/cdn_node.py --runs {args.runs} --slow {args.slow} --fast {args.fast}")
    print(f"# auto chose {chosen.host} ({chosen.latency * 1000:.1f} ms to answer the probe)")
    print("| TTFB, median | cdn_node: off | cdn_node: auto | off − auto |")
    print("|---|---|---|---|")
    for name, off, auto in rows:
        cells = (f"{seconds * 1000:.1f} ms" for seconds in (off, auto, off - auto))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
