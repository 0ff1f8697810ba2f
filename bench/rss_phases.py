"""Where pikdav's peak RSS comes from: the run of ``bench/vs_rclone.py``, pikdav only, phase by
phase.

The same set-up as ``vs_rclone.py`` (the emulator over TLS behind one loopback CONNECT proxy,
``download: proxy``, default segments) and the same phases: a cold and three warm PROPFIND
Depth 1 of ``--entries`` files, a GET of a large file, ``--seeks`` 64 KiB Ranges, a PUT of fresh
content. Before each phase the gateway's peak RSS is reset (``/proc/PID/clear_refs``, 5), so
the peak printed for a phase is that phase's own; VmRSS after it shows what it left behind.

``--checkout REV`` runs the gateway from that commit (exported with ``git archive`` into a
temporary folder, put first on its ``PYTHONPATH``) and then from the working tree, back to back
on one emulator: before and after in one run.

    python bench/rss_phases.py [--entries 10000] [--get-mib 1024] [--put-mib 256] [--checkout REV]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MIB, curl, heading, make_file, proc_status, serve, sources, stop, table
from bench.vs_rclone import (
    USER,
    control,
    pikdav_config,
    start_emulator,
    timed_propfind,
)
from tests.support.connect_proxy import ConnectProxy


def start_gateway(tmp: Path, proxy: ConnectProxy, ca, source: Path) -> tuple[subprocess.Popen, str]:
    """``pikdav serve`` with the code in ``source``, set up as in ``vs_rclone.py``."""
    proc, url = serve(tmp, pikdav_config(tmp, proxy, ca), source)
    return proc, f"{url}/pp"


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def phases(proc: subprocess.Popen, url: str, args, seeks: list[int], put: Path) -> list[tuple]:
    """(phase, seconds or MB/s, peak MiB, RSS after MiB) of each phase."""
    rows = []

    def phase(name: str, run) -> None:
        reset_peak(proc.pid)
        figure = run()
        status = proc_status(proc.pid)
        rows.append((name, figure, status["VmHWM"] / 1024, status["VmRSS"] / 1024))

    started = proc_status(proc.pid)  # its peak here is the start-up's
    rows.append(("idle", 0.0, started["VmHWM"] / 1024, started["VmRSS"] / 1024))
    phase("cold PROPFIND", lambda: timed_propfind(f"{url}/many/"))
    phase(
        "warm PROPFIND ×3",
        lambda: statistics.median(timed_propfind(f"{url}/many/") for _ in range(3)),
    )
    big = args.get_mib * MIB

    def get() -> float:
        _, total, got, code = curl(f"{url}/big.bin", auth=True)
        assert (got, code) == (big, 200), (got, code)
        return big / total / 1e6

    phase(f"GET {args.get_mib} MiB (MB/s)", get)
    phase(
        f"{len(seeks)} seeks (ms)",
        lambda: (
            1000
            * statistics.median(
                curl(f"{url}/big.bin", "-r", f"{o}-{o + 65535}", auth=True)[0] for o in seeks
            )
        ),
    )

    # Fresh bytes for each gateway: content PikPak already has would be an instant upload.
    make_file(put, args.put_mib * MIB)

    def upload() -> float:
        name = f"up-{time.monotonic_ns()}.bin"
        _, total, _, code = curl(f"{url}/{name}", "-T", str(put), auth=True)
        assert code in (201, 204), code
        return put.stat().st_size / total / 1e6

    phase(f"PUT {args.put_mib} MiB (MB/s)", upload)
    # Peaks were reset phase by phase: the run's is the largest of them.
    rows.append(
        ("whole run", 0.0, max(row[2] for row in rows), proc_status(proc.pid)["VmRSS"] / 1024)
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--get-mib", type=int, default=1024)
    parser.add_argument("--put-mib", type=int, default=256)
    parser.add_argument("--seeks", type=int, default=10)
    parser.add_argument("--checkout", help="also run the gateway from this commit, first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        runs = sources(args.checkout, tmp)
        emu = None
        try:
            emu, base, port, ca = start_emulator(tmp, args.entries)
            big = args.get_mib * MIB
            control(base, "files", {"username": USER, "path": "big.bin", "size": big, "seed": 1})
            put = tmp / "fresh.bin"
            rng = random.Random(3)
            seeks = [rng.randrange(big - 65536) for _ in range(args.seeks)]
            print(heading(__file__))
            with ConnectProxy(("127.0.0.1", port)) as proxy:
                for number, (label, source) in enumerate(runs.items()):
                    gateway, url = start_gateway(tmp / f"gateway-{number}", proxy, ca, source)
                    try:
                        rows = phases(gateway, url, args, seeks, put)
                    finally:
                        stop(gateway)
                    print(f"\n{label}")
                    table(
                        ("phase", "figure", "peak RSS (MiB)", "RSS after (MiB)"),
                        (
                            (name, f"{figure:.2f}", f"{peak:.0f}", f"{after:.0f}")
                            for name, figure, peak, after in rows
                        ),
                    )
        finally:
            stop(emu)


if __name__ == "__main__":
    main()
