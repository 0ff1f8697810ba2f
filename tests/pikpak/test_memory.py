"""The memory budget as its holders see it: the block cache makes room for a stream's read-ahead,
keeps nothing that does not fit, and gives every byte back when it lets go."""

from __future__ import annotations

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
