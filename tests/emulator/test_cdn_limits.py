"""The emulator's CDN as PikPak's behaves for its users, when asked: throttled connections,
a cap on connections per signed link and per account (503 beyond), a first-byte delay — and
none of it by default."""

from __future__ import annotations

import time

import requests

from tests.support.pikpak_raw import control, total_stats
from tests.support.waits import wait_until

USER = "alice@example.com"


def link(alice, emulator, path: str, size: int) -> str:
    made = control(emulator.base_url, "files", {"username": USER, "path": path, "size": size})
    alice.captcha(f"GET:/drive/v1/files/{made['id']}")
    return alice.get(f"/drive/v1/files/{made['id']}").json()["web_content_link"]


def all_given_back(emulator) -> None:
    """Wait until the CDN has seen every closed download end (it notices on its next write)."""
    wait_until(
        lambda: not total_stats(emulator)["downloads_active"],
        "a closed download kept its connection",
        10,
        every=0.02,
    )


def opened(url: str) -> requests.Response:
    """A download whose headers have arrived and whose body is still being sent."""
    return requests.get(url, stream=True, timeout=30)


def test_nothing_is_limited_by_default(emulator, alice):
    url = link(alice, emulator, "a.bin", 4 << 20)
    streams = [opened(url) for _ in range(30)]
    assert [s.status_code for s in streams] == [200] * 30
    for stream in streams:
        stream.close()
    assert total_stats(emulator)["download_refused_busy"] == 0


def test_a_link_serves_so_many_connections_and_the_next_gets_503(emulator, alice):
    control(emulator.base_url, "config", {"cdn_link_conns": 8, "cdn_conn_rate": 1 << 20})
    url = link(alice, emulator, "film.mkv", 64 << 20)
    for cycle in range(20):
        streams = [opened(url) for _ in range(8)]
        assert [s.status_code for s in streams] == [200] * 8, cycle
        ninth = opened(url)
        assert ninth.status_code == 503, cycle
        ninth.close()
        streams.pop().close()  # one gives its connection back: the next one is served
        deadline = time.monotonic() + 5
        while (again := opened(url)).status_code == 503:
            again.close()
            assert time.monotonic() < deadline, "the connection was never given back"
        streams.append(again)
        for stream in streams:
            stream.close()
        all_given_back(emulator)
    counted = total_stats(emulator)
    assert counted["download_peak_link_conns"] == 8
    assert counted["download_refused_busy"] >= 20


def test_an_account_serves_so_many_connections_across_its_links(emulator, alice):
    control(emulator.base_url, "config", {"cdn_account_conns": 3, "cdn_conn_rate": 1 << 20})
    first = link(alice, emulator, "one.bin", 16 << 20)
    second = link(alice, emulator, "two.bin", 16 << 20)
    streams = [opened(first), opened(second), opened(first)]
    assert [s.status_code for s in streams] == [200] * 3
    refused = opened(second)
    assert refused.status_code == 503
    refused.close()
    for stream in streams:
        stream.close()
    assert total_stats(emulator)["download_peak_account_conns"] == 3


def test_a_connection_is_throttled_and_the_first_byte_waits(emulator, alice):
    rate, delay = 2 << 20, 0.2
    control(emulator.base_url, "config", {"cdn_conn_rate": rate, "cdn_first_byte_delay": delay})
    url = link(alice, emulator, "slow.bin", 1 << 20)
    started = time.monotonic()
    stream = opened(url)
    first_byte = time.monotonic() - started
    body = stream.raw.read()
    whole = time.monotonic() - started
    assert len(body) == 1 << 20
    # Bounds, not performance figures: what the settings promise.
    assert first_byte >= delay
    assert whole >= delay + 0.9 * (1 << 20) / rate
