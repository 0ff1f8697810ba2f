"""Upload bodies on local disk: hashed as they arrive, bounded, and told apart when cut."""

from __future__ import annotations

import os

import pytest

from pikdav.pikpak.gcid import gcid_of_bytes
from pikdav.vfs.errors import TooLarge
from pikdav.vfs.spool import SPOOL_PREFIX, SpoolFile, SpoolSettings

BODY = os.urandom(3 << 20) + b"tail"


def arrive(spool: SpoolFile, data: bytes, chunk: int = 65536) -> SpoolFile:
    for at in range(0, len(data), chunk):
        spool.write(data[at : at + chunk])
    spool.close()
    return spool


@pytest.mark.parametrize("announced", [len(BODY), None], ids=["content-length", "chunked"])
def test_the_hash_is_pikpaks_whether_the_size_was_announced_or_not(tmp_path, announced):
    spool = arrive(
        SpoolFile(SpoolSettings(str(tmp_path)), announced, exact=announced is not None), BODY
    )
    assert spool.complete and spool.size == len(BODY)
    assert spool.gcid() == gcid_of_bytes(BODY)
    assert spool.path.read_bytes() == BODY and spool.path.name.startswith(SPOOL_PREFIX)


def test_a_body_shorter_than_announced_is_a_cut_upload(tmp_path):
    spool = arrive(SpoolFile(SpoolSettings(str(tmp_path)), len(BODY), exact=True), BODY[:-1])
    assert not spool.complete
    spool.discard()
    assert list(tmp_path.iterdir()) == []


def test_the_size_limit_holds_for_announced_and_for_chunked_bodies(tmp_path):
    settings = SpoolSettings(str(tmp_path), max_size=1 << 20)
    with pytest.raises(TooLarge):
        SpoolFile(settings, 2 << 20, exact=True)  # refused before a byte arrives
    chunked = SpoolFile(settings, None)
    with pytest.raises(TooLarge):
        arrive(chunked, BODY)
    chunked.discard()
    assert list(tmp_path.iterdir()) == []
