"""The cost of coherence: three ``pikdav serve`` processes on one Redis behind HAProxy (round
robin), against one instance alone, reached directly; and how long a write through one
instance takes to show in another's listing.

One in-process emulator, one ``redis-server``, four ``pikdav serve`` processes (one alone, three
sharing Redis) and one ``haproxy``, all on loopback, in this one run. Measured side by side:

- warm PROPFIND Depth 1 of a folder of ``--entries`` files (median of ``--runs``);
- proxied GET of a ``--size-mib`` synthetic file with curl (median of ``--runs``);
- invalidation delay over ``--writes`` PUTs: a PUT through instance A, then PROPFIND through
  instance B as fast as it answers, until the new file is listed; the time from the PUT's
  answer to the first listing that shows it (median and max), and how often B's first
  PROPFIND did not show it yet (a client reading its own write through another instance).

    python bench/scale_out.py [--entries 1000] [--size-mib 256] [--runs 9] [--writes 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DAV, curl, fill_folder, propfind
from pikdav.emulator import Emulator
from tests.support.cluster import PIKPAK_PASSWORD, PIKPAK_USER, haproxy, instances
from tests.support.pikpak_raw import control
from tests.support.redis_server import redis_server


def warm_propfind(base: str, runs: int) -> float:
    session = requests.Session()
    url = f"{base}pikpak/folder/"
    for _ in range(3):  # warm-up: every instance behind the balancer lists the folder once
        propfind(url, session=session)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        propfind(url, session=session)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def proxied_get(base: str, runs: int) -> float:
    url = f"{base}pikpak/big.bin"
    samples = []
    for index in range(runs + 3):  # three warm-ups: a link cached on every instance
        _, total, _, code = curl(url, auth=True)
        assert code == 200, code
        if index >= 3:
            samples.append(total)
    return statistics.median(samples)


def invalidation_delays(a: str, b: str, writes: int) -> tuple[list[float], int]:
    """The delays, and how many of the writes B's first PROPFIND after the PUT did not list
    (a client reading its own write through another instance would have missed it)."""
    put, look = requests.Session(), requests.Session()
    propfind(f"{b}pikpak/writes/", session=look)
    delays, stale = [], 0
    for i in range(writes):
        name = f"w{i:03d}.txt"
        answer = put.put(f"{a}pikpak/writes/{name}", data=b"x", auth=DAV, timeout=60)
        assert answer.status_code == 201, answer.status_code
        answered = time.perf_counter()
        first = True
        while name not in propfind(f"{b}pikpak/writes/", session=look).text:
            assert time.perf_counter() - answered < 10, "never listed"
            stale += first
            first = False
        delays.append(time.perf_counter() - answered)
    return delays, stale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        work = Path(tmp)
        emulator.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
        fill_folder(emulator.world, PIKPAK_USER, "folder", args.entries)
        emulator.world.ensure_path(emulator.world.accounts[PIKPAK_USER], "writes")
        control(
            emulator.base_url,
            "files",
            {"username": PIKPAK_USER, "path": "big.bin", "size": args.size_mib << 20},
        )
        (work / "alone").mkdir()
        (work / "shared").mkdir()
        with (
            instances(work / "alone", emulator, None, count=1) as alone,
            redis_server(work) as url,
            instances(work / "shared", emulator, url, count=3) as three,
            haproxy(work, [r.url for r in three]) as balancer,
        ):
            direct, one_shared = alone[0].url, three[0].url
            rows = {
                "warm PROPFIND Depth 1": (
                    warm_propfind(direct, args.runs),
                    warm_propfind(one_shared, args.runs),
                    warm_propfind(balancer, args.runs),
                ),
                f"proxied GET of {args.size_mib} MiB": (
                    proxied_get(direct, args.runs),
                    proxied_get(one_shared, args.runs),
                    proxied_get(balancer, args.runs),
                ),
            }
            delays, stale = invalidation_delays(three[0].url, three[1].url, args.writes)
    print(f"entries={args.entries} size={args.size_mib} MiB runs={args.runs}")
    print(
        f"{'measure':30} {'one alone':>11} {'one on Redis':>13} {'3 + HAProxy':>12}"
        f" {'ratio':>6} {'ratio':>6}"
    )
    for name, (one, on_redis, balanced) in rows.items():
        print(
            f"{name:30} {one * 1000:8.1f} ms {on_redis * 1000:10.1f} ms {balanced * 1000:9.1f} ms"
            f" {on_redis / one:5.2f}x {balanced / one:5.2f}x"
        )
    print(
        f"invalidation delay over {len(delays)} writes: median "
        f"{statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms; "
        f"the first PROPFIND through B after the PUT missed the write {stale} times"
    )


if __name__ == "__main__":
    main()
