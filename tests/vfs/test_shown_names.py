"""How names PikPak holds are shown when a path cannot carry them."""

from __future__ import annotations

import dataclasses

from pikdav.pikpak.types import File
from pikdav.vfs.names import MAX_NAME, shown_name, unfit_character
from pikdav.vfs.tree import disambiguate


def file(name: str, ident: str, created: int) -> File:
    when = float(created)  # Unix seconds, as File holds times
    return File(
        ident, name, "", False, 1, when, when, "H" * 40, "text/plain", "PHASE_TYPE_COMPLETE", False
    )


def test_control_characters_are_shown_as_control_pictures():
    assert shown_name("a\x00b\x01c\x1fd\x7fe") == "a\u2400b\u2401c\u241fd\u2421e"
    assert shown_name("tab\there") == "tab\u2409here"
    assert shown_name("c1\x85 and \ufffe") == "c1\ufffd and \ufffd"
    assert shown_name("Résumé — ok.txt") == "Résumé — ok.txt"
    assert unfit_character(shown_name("x\x01\x7f\x9f\ud800")) is None


def test_a_shown_name_that_clashes_with_a_real_one_is_numbered():
    listing = disambiguate([file("a\u2401b.txt", "1", 10), file("a\x01b.txt", "2", 20)])
    assert {e.name: e.id for e in listing.entries} == {"a\u2401b.txt": "1", "a\u2401b (2).txt": "2"}


def test_numbered_names_stay_within_pikpaks_limit():
    long_name = "x" * 251 + ".mkv"
    no_ext = "y" * 255
    listing = disambiguate(
        [
            file(long_name, "1", 1),
            file(long_name, "2", 2),
            file(no_ext, "3", 3),
            file(no_ext, "4", 4),
        ]
    )
    names = {e.id: e.name for e in listing.entries}
    assert names["1"] == long_name and names["3"] == no_ext
    assert names["2"].endswith("x (2).mkv") and len(names["2"]) == MAX_NAME
    assert names["4"].endswith("y (2)") and len(names["4"]) == MAX_NAME


def test_a_content_type_xml_cannot_carry_is_not_listed():
    # PikPak's own type is shown when XML can carry it; otherwise the name decides.
    odd = dataclasses.replace(file("a.mkv", "1", 1), mime_type="video/\x01x-matroska")
    assert disambiguate([odd]).entries[0].content_type == "video/x-matroska"
    fine = dataclasses.replace(file("b.bin", "2", 1), mime_type="video/mp4")
    assert disambiguate([fine]).entries[0].content_type == "video/mp4"
