"""The disk cache's store: bounded in size, least recently used out first, the bytes read after
a seek kept up to a bound and all that the memory cache lets go of, and after a ``kill -9`` in
the middle of writes it serves every byte right or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from pikdav.pikpak.memory import DISK_WRITES, MemoryBudget
from pikdav.vfs.disk import CHUNK, SEEK, DiskCache, content_key
from tests.support import disk_writer
from tests.support.disk_writer import SIZE, expected, gcid

LIMIT = 8 << 20
BLOCK = 64 * 1024


def test_the_cache_stays_within_its_size_over_a_thousand_inserts_and_keeps_what_is_read(tmp_path):
    disk = DiskCache(tmp_path / "cache", LIMIT)
    read_often = content_key(gcid(999_999), 1 << 20)
    disk.put_block(read_often, 0, expected(999_999, 0, BLOCK))
    disk.flush()
    for number in range(1000):
        disk.put_block(content_key(gcid(number), 1 << 20), 0, expected(number, 0, BLOCK))
        if number % 10 == 0:
            disk.flush()
            assert disk.volume() <= LIMIT + CHUNK, number
            assert disk.get_block(read_often, 0) is not None, number  # used: not evicted
    disk.flush()
    on_disk = sum(f.stat().st_size for f in (tmp_path / "cache").rglob("*") if f.is_file())
    assert disk.volume() <= LIMIT + CHUNK
    assert on_disk <= 2 * LIMIT  # the files themselves, the database and its journal
    # The oldest blocks that nobody read went first.
    assert disk.get_block(content_key(gcid(0), 1 << 20), 0) is None
    assert disk.get_block(content_key(gcid(999), 1 << 20), 0) is not None
    disk.close()


def test_after_a_seek_the_first_bytes_are_kept_and_what_memory_lets_go_of_is_kept_whole(tmp_path):
    disk = DiskCache(tmp_path / "cache", LIMIT * 4)
    size, seek = 64 << 20, (24 << 20) + 12345  # far from the head and the tail
    key = content_key(gcid(5), size)
    read = expected(5, seek, seek + SEEK + 4 * CHUNK)  # what a player read after its seek
    disk.put_block(key, seek, read, seek=seek)
    disk.flush()
    for pos in (seek, seek + CHUNK, seek + SEEK - 1):
        found = disk.get_block(key, pos)
        assert found is not None, pos
        start, data = found
        assert start <= pos < start + len(data)
        assert data == expected(5, start, start + len(data))
    assert disk.get_block(key, seek + SEEK + 2 * CHUNK) is None  # bounded: not all it read
    # The memory cache lets go of the rest: now it is kept too.
    disk.spill_block(key, seek + SEEK, read[SEEK:])
    disk.flush()
    found = disk.get_block(key, seek + SEEK + 2 * CHUNK)
    assert found is not None
    assert found[1] == expected(5, found[0], found[0] + len(found[1]))
    # Neither for a file whose content hash is unknown.
    disk.spill_block("file-id:file-id-67108864", 0, read)
    disk.put_block("file-id:file-id-67108864", seek, read, seek=seek)
    disk.flush()
    assert disk.get_block("file-id:file-id-67108864", seek) is None
    disk.close()


def test_a_film_played_through_does_not_push_the_library_s_heads_out(tmp_path):
    limit = 4 * LIMIT
    disk = DiskCache(tmp_path / "cache", limit)
    heads = [content_key(gcid(number), 1 << 30) for number in range(8)]
    for number, key in enumerate(heads):
        disk.put_block(key, 0, expected(number, 0, BLOCK))  # a scan: each video's head
    film = content_key(gcid(100), 1 << 30)
    pos = 100 * CHUNK
    for piece in range(limit // CHUNK + 8):  # more than the cache: what memory let go of
        disk.spill_block(film, pos, expected(100, pos, pos + CHUNK))
        pos += CHUNK
        if piece % 8 == 7:
            disk.flush()
            assert disk.volume() <= limit + CHUNK, piece
    disk.flush()
    for number, key in enumerate(heads):
        assert disk.get_block(key, 0) == (0, expected(number, 0, BLOCK)), number
    last = disk.get_block(film, pos - 1)  # the last of the film is kept (the first went)
    assert last is not None and last[1] == expected(100, last[0], last[0] + len(last[1]))
    assert disk.get_block(film, 100 * CHUNK) is None
    disk.close()


def test_a_block_of_unknown_content_hash_is_never_kept(tmp_path):
    disk = DiskCache(tmp_path / "cache", LIMIT)
    empty = disk.volume()  # its databases
    disk.put_block("file-id:file-id-1048576", 0, b"x" * BLOCK)  # what a file without GCID is
    disk.flush()
    assert disk.get_block("file-id:file-id-1048576", 0) is None
    assert disk.volume() == empty
    disk.close()


def test_kill_9_during_writes_never_serves_a_wrong_byte_after_a_restart_20_cycles(tmp_path):
    directory = tmp_path / "cache"
    served = 0
    for cycle in range(20):
        worker = subprocess.Popen(
            [sys.executable, "-m", disk_writer.__name__, str(directory), str(cycle)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.getcwd(),
        )
        assert worker.stdout is not None
        line = worker.stdout.readline()  # one batch on disk: the next is being written
        assert line.startswith("written"), line
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        worker.stdout.close()

        disk = DiskCache(directory, 16 << 20)
        for number in range(disk_writer.FILES):
            key = content_key(gcid(number), SIZE)
            for cell in [*range(8), *range(SIZE // CHUNK - 8, SIZE // CHUNK)]:
                for pos in (cell * CHUNK, cell * CHUNK + CHUNK // 2, cell * CHUNK + CHUNK - 1):
                    found = disk.get_block(key, pos)
                    if found is not None:
                        start, data = found
                        assert start <= pos < start + len(data)
                        assert data == expected(number, start, start + len(data)), (cycle, pos)
                        served += 1
        # And it goes on working after the crash.
        disk.put_block(content_key(gcid(77), SIZE), 0, expected(77, 0, BLOCK))
        disk.flush()
        assert disk.get_block(content_key(gcid(77), SIZE), 10) == (0, expected(77, 0, BLOCK))
        disk.close()
    assert served > 0  # blocks were there to be checked


def test_blocks_waiting_for_the_disk_count_in_the_memory_budget_and_never_beyond_it(tmp_path):
    budget = MemoryBudget(8 * CHUNK)  # a quarter of it for blocks waiting: 2 MiB
    disk = DiskCache(tmp_path / "cache", LIMIT * 4, memory=budget)
    size = 64 << 20
    held: list[int] = []
    for number in range(20):
        key = content_key(gcid(number), size)
        # A player's head read: 8 MiB the disk keeps, more than the budget has room for.
        disk.put_block(key, 0, expected(number, 0, 8 * CHUNK))
        held.append(budget.held[DISK_WRITES])
        assert budget.in_use <= budget.limit // 4, number
    disk.flush()
    assert max(held) > 0  # what waited was counted
    assert budget.held[DISK_WRITES] == 0 and budget.in_use == 0  # and given back once written
    # Beyond it, blocks were not kept: what was kept is right, the rest a miss, never wrong.
    kept = 0
    for number in range(20):
        for pos in range(0, 8 * CHUNK, CHUNK):
            found = disk.get_block(content_key(gcid(number), size), pos)
            if found is not None:
                kept += 1
                assert found[1] == expected(number, found[0], found[0] + len(found[1]))
    assert 0 < kept < 20 * 8
    disk.close()
