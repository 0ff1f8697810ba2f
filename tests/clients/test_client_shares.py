"""Real clients on a share mount: a share with a pass code, mounted from its link, read by
rclone's WebDAV backend, cadaver and ffprobe, as a user of OpenList's PikPak Share would."""

from __future__ import annotations

import json
import random

import pytest

from pikdav.demo import MEDIA
from tests.support.davclients import Rclone, cadaver, installed, put_files, read_tree
from tests.support.shares import make_share, share_mount, start_share_gateway
from tests.support.tools import run_tool, tool_env

VIDEO = (MEDIA / "test-pattern.mp4").read_bytes()
TREE = {
    "Holiday/Amélie & friends (2001).mkv": random.Random(1).randbytes(150_001),
    "Holiday/Extras/Making-of #1.txt": b"making of\n",
    "Holiday/Extras/empty.txt": b"",
    "Holiday/test-pattern.mp4": VIDEO,
}


@pytest.fixture
def share_gateway(emulator, tmp_path):
    put_files(emulator, TREE)
    made = make_share(emulator, "Holiday", pass_code="9876")
    # The mount is named pikpak: the Rclone helper's remote is <gateway>/pikpak.
    mount = share_mount(emulator, "pikpak", made["share_url"] + "?pwd=9876", download="proxy")
    gw = start_share_gateway(emulator, tmp_path / "gw", [mount])
    yield gw
    gw.stop()


def test_rclone_lists_and_copies_the_share_byte_identical(share_gateway, tmp_path):
    rclone = Rclone(share_gateway.url, tmp_path / "rclone")
    listing = json.loads(rclone("lsjson", "-R", ":webdav:").stdout)
    files = {e["Path"]: e["Size"] for e in listing if not e["IsDir"]}
    assert files == {p: len(d) for p, d in TREE.items()}
    assert {e["Path"] for e in listing if e["IsDir"]} == {"Holiday", "Holiday/Extras"}
    rclone("copy", ":webdav:", str(tmp_path / "copy"))
    assert read_tree(tmp_path / "copy") == TREE


def test_cadaver_lists_and_gets_a_shared_file(share_gateway, home):
    out = cadaver(
        f"{share_gateway.url}/pikpak/Holiday/",
        home,
        "ls",
        'get "Amélie & friends (2001).mkv"',
    )
    assert "Extras" in out and "test-pattern.mp4" in out
    got = (home / "Amélie & friends (2001).mkv").read_bytes()
    assert got == TREE["Holiday/Amélie & friends (2001).mkv"]


def test_ffprobe_reads_a_shared_video_over_the_gateway(share_gateway):
    host = share_gateway.url.removeprefix("http://")
    url = f"http://alice:wonderland@{host}/pikpak/Holiday/test-pattern.mp4"
    out = run_tool(
        [installed("ffprobe"), "-v", "error", "-show_entries", "format=duration:stream=codec_type",
         "-of", "json", url],
        env=tool_env(),
        timeout=60,
    ).stdout  # fmt: skip
    probed = json.loads(out)
    assert float(probed["format"]["duration"]) >= 60
    assert "video" in {s["codec_type"] for s in probed["streams"]}
