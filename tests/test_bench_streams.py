"""Smoke runs of the streaming benchmarks (seconds: small files), so that CI keeps them
working; their figures are for BENCHMARKS.md, never asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_the_segmented_stream_benchmark_runs():
    out = run("segments.py")
    for row in (
        "unthrottled GET",
        "CDN 16 MB/s per connection",
        "seek:",
        "4 concurrent",
        "ffprobe",
    ):
        assert row in out


def test_the_benchmark_against_rclone_runs():
    out = run("vs_rclone.py")
    assert "| pikdav |" in out and "| rclone |" in out and "tunnel ceiling" in out


def test_the_memory_benchmark_runs():
    out = run("memory.py")
    assert "| working tree |" in out and "PROPFIND" in out
