"""One memory budget for every stream's read-ahead, the block cache and the listing caches: with
a budget of a few MiB, many proxied streams at once all deliver their files whole, and what the
gateway says it holds (status page, /metrics) never goes above the budget — the streams read
ahead less instead."""

from __future__ import annotations

import hashlib
import re
import threading

import requests

from tests.dav.test_metrics import ADMIN, USERS, scrape, value
from tests.dav.test_segmented_streams import pikpak_like, synthetic

MIB = 1 << 20
# Less than 8 streams' first segments and read-ahead (256 KiB each at least): the budget is
# reached in every cycle, however the streams' threads are scheduled.
BUDGET = 2 * MIB
CYCLES = 20
STREAMS = 8


def test_many_streams_within_a_small_budget_are_whole_and_never_hold_more(emulator, make_gateway):
    # A throttled CDN: every stream reads by segments, which is what the budget holds.
    pikpak_like(emulator, rate=32 << 20)
    files = {
        f"f{n}.bin": hashlib.sha256(synthetic(emulator, f"f{n}.bin", 3 * MIB, n)).hexdigest()
        for n in range(4)
    }
    # No disk cache: every cycle's streams read from the CDN again, not from blocks on disk.
    gw = make_gateway(
        download="proxy", users=USERS, server={"memory_budget": "2M"}, cache={"disk_size": 0}
    )
    held: list[tuple[float, float]] = []  # (all, the streams'), as /metrics says
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = scrape(f"{gw.url}/metrics")
            held.append(
                (
                    value(now, "pikdav_memory_in_use_bytes"),
                    value(now, "pikdav_memory_held_bytes", holder="streams"),
                )
            )

    def play(name: str, got: list) -> None:
        digest = hashlib.sha256()
        with requests.get(f"{gw.url}/pikpak/{name}", auth=gw.auth, stream=True, timeout=120) as r:
            for chunk in r.iter_content(64 * 1024):
                digest.update(chunk)
            got.append((name, r.status_code, digest.hexdigest()))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for cycle in range(CYCLES):
            got: list[tuple[str, int, str]] = []
            names = [f"f{(cycle + n) % len(files)}.bin" for n in range(STREAMS)]
            players = [threading.Thread(target=play, args=(name, got)) for name in names]
            for player in players:
                player.start()
            for player in players:
                player.join(timeout=120)
            assert sorted(got) == sorted((name, 200, files[name]) for name in names), cycle
    finally:
        done.set()
        watcher.join()

    after = scrape(f"{gw.url}/metrics")
    assert value(after, "pikdav_memory_budget_bytes") == BUDGET
    assert held and max(total for total, _ in held) <= BUDGET
    assert 0 < value(after, "pikdav_memory_peak_bytes") <= BUDGET
    # The streams' read-ahead was held within it, and when it was reached they did with less
    # (smaller and fewer segments, or none) instead of growing.
    assert max(streams for _, streams in held) > 0
    assert value(after, "pikdav_memory_refusals_total", holder="streams") > 0
    page = requests.get(f"{gw.url}/_pikdav/", auth=ADMIN, timeout=30).text
    shown = re.search(r'id="memory">(.*?)</p>', page, re.S)
    assert shown is not None
    assert "of the memory budget of\n2.0 MiB" in shown.group(1)
