"""The segmented reader against the emulator's download server over HTTP, with PikPak's
limits switched on: the same bytes as one connection, within the connection limits, a
bounded read-ahead, a seek that starts at once, and header blocks read once."""

from __future__ import annotations

import random
import threading
import time

import pytest

from pikdav.pikpak import http
from pikdav.pikpak.cdn import StreamGone
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.retry import RetryPolicy
from pikdav.pikpak.segments import MIB, BlockCache, SegmentPlan, Streams
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control, pikpak_cdn, total_stats
from tests.support.waits import wait_until

USER, PASSWORD = "alice@example.com", "correct horse"


class Files:
    """Synthetic files at the emulator, read through one account's streams."""

    def __init__(self, emulator, streams: Streams, plan: SegmentPlan | None = None) -> None:
        self.emulator = emulator
        self.streams = streams
        self.plan = plan or SegmentPlan()
        session = Session(
            Credentials(USER, PASSWORD),
            MemoryTokenStore(),
            user_api=emulator.base_url,
            drive_api=emulator.base_url,
        )
        self.drive = Drive(session)
        self.cdn = http.cdn_session(session.connection)
        self.links: dict[str, list] = {}

    def add(self, name: str, size: int, seed: int = 1) -> tuple[str, bytes]:
        made = control(
            self.emulator.base_url,
            "files",
            {"username": USER, "path": name, "size": size, "seed": seed},
        )
        data = self.emulator.world.blobs.get(made["hash"]).read_at(0, size)
        return made["id"], data

    def reader(self, file_id: str, size: int, **options):
        cached = self.links.setdefault(file_id, [])

        def link(fresh: bool):
            if fresh or not cached:
                cached[:] = [self.drive.download_link(file_id)]
            return cached[0]

        return self.streams.reader(
            self.cdn, size, link, key=file_id, plan=self.plan, name=file_id, **options
        )


def pikpak_like(emulator, rate: int = 4 << 20) -> None:
    control(emulator.base_url, "config", pikpak_cdn(rate))


def read_exactly(reader, count: int) -> bytes:
    """``count`` bytes (fewer only at the end of the file): a read may return less."""
    got = b""
    while len(got) < count and (part := reader.read(count - len(got))):
        got += part
    return got


def read_all(reader, chunk: int = 1 << 20) -> bytes:
    parts = []
    while part := reader.read(chunk):
        parts.append(part)
    return b"".join(parts)


def test_the_bytes_are_those_of_the_file_from_any_offset(emulator):
    files = Files(emulator, Streams(), SegmentPlan(connections=4, first=64 << 10, size=1 << 20))
    file_id, data = files.add("film.mkv", 9 * MIB + 12345)
    with files.reader(file_id, len(data)) as whole:
        assert read_all(whole, 100_000) == data
    rng = random.Random(7)
    for _ in range(20):
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randrange(1, 3 * MIB))
        with files.reader(file_id, len(data), start=start, end=end) as part:
            part.seek(start)
            assert read_exactly(part, end - start) == data[start:end]


def test_connections_stay_within_the_link_and_account_limits(emulator):
    pikpak_like(emulator, rate=8 << 20)
    streams = Streams(connections=16)
    files = Files(emulator, streams, SegmentPlan(connections=8, size=1 << 20))
    made = [files.add(f"f{n}.bin", 12 * MIB, seed=n) for n in range(4)]
    results: dict[str, bytes] = {}

    def play(file_id: str, size: int) -> None:
        with files.reader(file_id, size) as reader:
            results[file_id] = read_all(reader)

    threads = [threading.Thread(target=play, args=(fid, len(d))) for fid, d in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[fid] == d for fid, d in made)
    counted = total_stats(emulator)
    assert counted["download_refused_busy"] == 0
    assert counted["download_peak_link_conns"] <= 8
    assert counted["download_peak_account_conns"] <= 16
    assert streams.budget.peak <= 16 and streams.budget.in_use == 0


def test_a_503_lowers_the_budget_instead_of_failing_the_stream(emulator):
    # The CDN allows 3 connections per link; the stream thinks it may use 8.
    control(emulator.base_url, "config", {"cdn_link_conns": 3, "cdn_conn_rate": 8 << 20})
    streams = Streams()
    files = Files(emulator, streams, SegmentPlan(connections=8, size=512 << 10))
    file_id, data = files.add("big.bin", 8 * MIB)
    with files.reader(file_id, len(data)) as reader:
        assert read_all(reader) == data
    assert total_stats(emulator)["download_refused_busy"] >= 1
    assert streams.budget.refusals >= 1 and streams.budget.limit < 16


