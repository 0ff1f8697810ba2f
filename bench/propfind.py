"""Warm PROPFIND Depth 1 of a 10,000-entry folder: pikdav against WsgiDAV's own
FilesystemProvider and ``rclone serve webdav`` serving 10,000 local empty files.

All servers run on loopback in this one run; each is asked the same PROPFIND (empty body:
all properties) ``--runs`` times after one warm-up, and the median is reported. pikdav is
measured with its fast path and, for reference, with it switched off (WsgiDAV's generic
PROPFIND over the same cached listing).

    python bench/propfind.py [--entries 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsgidav.wsgidav_app import WsgiDAVApp

import pikdav.dav.propfind as fast
from bench.common import fill_folder, propfind, stop, table
from pikdav.emulator import Emulator
from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER, start_gateway
from tests.support.rclone import rclone_binary
from tests.support.waits import wait_for_port
from tests.support.web import free_port
from tests.support.wsgi_server import serving


def timed(url: str, auth, runs: int) -> tuple[float, int]:
    def once() -> int:
        return len(propfind(url, auth).content)

    size = once()  # warm-up: fills caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "folder"
        local.mkdir()
        for i in range(args.entries):
            (local / f"f{i:05d}.txt").touch()

        with Emulator() as emu:
            emu.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
            fill_folder(emu.world, PIKPAK_USER, "folder", args.entries)
            gw = start_gateway(emu, Path(tmp) / "state", download="proxy")
            try:
                url = gw.url + "/pikpak/folder/"
                results["pikdav (fast path)"] = timed(url, gw.auth, args.runs)
                original = fast.try_fast_propfind
                fast.try_fast_propfind = lambda *a: None
                results["pikdav (WsgiDAV generic path)"] = timed(url, gw.auth, args.runs)
                fast.try_fast_propfind = original
            finally:
                gw.stop()

        app = WsgiDAVApp(
            {
                "provider_mapping": {"/": str(local)},
                "simple_dc": {"user_mapping": {"*": True}},
                "http_authenticator": {"domain_controller": None},
                "dir_browser": {"enable": False},
                "lock_storage": True,
                "property_manager": True,
                "verbose": 0,
                "logging": {"enable": False},
            }
        )
        with serving(app) as port:
            results["WsgiDAV FilesystemProvider"] = timed(
                f"http://127.0.0.1:{port}/", None, args.runs
            )

        port = free_port()
        rclone = subprocess.Popen(
            [
                rclone_binary(),
                "serve",
                "webdav",
                str(local),
                "--addr",
                f"127.0.0.1:{port}",
                "--config",
                "/dev/null",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, "rclone", rclone, seconds=20)
            results["rclone serve webdav"] = timed(f"http://127.0.0.1:{port}/", None, args.runs)
        finally:
            stop(rclone)

    base = results["rclone serve webdav"][0]
    table(
        ("server", f"median of {args.runs}", "response size", "time / rclone's"),
        (
            (name, f"{seconds * 1000:.0f} ms", f"{size / 1e6:.1f} MB", f"{seconds / base:.2f}x")
            for name, (seconds, size) in results.items()
        ),
    )


if __name__ == "__main__":
    main()
