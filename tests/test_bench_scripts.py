"""Every benchmark script still starts (its imports and options), and the small-PUT one runs
end to end on a few files: benchmarks run in CI only this far, so that they do not rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name != "common.py")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_benchmark_starts_and_says_how_to_run_it(script):
    done = run(str(ROOT / "bench" / script), "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"usage: {script}")


def test_the_small_puts_benchmark_runs():
    done = run(str(ROOT / "bench" / "small_puts.py"), "--files", "4", "--kib", "4", timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "4 PUTs of 4 KiB each" in done.stdout
    assert "| this checkout |" in done.stdout
