"""The memory budget as its holders see it: the block cache makes room for a stream's read-ahead,
keeps nothing that does not fit, and gives every byte back when it lets go."""

from __future__ import annotations

import subprocess
import sys

from pikdav.pikpak.memory import BLOCK_CACHE, STREAMS, MemoryBudget
from pikdav.pikpak.segments import BlockCache

MIB = 1 << 20


def test_the_cache_lets_go_of_its_oldest_pieces_when_a_stream_needs_room():
    memory = MemoryBudget(4 * MIB)
    cache = BlockCache(64 * MIB, memory)
    for n in range(4):
        cache.put("film", n * MIB, bytes(MIB))
    assert memory.in_use == memory.held[BLOCK_CACHE] == 4 * MIB

    assert memory.take(2 * MIB, holder=STREAMS) == 2 * MIB  # the cache made room
    assert memory.in_use == 4 * MIB and cache.size == 2 * MIB
    assert cache.get("film", 0) is None and cache.get("film", 3 * MIB) is not None

    # A stream is never given more than is left, and less than it can use is nothing.
    assert memory.take(4 * MIB, least=MIB, holder=STREAMS) == 2 * MIB
    assert memory.take(MIB, holder=STREAMS) == 0
    assert cache.size == 0 and memory.refusals[STREAMS] == 2


def test_a_piece_that_does_not_fit_is_not_kept_and_every_byte_comes_back():
    memory = MemoryBudget(2 * MIB)
    cache = BlockCache(64 * MIB, memory)
    assert memory.take(MIB + 1, holder=STREAMS) == MIB + 1
    cache.put("film", 0, bytes(MIB))  # does not fit beside the stream's bytes
    assert cache.get("film", 0) is None and memory.in_use == MIB + 1
    memory.give_back(MIB + 1, holder=STREAMS)
    cache.put("film", 0, bytes(MIB))
    cache.put("film", 0, bytes(2 * MIB))  # the longer piece replaces it
    assert memory.in_use == cache.size == 2 * MIB
    cache.reclaim(1)
    assert memory.in_use == cache.size == 0 and memory.peak == 2 * MIB


_BUFFERS_FREED = """
import os
from pikdav.pikpak.memory import buffer

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

big = bytearray(16 << 20)  # a freed block this large raises glibc's mmap threshold
del big
before = rss()
held = [buffer(4 << 20) for _ in range(8)]  # a stream's segments, filled
step = bytes([7]) * 65536
for piece in held:
    for at in range(0, len(piece), len(step)):
        piece[at : at + len(step)] = step
full = rss()
del held, piece
print(before, full, rss())
"""


def test_a_streams_buffers_go_back_to_the_system_the_moment_they_are_let_go():
    # In a fresh interpreter: the RSS of this one depends on the tests before.
    out = subprocess.run(
        [sys.executable, "-c", _BUFFERS_FREED], capture_output=True, text=True, check=True
    ).stdout
    before, full, after = (int(n) for n in out.split())
    assert full - before >= 30 * MIB  # 32 MiB written...
    assert after - before < 2 * MIB  # ...and none of it left in the process after, no trim
