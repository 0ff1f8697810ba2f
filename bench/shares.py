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
import http.client
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.emulator import Emulator
from tests.support.gateway import DAV_PASSWORD, DAV_USER, PIKPAK_PASSWORD, PIKPAK_USER
from tests.support.shares import account, make_share, share_mount, start_share_gateway


def propfind(url: str, auth) -> int:
    resp = requests.request("PROPFIND", url, headers={"Depth": "1"}, auth=auth)
    assert resp.status_code == 207, resp.status_code
    return len(resp.content)


def download(url: str) -> int:
    """Read the whole body of a GET (as a player or a copy tool would) into nothing."""
    if shutil.which("curl"):
        out = subprocess.run(
            ["curl", "-s", "-u", f"{DAV_USER}:{DAV_PASSWORD}", "-o", "/dev/null",
             "-w", "%{size_download}", url],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return int(float(out))
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    token = requests.auth._basic_auth_str(DAV_USER, DAV_PASSWORD)
    conn.request("GET", parts.path, headers={"Authorization": token})
    resp = conn.getresponse()
    total, buf = 0, bytearray(1 << 20)
    while n := resp.readinto(buf):
        total += n
    conn.close()
    return total


def measure(gw, runs: int, entries: int, size: int) -> dict[str, dict[str, float]]:
    """Medians per mount; the two mounts take turns in every run, so that a busy moment of
    the machine falls on both alike."""
    own, shared = gw.mounts
    folders = {m.name: f"{gw.url}/{m.name}/Data/Many/" for m in gw.mounts}
    files = {m.name: f"{gw.url}/{m.name}/Data/big.bin" for m in gw.mounts}
    for mount in gw.mounts:  # warm-up: sessions, captcha and pass-code tokens, links
        assert propfind(folders[mount.name], gw.auth) > entries * 100
        _whole(files[mount.name], size)
    steps = {
        "cold": lambda m: (m.tree.forget_everything(), lambda: propfind(folders[m.name], gw.auth)),
        "warm": lambda m: (None, lambda: propfind(folders[m.name], gw.auth)),
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


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} cores, {model or platform.processor() or 'unknown CPU'}"


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
        acct = emu.world.accounts[PIKPAK_USER]
        folder = emu.world.ensure_path(acct, "Data/Many")
        blob = emu.world.blobs.add_bytes(b"12345")
        for i in range(args.entries):
            emu.world.add_node(
                acct, folder, f"f{i:05d}.txt", "drive#file", blob=blob, rename_on_clash=False
            )
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
    print("| measure | own-drive mount | share mount | share / own |")
    print("|---|---|---|---|")
    for key, label in (
        ("cold", f"cold PROPFIND Depth 1, {args.entries} entries"),
        ("warm", f"warm PROPFIND Depth 1, {args.entries} entries"),
        ("get", f"proxied GET of {args.size_mib} MiB"),
    ):
        extra = ""
        if key == "get":
            extra = f" ({size / own[key] / 1e6:.0f} / {size / shared[key] / 1e6:.0f} MB/s)"
        print(
            f"| {label}{extra} | {own[key] * 1000:.0f} ms | {shared[key] * 1000:.0f} ms | "
            f"{shared[key] / own[key]:.2f}× |"
        )
    return results


def _whole(url: str, size: int) -> None:
    got = download(url)
    assert got == size, (got, size)


if __name__ == "__main__":
    main()
