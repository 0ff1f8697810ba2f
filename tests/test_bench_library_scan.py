"""A smoke run of the library scan benchmark (a small library), so that CI keeps it working.
Its figures are for BENCHMARKS.md; what the smoke run asserts is what holds at any size: a
scan after a restart and one during an outage answer every PROPFIND and every read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_library_scan_benchmark_runs_and_the_outage_scan_answers_everything():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "library_scan.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in done.stdout.splitlines()
        if line.startswith("| pikdav") or line.startswith("| rclone")
    }
    assert set(rows) >= {"rclone: first", "pikdav: after a restart"}
    for scan in (
        "pikdav: after a restart",
        "pikdav: seek again after a restart",
        "pikdav: PikPak goes away while it runs",
        "pikdav: restarted during an outage",
    ):
        assert rows[scan][3:6] == ["0", "0", "0"], (scan, rows[scan])  # no 5xx, no failure
    # PikPak was asked while it was away (the listings had gone stale), and refused.
    assert int(rows["pikdav: PikPak goes away while it runs"][1]) > 0
