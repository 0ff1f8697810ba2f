"""Proxied streams through the gateway when the emulator's CDN behaves like PikPak's: several
connections within the link's and the account's limits, the same bytes as the file, and the
header and index blocks a player reads again and again served from the gateway's cache."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import requests

import pikdav
from tests.support.pikpak_raw import control, pikpak_cdn, total_stats

USER = "alice@example.com"
MIB = 1 << 20
CLIP = Path(pikdav.__file__).parent / "demo_media" / "color-bars.mkv"


def pikpak_like(emulator, rate: int = 4 << 20) -> None:
    control(emulator.base_url, "config", pikpak_cdn(rate))


def synthetic(emulator, path: str, size: int, seed: int) -> bytes:
    made = control(
        emulator.base_url, "files", {"username": USER, "path": path, "size": size, "seed": seed}
    )
    return emulator.world.blobs.get(made["hash"]).read_at(0, size)


def test_a_throttled_file_comes_through_several_connections_and_whole(emulator, make_gateway):
    pikpak_like(emulator, rate=4 << 20)
    files = {f"f{n}.bin": synthetic(emulator, f"f{n}.bin", 24 * MIB, n) for n in range(3)}
    gw = make_gateway(download="proxy")
    got: dict[str, bytes] = {}

    def play(name: str) -> None:
        got[name] = requests.get(f"{gw.url}/pikpak/{name}", auth=gw.auth, timeout=120).content

    threads = [threading.Thread(target=play, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == files
    counted = total_stats(emulator)
    assert counted["download_refused_busy"] == 0
    assert 1 < counted["download_peak_link_conns"] <= 8  # more than one: segments
    assert counted["download_peak_account_conns"] <= 16  # the account's budget


def test_a_range_through_segments_is_exact(emulator, make_gateway):
    pikpak_like(emulator, rate=8 << 20)
    data = synthetic(emulator, "film.mkv", 16 * MIB, 7)
    gw = make_gateway(download="proxy")
    for start, end in ((0, 99), (5 * MIB + 3, 9 * MIB), (16 * MIB - 10, 16 * MIB - 1)):
        resp = requests.get(
            f"{gw.url}/pikpak/film.mkv",
            auth=gw.auth,
            headers={"Range": f"bytes={start}-{end}"},
            timeout=60,
        )
        assert resp.status_code == 206 and resp.content == data[start : end + 1]


@pytest.mark.parametrize("cdn", ["throttled", "unthrottled"])
def test_a_second_ffprobe_of_a_video_costs_no_cdn_bytes(emulator, make_gateway, cdn):
    assert shutil.which("ffprobe"), "ffprobe (Debian's ffmpeg) is needed"
    if cdn == "throttled":
        pikpak_like(emulator, rate=16 << 20)  # read by segments
    control(
        emulator.base_url,
        "files",
        {
            "username": USER,
            "path": "clip.mkv",
            "content": base64.b64encode(CLIP.read_bytes()).decode(),
        },
    )
    gw = make_gateway(download="proxy")
    if cdn == "unthrottled":
        # A first stream finds the CDN fast: the next ones read through one connection.
        warm = synthetic(emulator, "warm.bin", 8 * MIB, 5)
        assert requests.get(f"{gw.url}/pikpak/warm.bin", auth=gw.auth).content == warm
    auth = base64.b64encode(":".join(gw.auth).encode()).decode()
    sent = []
    for _ in range(2):
        before = total_stats(emulator)["download_bytes"]
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-headers",
             f"Authorization: Basic {auth}\r\n", f"{gw.url}/pikpak/clip.mkv"],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        assert "codec_type=video" in probe.stdout
        sent.append(total_stats(emulator)["download_bytes"] - before)
    assert sent[0] > 0 and sent[1] == 0  # the header and the cues came from the cache


def test_a_cdn_that_starts_throttling_gets_segments_within_the_stream(emulator, make_gateway):
    first = synthetic(emulator, "fast.bin", 8 * MIB, 1)
    second = synthetic(emulator, "slow.bin", 16 * MIB, 2)
    gw = make_gateway(download="proxy")
    # An unthrottled CDN: the stream is measured fast, the next one starts on one connection.
    assert requests.get(f"{gw.url}/pikpak/fast.bin", auth=gw.auth).content == first
    pikpak_like(emulator, rate=4 << 20)
    control(emulator.base_url, "stats", method="DELETE")
    assert requests.get(f"{gw.url}/pikpak/slow.bin", auth=gw.auth).content == second
    counted = total_stats(emulator)
    assert counted["download_peak_link_conns"] > 1  # it went on by segments
    assert counted["download_refused_busy"] == 0
