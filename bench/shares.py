"""A share mount against an own-drive mount of the same files, in one run (goal: within 1.1×).

One in-process emulator holds a folder of ``--entries`` files and a synthetic file of
``--size-mib``; the folder they are in is shared. One gateway serves both an own-drive mount of
the account and a share mount of the share, both proxying downloads. Measured, per mount:

- cold PROPFIND Depth 1 of the big folder (the mount's listing caches emptied before each run:
  the time includes the upstream pages — 500 entries a page for a drive, 100 for a share);
- warm PROPFIND Depth 1 of the same folder (from the cached listing);
- a proxied GET of the big file, read to its end by curl (or Python when curl is missing).

Medians of ``--runs`` after one untimed warm-up; the two mounts take turns in each run.

    python bench/shares.py [--entries 10000] [--size-mib 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DAV, curl, fill_folder, machine, propfind, read_to_end, table
from pikdav.emulator import Emulator
from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER
from tests.support.shares import account, make_share, share_mount, start_share_gateway


def listing_size(url: str, auth) -> int:
    return len(propfind(url, auth).content)


def download(url: str) -> int:
    """Read the whole body of a GET (as a player or a copy tool would) into nothing."""
    if shutil.which("curl"):
        return curl(url, auth=True)[2]
    return read_to_end(url, DAV)


def measure(gw, runs: int, entries: int, size: int) -> dict[str, dict[str, float]]:
    """Medians per mount; the two mounts take turns in every run, so that a busy moment of
    the machine falls on both alike."""
    own, shared = gw.mounts
    folders = {m.name: f"{gw.url}/{m.name}/Data/Many/" for m in gw.mounts}
    files = {m.name: f"{gw.url}/{m.name}/Data/big.bin" for m in gw.mounts}
    for mount in gw.mounts:  # warm-up: sessions, captcha and pass-code tokens, links
        assert listing_size(folders[mount.name], gw.auth) > entries * 100
        _whole(files[mount.name], size)
    steps = {
        "cold": lambda m: (
            m.tree.forget_everything(),
            lambda: listing_size(folders[m.name], gw.auth),
        ),
        "warm": lambda m: (None, lambda: listing_size(folders[m.name], gw.auth)),
        "get": lambda m: (None, lambda: _whole(files[m.name], size)),
    }
    samples: dict[str, dict[str, list[float]]] = {m.name: {k: [] for k in steps} for m in gw.mounts}
    for key, step in steps.items():
        for turn in range(runs):
            for mount in (own, shared) if turn % 2 == 0 else (shared, own):
                _, once = step(mount)
                start = time.perf_counter()
                once()
                samples[mount.name][key].append(time.perf_counter() - start)
    return {
        name: {key: statistics.median(values) for key, values in by_key.items()}
        for name, by_key in samples.items()
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    size = args.size_mib << 20
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Emulator(state_dir=Path(tmp) / "emu") as emu:
        emu.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
        fill_folder(emu.world, PIKPAK_USER, "Data/Many", args.entries, b"12345")
        acct = emu.world.accounts[PIKPAK_USER]
        big = emu.world.add_node(
            acct,
            emu.world.ensure_path(acct, "Data"),
            "big.bin",
            "drive#file",
            blob=emu.world.blobs.add_synthetic(size, 1),
        )
        big.link_ready_at = 0.0
        share = make_share(emu, "Data")
        gw = start_share_gateway(
            emu,
            Path(tmp) / "gw",
            [
                {"name": "own", "account": "main", "download": "proxy"},
                share_mount(emu, "shared", share["share_url"], download="proxy"),
            ],
            accounts={"main": account(emu)},
            server={"threads": 8},
        )
        try:
            results = measure(gw, args.runs, args.entries, size)
        finally:
            gw.stop()
    own, shared = results["own"], results["shared"]
    print(f"machine: {machine()}; {args.entries} entries, {args.size_mib} MiB file")
    rows = []
    for key, label in (
        ("cold", f"cold PROPFIND Depth 1, {args.entries} entries"),
        ("warm", f"warm PROPFIND Depth 1, {args.entries} entries"),
        ("get", f"proxied GET of {args.size_mib} MiB"),
    ):
        if key == "get":
            label += f" ({size / own[key] / 1e6:.0f} / {size / shared[key] / 1e6:.0f} MB/s)"
        rows.append(
            (
                label,
                f"{own[key] * 1000:.0f} ms",
                f"{shared[key] * 1000:.0f} ms",
                f"{shared[key] / own[key]:.2f}×",
            )
        )
    table(("measure", "own-drive mount", "share mount", "share / own"), rows)
    return results


def _whole(url: str, size: int) -> None:
    got = download(url)
    assert got == size, (got, size)


if __name__ == "__main__":
    main()
