"""The Finder QuickLook benchmark runs (a smoke run of seconds: three small videos)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "finder_quicklook.py"


def test_the_quicklook_benchmark_counts_less_cdn_traffic_with_the_hint_files(capsys):
    spec = importlib.util.spec_from_file_location("bench_finder_quicklook", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--videos", "3", "--size-mib", "8", "--thumb-mib", "1", "--preview-mib", "1"]
    )
    off, on = results["hint files off"], results["hint files on (default)"]
    assert on[0] >= 1 << 20  # the preview the user asked for is still read
    assert off[0] > 3 * on[0]  # the thumbnails and Spotlight's reads are not
    assert "| off / on |" in capsys.readouterr().out
