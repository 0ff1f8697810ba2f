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

from tests.support.clientseq import FINDER, QUOTA_PROPFIND, STAT_PROPFIND, chunks, finder_copy_in
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
M, H, F = "/pikpak/", "/pikpak/Holiday/", "/pikpak/Films/film.mp4"
HINTS = tuple(
    f"{M}{h}" for h in (".metadata_never_index", ".ql_disablethumbnails", ".ql_disablecache")
)
D0, D1, STAT = {"Depth": "0"}, {"Depth": "1"}, STAT_PROPFIND
NO_QUOTA = (prop_absent(M, "quota-available-bytes"), prop_absent(M, "quota-used-bytes"))


def moved(to: str) -> dict[str, str]:
    return {"Destination": "{url}" + to, "Overwrite": "F"}


# fmt: off
def mount_steps() -> list[Step]:
    return [
        Step("OPTIONS", M, 200, {"User-Agent": "WebDAVLib/1.3"}),
        Step("OPTIONS", M, 200, checks=(header_has("DAV", "2"),)),
        Step("PROPFIND", M, 207, D0, STAT, checks=(prop_is(M, "resourcetype", None),)),
        # the answer that made Finder wait 90 s: no quota properties for macOS 15.4+
        Step("PROPFIND", M, 207, D0, QUOTA_PROPFIND, checks=NO_QUOTA),
        *[Step("PROPFIND", h, 207, D0, STAT, checks=(prop_is(h, "getcontentlength", "0"),))
          for h in HINTS],
        Step("PROPFIND", M, 207, D1, STAT, checks=(listed(M + "Films/"), not_listed(*HINTS))),
        Step("PROPFIND", M + ".localized", 404, D0, STAT),
        Step("PROPFIND", M + "._Films", 404, D0, STAT),
    ]


def test_finder_mounts_browses_copies_renames_deletes_and_quicklooks(emulator, gateway):
    put_files(emulator, {"Films/film.mp4": FILM})
    note, photo, n = b"holiday notes\n" * 1000, bytes(range(200)) * 900, len(FILM)
    steps = [
        *mount_steps(),
        # browse
        Step("PROPFIND", M + "Films/", 207, D1, STAT,
             checks=(prop_is(F, "getcontentlength", str(n)),)),
        Step("PROPFIND", M + "Films/.localized", 404, D0, STAT),
        Step("PROPFIND", M + "Films/._film.mp4", 404, D0, STAT),
        # copy a folder in: the folder, a file, a subfolder with a photo, Finder's .DS_Store
        Step("PROPFIND", H, 404, D0, STAT),
        Step("MKCOL", H, 201),
        Step("PROPFIND", H, 207, D1, STAT, checks=(listed(H, exactly=True),)),
        *finder_copy_in(H + "notes.txt", note),
        Step("MKCOL", H + "Day 1/", 201),
        *finder_copy_in(H + "Day 1/beach.jpg", photo),
        Step("PUT", H + ".DS_Store", 201, {"X-Expected-Entity-Length": "6148"},
             chunks(bytes(6148))),
        Step("PROPFIND", H, 207, D1, STAT,
             checks=(prop_is(H + "notes.txt", "getcontentlength", str(len(note))),
                     listed(H + "Day%201/"))),
        Step("GET", H + "Day 1/beach.jpg", 200, checks=(body_is(photo),)),
        # rename: the file, then its AppleDouble
        Step("MOVE", H + "notes.txt", 201, moved(H + "renamed.txt")),
        Step("MOVE", H + "._notes.txt", 201, moved(H + "._renamed.txt")),
        Step("GET", H + "renamed.txt", 200, checks=(body_is(note),)),
        Step("PROPFIND", H + "notes.txt", 404, D0, STAT),
        # delete
        Step("DELETE", H, 204),
        Step("PROPFIND", H, 404, D0, STAT),
        # QuickLook of the video (space bar): its first bytes, its end (the index), then more
        Step("GET", F, 206, {"Range": "bytes=0-1"},
             checks=(header_is("Content-Range", f"bytes 0-1/{n}"), body_is(FILM[:2]))),
        Step("GET", F, 206, {"Range": f"bytes={n - 65536}-"}, checks=(body_is(FILM[-65536:]),)),
        Step("GET", F, 206, {"Range": "bytes=0-1048575"}, checks=(body_is(FILM[:1048576]),)),
    ]
    replay(gateway.url, FINDER, gateway.auth, steps)
# fmt: on
