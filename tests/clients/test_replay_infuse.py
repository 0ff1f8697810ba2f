"""Infuse replayed against a real gateway: browse a share, play a film, seek five times.

Written down from public traces, not from pikdav's answers: Infuse names itself
``Infuse-Direct/<version>`` and asks for the file's URL again on every seek, so that behind
a redirect every seek is a new 302 (bpking1/embyExternalUrl#308 and #472); it follows the
302 to the CDN with its Range (RFC 9110 §15.4.3 keeps request headers on a redirect);
players built on FFmpeg read an MKV's start, its end (the index), then the start again
(mpv's and FFmpeg's Matroska reader; dgherman/nzbdav2#33 on players reading the index at
the end).

Each seek under a redirect must be answered from the link cache: one link asked of PikPak
for the whole session, whatever the number of seeks.
"""

from __future__ import annotations

import pytest
import requests

from tests.support.clientseq import INFUSE, STAT_PROPFIND
from tests.support.davclients import put_files
from tests.support.gateway import PIKPAK_USER
from tests.support.replay import Answer, Step, body_is, header_is, listed, replay

FILM = bytes(range(251)) * 12_000  # ~3 MB, a prime period: every offset is told apart
SIZE = len(FILM)
PLAY_AND_SEEKS = [0, SIZE - 65_536, 0, 1_200_000, 300_000, 2_500_000, 40_000, 1_800_000]


def links_issued(emulator) -> int:
    snapshot = emulator.world.stats.snapshot()["accounts"].get(PIKPAK_USER, {})
    return snapshot.get("link_issued", 0)


def from_the_cdn(start: int):
    """Infuse follows the 302 with its Range; the CDN must give the bytes from ``start``."""

    def check(answer: Answer, state: dict) -> None:
        location = answer.header("Location")
        assert location.startswith("http"), f"Location: {location!r}"
        cdn = requests.get(location, headers={"Range": f"bytes={start}-"}, timeout=30)
        assert cdn.status_code == 206, cdn.status_code
        assert cdn.content == FILM[start:], "the CDN's bytes are not the film's"

    return check


def seek_steps(redirect: bool) -> list[Step]:
    """The play and the seeks: each a GET of the film from the offset on."""
    film, steps = "/pikpak/Films/film.mkv", []
    for start in PLAY_AND_SEEKS:
        headers = {"Range": f"bytes={start}-", "Accept": "*/*"}
        checks = (
            (from_the_cdn(start),)
            if redirect
            else (header_is("Content-Range", f"bytes {start}-{SIZE - 1}/{SIZE}"),
                  body_is(FILM[start:]))
        )  # fmt: skip
        steps.append(Step("GET", film, 302 if redirect else 206, headers, checks=checks))
    return steps


@pytest.mark.parametrize("download", ["redirect", "proxy"])
def test_infuse_browses_plays_and_seeks_five_times_on_one_link(emulator, make_gateway, download):
    gw = make_gateway(download=download)
    put_files(emulator, {"Films/film.mkv": FILM, "Films/film.srt": b"1\n00:00:01,000 --> x\n"})
    before = links_issued(emulator)
    films = "/pikpak/Films/"
    steps = [
        Step("PROPFIND", "/pikpak/", 207, {"Depth": "1"}, STAT_PROPFIND, checks=(listed(films),)),
        Step("PROPFIND", films, 207, {"Depth": "1"}, STAT_PROPFIND,
             checks=(listed(films + "film.mkv", films + "film.srt"),)),
        *seek_steps(redirect=download == "redirect"),
    ]  # fmt: skip
    replay(gw.url, INFUSE, gw.auth, steps)
    assert links_issued(emulator) - before == 1  # for the play; the seeks asked for none
