"""rclone's WebDAV backend, unchanged, reading a PikPak drive through the gateway.

The emulator holds a tree of ~20 files with known bytes (nested folders, accents, CJK, emoji,
spaces, ``#``/``%``/``&``/``+``/``;`` in names, a 0-byte file and a 3 MiB file). rclone talks to
the gateway through an on-the-fly ``:webdav:`` remote (vendor ``other``), exactly as a user would
configure it, and we check what the user sees: the listing, the downloaded bytes, ``rclone check``
and a ranged ``rclone cat`` - once with the gateway proxying the bytes and once redirecting
rclone to the (emulated) CDN.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from tests.support.davclients import Rclone, dirs_of, put_files, read_tree

BIG = "Big Files/random 3MiB.bin"


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


TREE: dict[str, bytes] = {
    "Filme/Amélie (2001).mkv": _bytes(1, 150_000),
    "Filme/千と千尋の神隠し (2001).mkv": _bytes(2, 70_001),
    "Filme/Le Fabuleux Destin/Bonus & Extras/Making-of #1.mp4": _bytes(3, 33_333),
    "Filme/Le Fabuleux Destin/Bonus & Extras/Trailer 100% [HD].mp4": _bytes(4, 4_096),
    "Musik/Björk/Homogenic/01 - Hunter.flac": _bytes(5, 65_536),
    "Musik/Björk/Homogenic/02 - Jóga.flac": _bytes(6, 65_537),
    "Musik/Björk/Homogenic/cover.jpg": _bytes(7, 12_345),
    "Musik/Sigur Rós/Ágætis byrjun.ogg": _bytes(8, 9_999),
    "My Documents/notes 2024.txt": b"line one\nline two\n",
    "My Documents/Q&A; draft+final=v2.md": "# Fragen & Antworten\n\nÄÖÜ ß\n".encode(),
    "My Documents/it's a file, really.txt": b"apostrophe and comma\n",
    "My Documents/  two leading spaces.txt": b"leading spaces\n",
    "Photos/2023/IMG_0001.JPG": _bytes(9, 20_000),
    "Photos/2023/img_0001.jpg": _bytes(10, 20_001),
    "Photos/emoji 😀 party.png": _bytes(11, 777),
    "deep/a/b/c/d/e/leaf.txt": b"deep leaf\n",
    "README": b"no extension\n",
    ".dotfile": b"dot file\n",
    "empty.txt": b"",
    BIG: _bytes(12, 3 * 1024 * 1024),
}


@pytest.fixture
def drive(emulator):
    """The emulator with TREE in alice's drive."""
    put_files(emulator, TREE)
    return emulator


# Each request and each response head is one atomic log record in ``--dump headers`` output
# (the "HTTP REQUEST (req 0x..)" banners are separate records and may interleave, so they are
# not used to pair them).
_REQUEST = re.compile(r"DEBUG : (\w+) (\S+) HTTP/1\.1\nHost: (\S+)\n")
_RESPONSE = re.compile(r"DEBUG : HTTP/1\.1 (\d{3})[^\n]*\n((?:[\w-]+: [^\n]*\n)*)")


def dumped(stderr: bytes) -> tuple[list[tuple[str, str, str]], list[tuple[int, str]]]:
    """Requests (method, host, path) and responses (status, Location) rclone dumped."""
    text = stderr.decode("utf-8", "replace").replace("\r\n", "\n")
    requests = [(m[1], m[3], m[2]) for m in _REQUEST.finditer(text)]
    responses = []
    for m in _RESPONSE.finditer(text):
        location = re.search(r"^Location: (\S+)", m[2], re.M)
        responses.append((int(m[1]), location[1] if location else ""))
    return requests, responses


