"""The README's two commands, run literally in a fresh virtual environment (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    test_command = (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
    )
    assert test_command in README
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


INSTALL = "python3 -m venv ~/pikdav && ~/pikdav/bin/pip install .      # in the checkout's folder"
DEMO = "~/pikdav/bin/pikdav demo"


@pytest.mark.slow
def test_install_and_demo_in_a_fresh_venv(tmp_path):
    section = README.split("## Try it: two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    assert block.splitlines() == [INSTALL, DEMO]
    home = tmp_path / "home"  # the user's ~: nothing installed there yet
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(home)
    # The README's first command, as printed, in this checkout (not on PyPI yet).
    subprocess.run(["bash", "-c", INSTALL], cwd=ROOT, env=env, check=True, timeout=600)
    demo = subprocess.Popen(
        ["bash", "-c", f"exec {DEMO} --port 0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = demo.stdout.readline()
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        text = "".join(lines)
        url = re.search(r"WebDAV URL:\s+(\S+)", text).group(1)
        password = re.search(r"password:\s+(\S+)", text).group(1)
        listing = requests.request(
            "PROPFIND", url + "pikpak/", headers={"Depth": "1"}, auth=("demo", password), timeout=30
        )
        assert listing.status_code == 207
        for name in ("Movies", "Photos", "Large", "10000%20files", "Documents"):
            assert f"/pikpak/{name}/" in listing.text
        readme = requests.get(
            url + "pikpak/Documents/README.txt", auth=("demo", password), timeout=30
        )
        assert readme.status_code == 200 and "pikdav demo" in readme.text
        video = requests.get(
            url + "pikpak/Movies/Test%20Pattern%20(2026).mp4",
            auth=("demo", password),
            headers={"Range": "bytes=4-11"},
            timeout=30,
        )
        assert video.status_code == 206 and video.content == b"ftypisom"
    finally:
        demo.terminate()
        demo.wait(timeout=20)
    assert demo.returncode == 0, demo.stderr.read()
