"""Finder on macOS 15.4+ replayed against a real gateway: mount, browse, copy a folder in,
rename, delete, QuickLook of a video.

The sequence is written down from public traces and documentation, not from pikdav's answers:
- mount: OPTIONS from ``WebDAVLib/`` then from ``WebDAVFS/``, then PROPFINDs of the root
  (9001/copyparty#1242, a server log of Finder on macOS 26.2; dgraziotin/
  docker-nginx-webdav-nononsense#6 for the two User-Agents); the properties webdavfs asks
  for, quota among them (robbiehanson/CocoaHTTPServer#8 logs ``quota-available-bytes``,
  ``quota-used-bytes``, ``quota``, ``quotaused``, ``appledoubleheader``);
- the hint files at the root, ``.localized`` in every folder and ``._name`` beside every name
  (messense/dav-server-rs doc/APPLE-Finder-hints.md);
- a copy: LOCK of the new name, a chunked PUT with ``X-Expected-Entity-Length``, UNLOCK, then
  the AppleDouble ``._name`` (sabre.io/dav/clients/finder; WsgiDAV commit dd3e53a on
  Finder's chunked PUT);
- rename is a MOVE with an absolute Destination, delete a DELETE of the folder (RFC 4918).
"""

from __future__ import annotations

from tests.support.clientseq import FINDER, QUOTA_PROPFIND, STAT_PROPFIND, finder_copy_in
from tests.support.davclients import put_files
from tests.support.replay import (
    Step,
    body_is,
    header_has,
    header_is,
    listed,
    not_listed,
    prop_absent,
    prop_is,
    replay,
)

FILM = bytes(range(256)) * 8192  # 2 MiB
HINTS = (
    "/pikpak/.metadata_never_index",
    "/pikpak/.ql_disablethumbnails",
    "/pikpak/.ql_disablecache",
)


def mount_steps() -> list[Step]:
    return [
        Step("OPTIONS", "/pikpak/", 200, {"User-Agent": "WebDAVLib/1.3"}),
        Step("OPTIONS", "/pikpak/", 200, checks=(header_has("DAV", "2"),)),
        Step(
            "PROPFIND",
            "/pikpak/",
            207,
            {"Depth": "0"},
            STAT_PROPFIND,
            checks=(prop_is("/pikpak/", "resourcetype", None),),
        ),
        # The answer that made Finder wait 90 s: no quota properties for macOS 15.4+.
        Step(
            "PROPFIND",
            "/pikpak/",
            207,
            {"Depth": "0"},
            QUOTA_PROPFIND,
            checks=(
                prop_absent("/pikpak/", "quota-available-bytes"),
                prop_absent("/pikpak/", "quota-used-bytes"),
            ),
        ),
        *[
            Step(
                "PROPFIND",
                hint,
                207,
                {"Depth": "0"},
                STAT_PROPFIND,
                checks=(prop_is(hint, "getcontentlength", "0"),),
            )
            for hint in HINTS
        ],
        Step(
            "PROPFIND",
            "/pikpak/",
            207,
            {"Depth": "1"},
            STAT_PROPFIND,
            checks=(listed("/pikpak/Films/"), not_listed(*HINTS)),
        ),
        Step("PROPFIND", "/pikpak/.localized", 404, {"Depth": "0"}, STAT_PROPFIND),
        Step("PROPFIND", "/pikpak/._Films", 404, {"Depth": "0"}, STAT_PROPFIND),
    ]


def test_finder_mounts_browses_copies_renames_deletes_and_quicklooks(emulator, gateway):
    put_files(emulator, {"Films/film.mp4": FILM})
    note = b"holiday notes\n" * 1000
    steps = [
        *mount_steps(),
        # browse
        Step(
            "PROPFIND",
            "/pikpak/Films/",
            207,
            {"Depth": "1"},
            STAT_PROPFIND,
            checks=(prop_is("/pikpak/Films/film.mp4", "getcontentlength", str(len(FILM))),),
        ),
        Step("PROPFIND", "/pikpak/Films/.localized", 404, {"Depth": "0"}, STAT_PROPFIND),
        Step("PROPFIND", "/pikpak/Films/._film.mp4", 404, {"Depth": "0"}, STAT_PROPFIND),
        # copy a folder in
        Step("PROPFIND", "/pikpak/Holiday", 404, {"Depth": "0"}, STAT_PROPFIND),
        Step("MKCOL", "/pikpak/Holiday/", 201),
        Step(
            "PROPFIND",
            "/pikpak/Holiday/",
            207,
            {"Depth": "1"},
            STAT_PROPFIND,
            checks=(listed("/pikpak/Holiday/", exactly=True),),
        ),
        *finder_copy_in("/pikpak/Holiday/notes.txt", note),
        Step(
            "PROPFIND",
            "/pikpak/Holiday/",
            207,
            {"Depth": "1"},
            STAT_PROPFIND,
            checks=(prop_is("/pikpak/Holiday/notes.txt", "getcontentlength", str(len(note))),),
        ),
        # rename
        Step(
            "MOVE",
            "/pikpak/Holiday/notes.txt",
            201,
            {"Destination": "{url}/pikpak/Holiday/renamed.txt", "Overwrite": "F"},
        ),
        Step(
            "MOVE",
            "/pikpak/Holiday/._notes.txt",
            201,
            {"Destination": "{url}/pikpak/Holiday/._renamed.txt", "Overwrite": "F"},
        ),
        Step("GET", "/pikpak/Holiday/renamed.txt", 200, checks=(body_is(note),)),
        Step("PROPFIND", "/pikpak/Holiday/notes.txt", 404, {"Depth": "0"}, STAT_PROPFIND),
        # delete
        Step("DELETE", "/pikpak/Holiday/", 204),
        Step("PROPFIND", "/pikpak/Holiday/", 404, {"Depth": "0"}, STAT_PROPFIND),
        # QuickLook of the video: its first bytes, its end, then a stretch to play
        Step(
            "GET",
            "/pikpak/Films/film.mp4",
            206,
            {"Range": "bytes=0-1"},
            checks=(header_is("Content-Range", f"bytes 0-1/{len(FILM)}"), body_is(FILM[:2])),
        ),
        Step(
            "GET",
            "/pikpak/Films/film.mp4",
            206,
            {"Range": f"bytes={len(FILM) - 65536}-"},
            checks=(body_is(FILM[-65536:]),),
        ),
        Step(
            "GET",
            "/pikpak/Films/film.mp4",
            206,
            {"Range": "bytes=0-1048575"},
            checks=(body_is(FILM[:1048576]),),
        ),
    ]
    replay(gateway.url, FINDER, gateway.auth, steps)