@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_rclone_lists_copies_and_checks_the_tree(drive, make_gateway, tmp_path, download):
    gw = make_gateway(download=download)
    rclone = Rclone(gw.url, tmp_path / "home")

    # lsjson -R: every folder and file, with the right sizes (PROPFIND Depth 1 per folder).
    listing = json.loads(rclone("lsjson", "-R", ":webdav:").stdout)
    files = {e["Path"]: e["Size"] for e in listing if not e["IsDir"]}
    folders = {e["Path"] for e in listing if e["IsDir"]}
    assert files == {path: len(data) for path, data in TREE.items()}
    assert folders == dirs_of(TREE)
    by_path = {e["Path"]: e for e in listing}
    assert by_path["Filme/Amélie (2001).mkv"]["Name"] == "Amélie (2001).mkv"
    assert by_path["Filme/Amélie (2001).mkv"]["MimeType"] == "video/x-matroska"

    # A listing of one folder with special characters in its path.
    sub = json.loads(rclone("lsjson", ":webdav:Filme/Le Fabuleux Destin/Bonus & Extras").stdout)
    assert sorted(e["Name"] for e in sub) == ["Making-of #1.mp4", "Trailer 100% [HD].mp4"]

    # copy: byte-identical files, and the bytes took the configured route.
    local = tmp_path / "copy"
    copied = rclone("copy", ":webdav:", str(local), "--dump", "headers")
    assert read_tree(local) == TREE
    requests, responses = dumped(copied.stderr)
    gateway_host = gw.url.removeprefix("http://")
    to_gateway = [
        path for method, host, path in requests if method == "GET" and host == gateway_host
    ]
    to_cdn = [path for method, host, path in requests if host != gateway_host]
    assert {
        "/pikpak/Filme/Am%C3%A9lie%20%282001%29.mkv",
        "/pikpak/Big%20Files/random%203MiB.bin",
    } <= set(to_gateway)
    assert len(to_gateway) >= sum(1 for data in TREE.values() if data)
    redirects = [location for status, location in responses if status == 302]
    if download == "proxy":
        assert redirects == []
        assert to_cdn == []
    else:
        # Every file GET is answered with a 302 to the CDN, which rclone follows; only the
        # 0-byte file is answered at once (there is nothing to fetch).
        assert to_gateway.count("/pikpak/empty.txt") == 1
        assert len(redirects) == len(to_gateway) - 1
        assert all(loc.startswith(f"{drive.base_url}/download/") for loc in redirects)
        assert len(to_cdn) == len(redirects)
        assert all(path.startswith("/download/") for path in to_cdn)
    assert {status for status, _ in responses} <= {200, 207, 302}

    # check --download: compares every byte both sides; 0 differences.
    checked = rclone("check", "--download", ":webdav:", str(local))
    report = checked.stderr.decode()
    assert "0 differences found" in report
    assert f"{len(TREE)} matching files" in report

    # ... and it does notice a difference, so the pass above means something.
    victim = local / "Musik/Björk/Homogenic/02 - Jóga.flac"
    victim.write_bytes(b"X" + TREE["Musik/Björk/Homogenic/02 - Jóga.flac"][1:])
    failed = rclone("check", "--download", ":webdav:", str(local), check=False)
    assert failed.returncode != 0
    assert "1 differences found" in failed.stderr.decode()


@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_rclone_cat_reads_ranges(drive, make_gateway, tmp_path, download):
    gw = make_gateway(download=download)
    rclone = Rclone(gw.url, tmp_path / "home")
    data = TREE[BIG]
    for offset, count in [(0, 10), (1_000_000, 65_536), (len(data) - 7, 100)]:
        out = rclone("cat", "--offset", str(offset), "--count", str(count), f":webdav:{BIG}").stdout
        assert out == data[offset : offset + count], (offset, count)
    whole = rclone("cat", ":webdav:Filme/千と千尋の神隠し (2001).mkv").stdout
    assert whole == TREE["Filme/千と千尋の神隠し (2001).mkv"]
    assert rclone("cat", ":webdav:empty.txt").stdout == b""


# Names the gateway treats as client probe junk (Finder, Explorer, Kodi), but which real drives
# do hold: album art, Windows folder settings, Android media markers, dot files.
PROBE_NAMES = {
    "Musik/Björk/Homogenic/folder.jpg": _bytes(13, 4_321),
    "Backup/desktop.ini": b"[.ShellClassInfo]\r\n",
    "Android/Pictures/.nomedia": b"",
    ".hidden": b"dot file\n",
}


def test_rclone_copies_files_named_like_client_probes(drive, make_gateway, tmp_path):
    put_files(drive, PROBE_NAMES)
    rclone = Rclone(make_gateway(download="proxy").url, tmp_path / "home")
    listing = json.loads(rclone("lsjson", "-R", ":webdav:").stdout)
    listed = {e["Path"]: e["Size"] for e in listing if not e["IsDir"]}
    assert listed == {p: len(d) for p, d in (TREE | PROBE_NAMES).items()}
    # What is listed can be downloaded (today: 404 for every PROBE_NAMES entry).
    local = tmp_path / "copy"
    rclone("copy", ":webdav:", str(local))
    assert read_tree(local) == TREE | PROBE_NAMES


def test_rclone_reports_a_missing_path(drive, make_gateway, tmp_path):
    rclone = Rclone(make_gateway(download="proxy").url, tmp_path / "home")
    proc = rclone("lsjson", ":webdav:No Such Folder", check=False)
    assert proc.returncode != 0
    assert "directory not found" in proc.stderr.decode()
    proc = rclone("cat", ":webdav:Filme/nope.mkv", check=False)
    assert proc.returncode != 0
    assert "not found" in proc.stderr.decode()
