"""The release as a newcomer gets it: ``python -m build`` makes an sdist and a wheel (the wheel
from the sdist, so the sdist must hold everything), ``twine check`` takes both, and the wheel,
installed into a fresh virtual environment far from the checkout, runs ``pikdav demo`` and
serves the demo's files."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import requests

from pikdav import __version__
from pikdav.version import git_commit
from tests.support.command import start
from tests.support.tools import tail

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pikdav"


def _package_files() -> set[str]:
    """Every file of the package in the checkout (code, demo media, templates, CDN nodes)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != "COMMIT"
    }


def _run(*command: str | Path, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {tail(done.stdout)}\n{tail(done.stderr)}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_built_from_the_sdist_installs_and_serves_the_demo(tmp_path):
    commit = git_commit(ROOT)  # before the build: what the release must say it came from
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    sdists = list(dist.glob("pikdav-*.tar.gz"))
    wheels = list(dist.glob("pikdav-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list(dist.iterdir())
    assert "PASSED" in _run(sys.executable, "-m", "twine", "check", *sdists, *wheels, cwd=tmp_path)

    # The sdist and the wheel each hold every file of the package (package data included).
    with tarfile.open(sdists[0]) as sdist:
        top = f"pikdav-{__version__}/"
        in_sdist = {name.removeprefix(top) for name in sdist.getnames()}
    with zipfile.ZipFile(wheels[0]) as wheel:
        in_wheel = set(wheel.namelist())
    wanted = _package_files()
    assert {"pikdav/pikpak/cdn_nodes.txt", "pikdav/dav/templates/status.html"} <= wanted
    assert any(name.startswith("pikdav/demo_media/") for name in wanted)
    assert not wanted - in_sdist, f"missing from the sdist: {sorted(wanted - in_sdist)}"
    assert not wanted - in_wheel, f"missing from the wheel: {sorted(wanted - in_wheel)}"

    # A fresh virtual environment, and a folder where the checkout is not importable.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "pip", "install", "-q", "--no-compile", wheels[0], cwd=tmp_path)
    pikdav = venv / "bin" / "pikdav"
    shown = _run(pikdav, "--version", cwd=tmp_path).strip()
    expected = f"pikdav {__version__}" + (f" (commit {commit})" if commit else "")
    assert shown == expected

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    running = start(
        "demo", "--port", "0", "--password", "s3cret-demo",
        log_path=tmp_path / "demo.log", command=[str(pikdav)], cwd=elsewhere,
    )  # fmt: skip
    try:
        photo = requests.get(
            running.url + "pikpak/Photos/testsrc.jpg", auth=("demo", "s3cret-demo"), timeout=30
        )
        assert photo.status_code == 200, photo.text
        assert photo.content == (PACKAGE / "demo_media" / "photo-testsrc.jpg").read_bytes()
        readme = requests.get(
            running.url + "pikpak/Documents/README.txt", auth=("demo", "s3cret-demo"), timeout=30
        )
        assert readme.status_code == 200 and "Welcome to the pikdav demo" in readme.text
    finally:
        code, _ = running.stop()
    assert code == 0, running.log()
