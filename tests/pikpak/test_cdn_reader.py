"""The ranged reader of a link against the emulator's download server over HTTP: the bytes
asked for and no others, a seek, a dropped connection resumed, an expired link replaced, and
a server that cannot be had given up on with the count of bytes delivered."""

from __future__ import annotations

import pytest

from pikdav.pikpak import http
from pikdav.pikpak.cdn import LinkReader, StreamGone
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.retry import RetryPolicy
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control

USER, PASSWORD = "alice@example.com", "correct horse"
SIZE = 8 << 20


@pytest.fixture
def film(emulator):
    """(reader factory, the file's bytes, the link calls made)."""
    made = control(
        emulator.base_url, "files", {"username": USER, "path": "film.mkv", "size": SIZE, "seed": 3}
    )
    data = emulator.world.blobs.get(made["hash"]).read_at(0, SIZE)
    session = Session(
        Credentials(USER, PASSWORD),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )
    drive, cdn = Drive(session), http.cdn_session(session.connection)
    asked: list[bool] = []
    cached = []

    def link(fresh: bool):
        # As the mount's link cache does: the same link until a fresh one is asked for.
        asked.append(fresh)
        if fresh or not cached:
            cached[:] = [drive.download_link(made["id"])]
        return cached[0]

    def reader(**options) -> LinkReader:
        return LinkReader(cdn, SIZE, link, name="film.mkv", **options)

    return reader, data, asked


def read_all(reader: LinkReader, count: int | None = None) -> bytes:
    parts, got = [], 0
    while count is None or got < count:
        chunk = reader.read(1 << 20 if count is None else min(1 << 20, count - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def test_a_range_reads_exactly_its_bytes_and_a_seek_starts_a_new_request(film):
    reader, data, _ = film
    with reader(start=1000, end=5000) as part:
        part.seek(1000)
        assert read_all(part, 4000) == data[1000:5000]
        assert part.reads == 1
        part.seek(3 << 20)  # outside the planned range: read on to the end of the file
        assert read_all(part) == data[3 << 20 :]
        assert part.reads == 2 and part.delivered == 4000 + SIZE - (3 << 20)


def test_dropped_connections_are_resumed_at_the_byte_reached(emulator, film):
    reader, data, asked = film
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 1 << 20, "times": 3})
    with reader() as whole:
        assert read_all(whole) == data
        assert whole.reads == 4
    assert asked == [False] * 4  # a drop is not a reason for a new link


def test_an_expired_link_is_replaced_once_and_no_byte_is_lost(emulator, film):
    reader, data, asked = film
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 2 << 20, "times": 1})
    with reader() as whole:
        head = whole.read(1 << 20)
        control(emulator.base_url, "expire-links", {"username": USER})
        assert head + read_all(whole) == data
    assert asked.count(True) == 1


def test_a_server_that_keeps_dropping_is_given_up_on_with_what_was_delivered(emulator, film):
    reader, data, _ = film
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 1 << 20})
    got = bytearray()
    with reader(resumes=RetryPolicy(attempts=3, seconds=60, backoff=0, jitter=0)) as whole:
        with pytest.raises(StreamGone) as gone:
            while chunk := whole.read(1 << 16):
                got += chunk
    assert gone.value.delivered == len(got) and 0 < len(got) < SIZE
    assert bytes(got) == data[: len(got)]
