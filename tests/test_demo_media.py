"""The demo as a new user meets it: its videos last long enough to seek in (and say how long
in the drive's README.txt), a player's seek through the gateway decodes frames there, and the
curl and rclone lines it prints work exactly as printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from pikdav.assembly import build_app, build_mounts, make_server
from pikdav.config import parse_config
from pikdav.dav.auth import hash_password
from pikdav.demo import MEDIA, MOVIES, demo_config, instructions, start_demo_emulator
from tests.support.davclients import installed
from tests.support.rclone import rclone_binary
from tests.support.tools import run_tool, tool_env

PASSWORD = "demo-password"


def duration(path_or_url: str) -> float:
    out = run_tool(
        [installed("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "json",
         path_or_url],
        env=tool_env(),
        timeout=60,
    ).stdout  # fmt: skip
    return float(json.loads(out)["format"]["duration"])


@pytest.mark.parametrize(("shipped", "name", "seconds"), MOVIES)
def test_each_clip_lasts_a_minute_or_more_and_is_small(shipped, name, seconds):
    path = MEDIA / shipped
    length = duration(str(path))
    assert length >= 60, f"{shipped} lasts {length:.1f} s"
    assert abs(length - seconds) < 1, f"{shipped}: README.txt says {seconds} s, it is {length}"
    assert path.stat().st_size < 1 << 20


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's drive and gateway, as ``pikdav demo`` builds them."""
    emulator = start_demo_emulator(tmp_path_factory.mktemp("emulator"))
    data = demo_config(
        emulator, "127.0.0.1", 0, hash_password(PASSWORD), tmp_path_factory.mktemp("state")
    )
    config = parse_config(data, "demo")
    server = make_server(config, build_app(config, build_mounts(config)))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    yield emulator, f"http://{host}:{port}"
    server.stop()
    thread.join(timeout=10)
    emulator.stop()


def test_the_drive_readme_says_how_long_each_clip_is(demo):
    _, url = demo
    readme = requests.get(
        f"{url}/pikpak/Documents/README.txt", auth=("demo", PASSWORD), timeout=30
    ).text
    for _, name, seconds in MOVIES:
        assert f"{name}  ({seconds // 60}:{seconds % 60:02d})" in readme


@pytest.mark.parametrize(("shipped", "name", "seconds"), MOVIES)
def test_a_seek_to_30_s_through_the_gateway_decodes_frames_there(demo, shipped, name, seconds):
    _, url = demo
    address = url.replace("http://", f"http://demo:{PASSWORD}@") + quote(f"/pikpak/Movies/{name}")
    ffmpeg = run_tool(
        [installed("ffmpeg"), "-nostdin", "-v", "info", "-ss", "30", "-copyts", "-i", address,
         "-frames:v", "12", "-vf", "showinfo", "-f", "null", "-"],
        env=tool_env(),
        timeout=120,
    )  # fmt: skip
    log = ffmpeg.stderr.decode("utf-8", "replace")
    shown = [float(t) for t in re.findall(r"pts_time:([0-9.]+)", log)]
    assert len(shown) >= 12, log[-3000:]
    assert 29.5 <= shown[0] <= 31, shown  # decoded where the seek asked, not from the start


def printed_commands(text: str) -> dict[str, str]:
    """The curl and rclone command lines the demo printed, joined where they continue."""
    lines = text.splitlines()
    commands = {}
    for index, line in enumerate(lines):
        match = re.match(r"\s+(curl|rclone)\s+(\1 .*)$", line)
        if not match:
            continue
        command, more = match.group(2), index + 1
        while command.endswith("\\"):
            command = command[:-1] + lines[more].strip()
            more += 1
        commands[match.group(1)] = command
    return commands


def test_the_printed_curl_and_rclone_lines_work_as_printed(tmp_path):
    installed("curl")
    demo = subprocess.Popen(
        [sys.executable, "-m", "pikdav.cli", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not (line := demo.stdout.readline()).startswith("Press Ctrl+C"):
            assert line, demo.stderr.read()
            lines.append(line)
        commands = printed_commands("".join(lines))
        # Both tools as a user's shell finds them; a HOME of their own.
        path = os.pathsep.join([str(Path(rclone_binary()).parent), os.environ["PATH"]])
        env = tool_env(PATH=path, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))

        def shell(command: str) -> str:
            return run_tool(["bash", "-c", command], env=env, timeout=60, text=True).stdout

        assert "Welcome to the pikdav demo." in shell(commands["curl"])
        listing = shell(commands["rclone"]).split()
        assert {"Documents/", "Movies/", "Photos/", "Large/"} <= set(listing), listing
        about = shell(commands["rclone"].replace("rclone lsf", "rclone about", 1))
        assert re.search(r"Total:\s+\S+", about) and re.search(r"Used:\s+\S+", about), about
    finally:
        demo.terminate()
        demo.wait(timeout=20)


def test_the_readme_shows_what_the_demo_prints():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert instructions("http://127.0.0.1:8080/", "demo", "Sg8J4tTt7Twl") in readme
