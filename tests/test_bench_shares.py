"""The share benchmark runs (a smoke run of seconds: small folder, small file)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "shares.py"


def test_the_share_benchmark_measures_both_mounts(capsys):
    spec = importlib.util.spec_from_file_location("bench_shares", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--entries", "120", "--size-mib", "2", "--runs", "1"])
    assert set(results) == {"own", "shared"}
    assert all(v > 0 for r in results.values() for v in r.values())
    table = capsys.readouterr().out
    assert "| cold PROPFIND Depth 1, 120 entries |" in table and "share / own" in table
