"""A process that writes blocks into a disk cache for ever, to be killed (SIGKILL) mid-write.

    python -m tests.support.disk_writer DIRECTORY SEED

Each block's bytes follow from its file and offset (:func:`expected`), so a reader can tell
any wrong byte. A line ``written N`` goes to stdout after each batch has reached the disk.
"""

from __future__ import annotations

import functools
import random
import sys
from pathlib import Path

from pikdav.vfs.disk import DiskCache, content_key

FILES = 5
SIZE = 40 << 20  # heads and tails of 8 MiB each are kept


def gcid(number: int) -> str:
    return f"{number:040X}"


PERIOD = (1 << 20) + 12345  # not a multiple of any cell: a block in a wrong place shows


@functools.cache
def _pattern(number: int) -> bytes:
    return random.Random(number).randbytes(PERIOD)


def expected(number: int, start: int, end: int) -> bytes:
    """The bytes ``start`` to ``end`` of file ``number`` (its pattern, repeated)."""
    pattern, out, pos = _pattern(number), bytearray(), start
    while pos < end:
        at = pos % PERIOD
        piece = pattern[at : at + end - pos]
        out += piece
        pos += len(piece)
    return bytes(out)


def main() -> None:
    directory, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    disk = DiskCache(directory, 16 << 20)
    written = 0
    while True:
        for _ in range(8):
            number = rng.randrange(FILES)
            start = rng.choice([0, SIZE - (8 << 20)]) + rng.randrange(0, 7 << 20)
            length = rng.randrange(1, 1 << 20)
            disk.put_block(
                content_key(gcid(number), SIZE), start, expected(number, start, start + length)
            )
            written += 1
        disk.flush()
        print(f"written {written}", flush=True)


if __name__ == "__main__":
    main()
