"""The README's two commands, run literally in a fresh virtual environment (slow)."""

from __future__ import annotations

import re
import subprocess
import sys
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


@pytest.mark.slow
def test_install_and_demo_in_a_fresh_venv(tmp_path):
    assert "pip install pikdav          # from a checkout: pip install ." in README
    assert re.search(r"^pikdav demo$", README, re.MULTILINE)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The README's first command, from this checkout (the package is not on PyPI here).
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "."], cwd=ROOT, check=True, timeout=600
    )
    demo = subprocess.Popen(
        [str(venv / "bin" / "pikdav"), "demo", "--port", "0"],
        cwd=tmp_path,
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