def test_a_slow_reader_does_not_make_the_gateway_read_the_whole_file(emulator):
    plan = SegmentPlan(connections=4, first=256 << 10, size=1 << 20, ahead=4 * MIB)
    files = Files(emulator, Streams(), plan)
    file_id, data = files.add("long.mkv", 64 * MIB)
    with files.reader(file_id, len(data)) as reader:
        assert read_exactly(reader, 64 << 10) == data[: 64 << 10]
        time.sleep(1.0)  # a player buffering: the CDN is fast, the reader is not
        assert reader.fetched <= plan.ahead + plan.size + (64 << 10)
    assert total_stats(emulator)["download_bytes"] < 8 * MIB


def test_a_seek_reads_from_the_new_offset_and_drops_what_is_not_needed(emulator):
    pikpak_like(emulator, rate=2 << 20)
    files = Files(emulator, Streams(), SegmentPlan(connections=4, size=1 << 20, ahead=8 * MIB))
    file_id, data = files.add("seek.mkv", 48 * MIB)
    with files.reader(file_id, len(data)) as reader:
        assert read_exactly(reader, 64 << 10) == data[: 64 << 10]
        for cycle in range(20):
            offset = random.Random(cycle).randrange(len(data) - MIB)
            reader.seek(offset)
            assert read_exactly(reader, 32 << 10) == data[offset : offset + (32 << 10)], cycle
    # Every segment cancelled by a seek gave its connection back.
    wait_until(lambda: not total_stats(emulator)["downloads_active"], "connections given back", 10)
    assert files.streams.budget.in_use == 0


def test_header_and_index_blocks_are_read_from_the_cdn_once(emulator):
    cache = BlockCache(64 * MIB)
    files = Files(
        emulator, Streams(cache=cache), SegmentPlan(connections=4, first=128 << 10, size=1 << 20)
    )
    file_id, data = files.add("film.mkv", 32 * MIB)
    blocks = [(0, 200_000), (len(data) - 300_000, len(data)), (10 * MIB, 10 * MIB + 50_000)]

    def probe() -> None:
        for start, end in blocks:
            with files.reader(file_id, len(data), start=start, end=end) as reader:
                reader.seek(start)
                assert read_exactly(reader, end - start) == data[start:end]

    probe()
    first = total_stats(emulator)["download_bytes"]
    probe()
    assert total_stats(emulator)["download_bytes"] == first  # the second probe: nothing upstream


def test_a_server_that_keeps_dropping_is_given_up_on(emulator):
    files = Files(emulator, Streams(), SegmentPlan(connections=2, size=1 << 20))
    file_id, data = files.add("drop.bin", 4 * MIB)
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 100_000})
    with files.reader(file_id, len(data)) as reader:
        reader._resumes = RetryPolicy(attempts=3, seconds=60, backoff=0, jitter=0)
        got = bytearray()
        with pytest.raises(StreamGone) as gone:
            while part := reader.read(1 << 16):
                got += part
    assert gone.value.delivered == len(got) and bytes(got) == data[: len(got)]


def test_a_dropped_segment_and_an_expired_link_lose_no_byte(emulator):
    files = Files(emulator, Streams(), SegmentPlan(connections=4, size=1 << 20))
    file_id, data = files.add("resume.bin", 16 * MIB + 7)
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 300_000, "times": 5})
    with files.reader(file_id, len(data)) as reader:
        head = read_exactly(reader, 1 << 20)
        control(emulator.base_url, "expire-links", {"username": USER})
        assert head + read_all(reader) == data
    assert total_stats(emulator)["download_forbidden"] >= 1


def test_a_fast_stream_holds_the_cache_and_its_segments_not_copies_of_them(emulator):
    """A finished 32 MiB segment was copied whole into the block cache while the stream went
    on: another 32 MiB at the top of the gateway's RSS on every fast GET."""
    import tracemalloc

    from pikdav.pikpak.segments import MAX_SEGMENT

    cache = BlockCache(max_bytes=64 * MIB)
    # ``fast=1``: every connection counts as fast, so segments grow to their largest at once.
    files = Files(emulator, Streams(cache=cache), SegmentPlan(fast=1.0))
    file_id, data = files.add("film.mkv", 160 * MIB)
    tracemalloc.start()
    try:
        got = 0
        with files.reader(file_id, len(data)) as stream:
            while part := stream.read(MIB):
                assert part == data[got : got + len(part)]
                got += len(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == len(data) and cache.size > 32 * MIB
    # The cache, the segment being read, the next one (a segment is made at its full size
    # when it is scheduled, though its pages cost memory only as they are filled) and chunks
    # on their way: 133 MiB were traced; with the copy, 32 MiB more.
    held = cache.max_bytes + 2 * MAX_SEGMENT + 12 * MIB
    assert peak < held, f"{peak / MIB:.0f} MiB at once, {held / MIB:.0f} expected at most"
