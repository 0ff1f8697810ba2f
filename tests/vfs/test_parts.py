"""The reading and writing parts of a mount (vfs.parts) on their own: which bytes the block
caches take for the same, and where an upload's body arrives."""

from __future__ import annotations

import dataclasses

from pikdav.pikpak import http
from pikdav.vfs.disk import content_key
from pikdav.vfs.parts import Reading, Writing
from pikdav.vfs.pending import PendingUploads
from pikdav.vfs.spool import SpoolSettings
from pikdav.vfs.tree import Entry

FILM = Entry("id-1", "film.mkv", False, 1000, 0.0, 0.0, "etag-1", "video/x-matroska", hash="H")


def reading(*, same_bytes_by_hash: bool) -> Reading:
    return Reading(http.cdn_session(http.Connection()), same_bytes_by_hash=same_bytes_by_hash)


def test_stored_bytes_are_known_by_their_hash_so_a_renamed_copy_finds_the_same_blocks():
    by_hash = reading(same_bytes_by_hash=True)
    copy = dataclasses.replace(FILM, id="id-2", name="copy.mkv", etag="etag-2")
    assert by_hash.content_key(FILM) == by_hash.content_key(copy) == content_key("H", 1000)


def test_a_transcoded_view_or_a_file_still_uploading_is_known_by_its_id_and_etag():
    transcoded = reading(same_bytes_by_hash=False)
    assert transcoded.content_key(FILM) == "id-1:etag-1"
    uploading = dataclasses.replace(FILM, uploading=True)
    assert reading(same_bytes_by_hash=True).content_key(uploading) == "id-1:etag-1"


def test_with_background_uploads_a_body_arrives_where_it_waits_within_the_same_cap(tmp_path):
    spool = SpoolSettings(directory=str(tmp_path / "temp"), max_size=5 << 20)
    waits = PendingUploads(tmp_path / "uploads")
    assert Writing(spool=spool).spool == spool
    assert Writing(spool=spool, pending=waits).spool == SpoolSettings(
        directory=str(tmp_path / "uploads"), max_size=5 << 20
    )
