"""An iOS file app (FE File Explorer, Documents by Readdle, VidHub, nPlayer) replayed against
a real gateway: browse, look at a photo and a video, upload a photo with a chunked body.

Written down from public documentation and traces, not from pikdav's answers:
- iOS apps name CFNetwork and Darwin in their User-Agent (URLSession's default);
- media on iOS is read by byte ranges only: a server must answer Range with 206 and the
  right Content-Range (Apple's Safari Web Content Guide, "Configuring Your Server"); the
  player first asks ``bytes=0-1`` to learn the length from Content-Range, then reads on;
- HEAD before a download, for its length and whether ranges are taken;
- uploads from phones come chunked, with the length in ``X-Expected-Entity-Length`` (WsgiDAV
  4.3.0, #290/#291, on chunked PUTs; Finder sends the same header);
- players ask for ranges past the end of small files and expect 416 with ``bytes */size``
  (nzbdav-dev/nzbdav#451; RFC 9110 §15.5.17).
"""

from __future__ import annotations

import random

from tests.support.clientseq import FILES_APP, STAT_PROPFIND, chunks
from tests.support.davclients import put_files
from tests.support.replay import Step, body_is, header_has, header_is, listed, replay, size_is

PHOTO = random.Random(7).randbytes(180_000)
CLIP = random.Random(8).randbytes(700_000)
NEW = random.Random(9).randbytes(1_234_567)
D0, D1, STAT = {"Depth": "0"}, {"Depth": "1"}, STAT_PROPFIND


# fmt: off
def test_an_ios_file_app_browses_views_and_uploads_a_photo_chunked(emulator, gateway):
    put_files(emulator, {"Camera/IMG_0001.JPG": PHOTO, "Camera/clip.mov": CLIP})
    c = "/pikpak/Camera/"
    jpg, mov, heic = c + "IMG_0001.JPG", c + "clip.mov", c + "IMG_0002.HEIC"
    n = len(CLIP)

    def ranged(first: int, last: int, data: bytes):
        return (header_is("Content-Range", f"bytes {first}-{last}/{n}"), body_is(data))

    steps = [
        Step("PROPFIND", "/pikpak/", 207, D1, STAT, checks=(listed(c),)),
        Step("PROPFIND", c, 207, D1, STAT, checks=(size_is(jpg, len(PHOTO)),)),
        # a photo: HEAD, then the whole of it
        Step("HEAD", jpg, 200, checks=(header_is("Content-Length", str(len(PHOTO))),
                                       header_has("Accept-Ranges", "bytes"),
                                       header_has("Content-Type", "image/jpeg"),
                                       header_has("ETag", ""))),
        Step("GET", jpg, 200, checks=(body_is(PHOTO),)),
        # a video: the two-byte probe, ranges on (one past its end), a start past its end
        Step("GET", mov, 206, {"Range": "bytes=0-1"}, checks=ranged(0, 1, CLIP[:2])),
        Step("GET", mov, 206, {"Range": "bytes=0-262143"}, checks=ranged(0, 262143, CLIP[:262144])),
        Step("GET", mov, 206, {"Range": f"bytes=262144-{n + 500_000}"},
             checks=ranged(262144, n - 1, CLIP[262144:])),
        Step("GET", mov, 416, {"Range": f"bytes={n}-{n + 65535}"},
             checks=(header_is("Content-Range", f"bytes */{n}"),)),
        # upload a photo, chunked, its length announced
        Step("PUT", heic, 201,
             {"Content-Type": "image/heic", "X-Expected-Entity-Length": str(len(NEW))},
             chunks(NEW, 32768)),
        Step("PROPFIND", heic, 207, D0, STAT, checks=(size_is(heic, len(NEW)),)),
        Step("GET", heic, 200, checks=(body_is(NEW),)),
    ]
    replay(gateway.url, FILES_APP, gateway.auth, steps)
# fmt: on
