"""cadaver, the command-line WebDAV client (neon), in a scripted session against the gateway.

cadaver reads its commands from stdin and its credentials from ``~/.netrc`` in a throw-away
HOME; ``get`` writes into its working directory. We check what the user sees: listings with
names and sizes, downloads with the right bytes, ``cd`` into folders with spaces and accents,
and a clear failure for a missing file.
"""

from __future__ import annotations

import random
import re

import pytest

from tests.support.davclients import cadaver, put_files

TREE: dict[str, bytes] = {
    "My Documents/notes 2024.txt": b"line one\nline two\n",
    "My Documents/Q&A draft.md": "# Fragen & Antworten\nÄÖÜ ß\n".encode(),
    "Filme/Amélie (2001).mkv": random.Random(1).randbytes(200_000),
    "Filme/Trailer 100%.mp4": random.Random(2).randbytes(4_097),
    "Big Files/random.bin": random.Random(3).randbytes(1024 * 1024 + 1),
    "empty.txt": b"",
}

# "Coll:   Filme                                  0  Nov 21 22:07"
# "        notes 2024.txt                        18  Nov 21 22:07"
_ROW = re.compile(r"^(Coll:|     )\s+(.*\S)\s+(\d+)\s+\w{3}\s+\d+\s+\S+$")


@pytest.fixture
def drive(emulator):
    put_files(emulator, TREE)
    return emulator


def listing(out: str, collection: str) -> dict[str, tuple[bool, int]]:
    """The rows cadaver printed for ``ls`` of ``collection``: name -> (is folder, size)."""
    marker = f"Listing collection `{collection}': succeeded."
    assert marker in out, out
    rows = {}
    for line in out.split(marker, 1)[1].splitlines()[1:]:
        m = _ROW.match(line)
        if not m:
            break
        rows[m[2]] = (m[1] == "Coll:", int(m[3]))
    return rows


def test_cadaver_lists_and_gets(drive, make_gateway, home):
    gw = make_gateway(download="proxy")
    out = cadaver(
        f"{gw.url}/pikpak/",
        home,
        "ls",
        'cd "My Documents"',
        "ls",
        'get "notes 2024.txt"',
        'get "Q&A draft.md"',
        "cd ../Filme",
        "ls",
        'get "Amélie (2001).mkv"',
        'get "Trailer 100%.mp4"',
        'cd "/pikpak/Big Files/"',
        "get random.bin",
        "cd ..",
        "get empty.txt",
    )
    assert listing(out, "/pikpak/") == {
        "Big Files": (True, 0),
        "Filme": (True, 0),
        "My Documents": (True, 0),
        "empty.txt": (False, 0),
    }
    assert listing(out, "/pikpak/My Documents/") == {
        "notes 2024.txt": (False, len(TREE["My Documents/notes 2024.txt"])),
        "Q&A draft.md": (False, len(TREE["My Documents/Q&A draft.md"])),
    }
    assert listing(out, "/pikpak/Filme/") == {
        "Amélie (2001).mkv": (False, 200_000),
        "Trailer 100%.mp4": (False, 4_097),
    }
    assert "dav:/pikpak/Big Files/>" in out
    assert out.count("succeeded.") == 3 + 6  # three listings, six downloads
    for path, data in TREE.items():
        name = path.rsplit("/", 1)[-1]
        assert (home / name).read_bytes() == data, name


def test_cadaver_cat_and_missing_file(drive, make_gateway, home):
    gw = make_gateway(download="proxy")
    out = cadaver(
        f"{gw.url}/pikpak/My%20Documents/",
        home,
        'cat "notes 2024.txt"',
        "get nope.txt",
        "cd Nowhere",
    )
    assert "dav:/pikpak/My Documents/>" in out
    assert "line one\nline two\n" in out
    assert re.search(
        r"Downloading `/pikpak/My Documents/nope\.txt'[^\n]*failed:\n404 Not Found", out
    )
    assert re.search(r"Could not access /pikpak/My%20Documents/Nowhere/[^\n]*\n404 Not Found", out)
    # (cadaver itself creates the local file before asking, and leaves it empty on failure.)
    assert (home / "nope.txt").read_bytes() == b""


def test_cadaver_gets_bytes_in_auto_mode_on_the_lan(drive, make_gateway, home):
    gw = make_gateway(download="auto", redirect_networks=["127.0.0.0/8"])
    out = cadaver(f"{gw.url}/pikpak/Filme/", home, 'get "Amélie (2001).mkv"')
    assert (home / "Amélie (2001).mkv").read_bytes() == TREE["Filme/Amélie (2001).mkv"], out
