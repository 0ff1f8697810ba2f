"""The CDN bytes a Finder session on a folder of videos costs, without and with the hint
files (``finder_hints: false`` against the default), counted by the emulator.

One in-process emulator holds ``--videos`` synthetic videos of ``--size-mib`` each. For each
setting a fresh gateway (``download: proxy``, as Finder is always proxied) is driven by the
same model of a Finder session, and the emulator's ``download_bytes`` and
``download_requests`` counters give what PikPak's CDN served:

1. mount: the root's PROPFINDs and the probes of ``/.metadata_never_index``,
   ``/.ql_disablethumbnails`` and ``/.ql_disablecache`` (messense/dav-server-rs
   doc/APPLE-Finder-hints.md);
2. open the folder (PROPFIND Depth 1);
3. when ``.metadata_never_index`` is missing, Spotlight's importer reads each video's head
   (``--spotlight-kib``); when ``.ql_disablethumbnails`` is missing, QuickLook draws a
   thumbnail of each video: its head and tail (the index of an MP4 or MKV) and a stretch at a
   tenth of its length (a frame) (``--thumb-mib`` each);
4. the user previews one video (space bar): its first ``--preview-mib``.

What Finder reads per thumbnail is a model (named here, the same in both runs), not a trace;
the count of files it touches and the bytes through the gateway are what is measured.

    python bench/finder_quicklook.py [--videos 20] [--size-mib 512] [--thumb-mib 2]
"""

from __future__ import annotations

import argparse
import http.client
import platform
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.emulator import Emulator
from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER, start_gateway
from tests.support.pikpak_raw import control

FINDER = "WebDAVFS/3.0.0 (03008000) Darwin/24.4.0 (arm64)"
HINTS = (".metadata_never_index", ".ql_disablethumbnails", ".ql_disablecache")
MIB = 1 << 20


def cdn(emu: Emulator) -> tuple[int, int]:
    total = emu.world.stats.snapshot()["accounts"].get(PIKPAK_USER, {})
    return total.get("download_bytes", 0), total.get("download_requests", 0)


class Finder:
    """The model session, over one keep-alive connection like webdavfs."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.headers = {
            "User-Agent": FINDER,
            "Authorization": requests.auth._basic_auth_str(*auth),
        }

    def ask(self, method: str, path: str, **headers: str) -> tuple[int, int]:
        self.conn.request(method, quote(path), headers={**self.headers, **headers})
        resp = self.conn.getresponse()
        return resp.status, len(resp.read())

    def read(self, path: str, start: int, length: int) -> None:
        status, _ = self.ask("GET", path, Range=f"bytes={start}-{start + length - 1}")
        assert status == 206, status

    def session(self, names: list[str], size: int, args: argparse.Namespace) -> None:
        self.ask("OPTIONS", "/pikpak/")
        self.ask("PROPFIND", "/pikpak/", Depth="0")
        hints = {h: self.ask("PROPFIND", f"/pikpak/{h}", Depth="0")[0] == 207 for h in HINTS}
        status, _ = self.ask("PROPFIND", "/pikpak/Films/", Depth="1")
        assert status == 207, status
        thumb = args.thumb_mib * MIB
        for name in names:
            path = f"/pikpak/Films/{name}"
            self.ask("PROPFIND", f"/pikpak/Films/._{name}", Depth="0")
            if not hints[".metadata_never_index"]:
                self.read(path, 0, args.spotlight_kib * 1024)
            if not hints[".ql_disablethumbnails"]:
                self.read(path, 0, thumb)
                self.read(path, size - thumb, thumb)
                self.read(path, size // 10, thumb)
        self.read(f"/pikpak/Films/{names[0]}", 0, args.preview_mib * MIB)

    def close(self) -> None:
        self.conn.close()


def main(argv: list[str] | None = None) -> dict[str, tuple[int, int]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--thumb-mib", type=int, default=2)
    parser.add_argument("--spotlight-kib", type=int, default=256)
    parser.add_argument("--preview-mib", type=int, default=8)
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    results: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        emu.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
        names = [f"Film {n:02d}.mp4" for n in range(args.videos)]
        for n, name in enumerate(names):
            control(
                emu.base_url,
                "files",
                {"username": PIKPAK_USER, "path": f"Films/{name}", "size": size, "seed": n},
            )
        for label, hints in (("hint files off", False), ("hint files on (default)", True)):
            gw = start_gateway(
                emu, Path(tmp) / label.split()[2], download="proxy", finder_hints=hints
            )
            before = cdn(emu)
            finder = Finder(gw.url, gw.auth)
            try:
                finder.session(names, size, args)
            finally:
                finder.close()
                gw.stop()
            after = cdn(emu)
            results[label] = (after[0] - before[0], after[1] - before[1])
    off, on = results["hint files off"], results["hint files on (default)"]
    print(
        f"Finder session on {args.videos} videos of {args.size_mib} MiB "
        f"(python {platform.python_version()}, {platform.machine()})\n"
    )
    print("| session | CDN bytes | CDN requests |")
    print("|---|---|---|")
    for label, (data, requests_) in results.items():
        print(f"| {label} | {data / MIB:.1f} MiB | {requests_} |")
    ratio = off[0] / on[0] if on[0] else float("inf")
    print(f"| off / on | {ratio:.1f}× | |")
    return results


if __name__ == "__main__":
    main()
