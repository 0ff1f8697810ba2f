"""A media library scanned again and again: pikdav (with its disk cache) against `rclone serve
webdav` over rclone's pikpak backend, on one emulator, in one run.

A scanner (what Infuse, Kodi, Jellyfin and Plex do) walks the library with PROPFIND Depth 1 and
reads the first and the last 256 KiB of every video, 4 at a time. PikPak is 80 ms away (the
emulator's delay fault on every API call) and its CDN takes 30 ms to the first byte. Scans:
first; second, right after; pikdav's after a restart (its listings on disk stale by then);
pikdav's when the emulator starts to answer 500 to every API call (an outage) while pikdav runs,
its listings stale; and pikdav's after a restart during that outage.
pikdav's scans also seek: a player that jumps to the middle of every video reads 256 KiB there,
once before the restart and once after it (what the disk cache kept of the seek).
Figures per scan: seconds, API calls, bytes from the CDN, answers 5xx, and the slowest PROPFIND
(the outage's first listing waits for PikPak's first failure, not for every retry). Both servers
reach the emulator through one CONNECT proxy, as in bench/vs_rclone.py.

    python bench/library_scan.py [--folders 60] [--videos 8] [--video-mib 64] [--no-rclone]
    python bench/library_scan.py --smoke     # a small library: does it all run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DAV_PASSWORD, DAV_USER, MIB, heading, serve, stop
from bench.vs_rclone import (
    PASSWORD,
    USER,
    control,
    pikdav_config,
    start_emulator,
    start_rclone,
)
from tests.support.connect_proxy import ConnectProxy
from tests.support.rclone import RcloneRemote

KIB = 1 << 10
EDGE = 256 * KIB
LISTING_TTL = 5  # pikdav's listing_ttl here (rclone's --dir-cache-time is 60 s, as in vs_rclone)


def counters(base: str) -> tuple[int, int]:
    """API calls so far (user and drive hosts) and bytes the CDN sent."""
    stats = control(base, "stats", method="GET")
    calls = sum(
        areas.get("user", 0) + areas.get("drive", 0) for areas in stats["calls_by_ip"].values()
    )
    return calls, stats["total"].get("download_bytes", 0)


def scan(url: str, size: int, seek: bool = False) -> dict:
    """Walk ``url``'s ``lib/`` and read each video's head and tail, 4 at a time (``seek``:
    256 KiB in the middle of each video instead, where a player jumps to)."""
    http = requests.Session()
    http.auth = (DAV_USER, DAV_PASSWORD)
    errors = {"propfind": 0, "read": 0, "other": 0}
    slowest = [0.0]

    def listing(path: str) -> list[str]:
        asked = time.monotonic()
        resp = http.request("PROPFIND", f"{url}/{path}", headers={"Depth": "1"}, timeout=600)
        slowest[0] = max(slowest[0], time.monotonic() - asked)
        if resp.status_code != 207:
            errors["propfind" if resp.status_code >= 500 else "other"] += 1
            return []
        hrefs = [h.split("</D:href>")[0] for h in resp.text.split("<D:href>")[2:]]
        return [h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs]

    def read(path: str) -> None:
        for start in (size // 2,) if seek else (0, size - EDGE):
            resp = http.get(
                f"{url}/{path}", headers={"Range": f"bytes={start}-{start + EDGE - 1}"}, timeout=600
            )
            if resp.status_code != 206 or len(resp.content) != EDGE:
                errors["read" if resp.status_code >= 500 else "other"] += 1

    began = time.monotonic()
    videos = []
    with ThreadPoolExecutor(4) as pool:
        folders = listing("lib/")
        for folder, names in zip(
            folders, pool.map(lambda f: listing(f"lib/{f}/"), folders), strict=True
        ):
            videos += [f"lib/{folder}/{name}" for name in names]
        list(pool.map(read, videos))
    return {
        "seconds": time.monotonic() - began,
        "videos": len(videos),
        "slowest": slowest[0],
        **errors,
    }


def measured(base: str, url: str, size: int, seek: bool = False) -> dict:
    calls, cdn = counters(base)
    row = scan(url, size, seek)
    after_calls, after_cdn = counters(base)
    return row | {"calls": after_calls - calls, "cdn": after_cdn - cdn}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folders", type=int, default=60)
    parser.add_argument("--videos", type=int, default=8, help="per folder")
    parser.add_argument("--video-mib", type=int, default=64)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-rclone", action="store_true", help="pikdav's scans alone")
    args = parser.parse_args()
    ttl = LISTING_TTL
    if args.smoke:  # the waits for the disk's listings to go stale shrink with the library
        args.folders, args.videos, args.video_mib, ttl = 3, 2, 4, 1
    size = args.video_mib * MIB
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        emu = pikdav = rclone = None
        try:
            emu, base, port, ca = start_emulator(tmp, 0)
            for folder in range(args.folders):
                for video in range(args.videos):
                    path = f"lib/f{folder:03d}/v{video:02d}.mkv"
                    seed = folder * 1000 + video
                    control(
                        base, "files", {"username": USER, "path": path, "size": size, "seed": seed}
                    )
            control(base, "faults", {"path": "^/(drive|v1)/", "delay": 0.08})
            control(base, "config", {"cdn_first_byte_delay": 0.03})
            rows: dict[str, dict] = {}
            with ConnectProxy(("127.0.0.1", port)) as proxy:
                if not args.no_rclone:
                    remote = RcloneRemote(ca, proxy, USER, PASSWORD, tmp / "rclone")
                    remote.authorize()
                    rclone, rclone_url = start_rclone(remote, tmp)
                    rows["rclone: first"] = measured(base, rclone_url, size)
                    rows["rclone: second"] = measured(base, rclone_url, size)
                    stop(rclone)
                    rclone = None

                config = pikdav_config(tmp, proxy, ca)
                config["mounts"][0]["listing_ttl"] = ttl
                pikdav, url = serve(tmp, config)
                rows["pikdav: first"] = measured(base, f"{url}/pp", size)
                rows["pikdav: second"] = measured(base, f"{url}/pp", size)
                rows["pikdav: seek to the middle"] = measured(base, f"{url}/pp", size, True)
                stop(pikdav)
                time.sleep(ttl)  # what the disk holds is stale now: it is revalidated
                pikdav, url = serve(tmp, config)
                rows["pikdav: after a restart"] = measured(base, f"{url}/pp", size)
                rows["pikdav: seek again after a restart"] = measured(base, f"{url}/pp", size, True)
                control(base, "faults", {"path": "^/(drive|v1)/", "status": 500})
                time.sleep(2 * ttl)  # beyond the revalidations of the scans before
                rows["pikdav: PikPak goes away while it runs"] = measured(base, f"{url}/pp", size)
                stop(pikdav)
                pikdav, url = serve(tmp, config)
                rows["pikdav: restarted during an outage"] = measured(base, f"{url}/pp", size)
        finally:
            for proc in (pikdav, rclone, emu):
                stop(proc)
    videos = args.folders * args.videos
    print(heading(__file__))
    print(
        f"{args.folders} folders × {args.videos} videos of {args.video_mib} MiB ({videos}); "
        "head and tail 256 KiB each, 4 at a time; API 80 ms away, CDN first byte 30 ms"
    )
    print(
        "| scan | s | API calls | CDN MiB | 5xx PROPFIND | 5xx reads | other failures "
        "| slowest PROPFIND s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['seconds']:.1f} | {row['calls']} | {row['cdn'] / MIB:.1f} | "
            f"{row['propfind']} | {row['read']} | {row['other']} | {row['slowest']:.2f} |"
        )
    first = rows["pikdav: first"]
    for name in ("pikdav: second", "pikdav: after a restart"):
        row = rows[name]
        print(
            f"{name}: {row['calls'] / max(1, first['calls']):.3f}× the first scan's API calls, "
            f"{row['cdn'] / max(1, first['cdn']):.3f}× its CDN bytes"
        )
    seek, again = rows["pikdav: seek to the middle"], rows["pikdav: seek again after a restart"]
    print(
        f"pikdav: seek again after a restart: {again['cdn'] / max(1, seek['cdn']):.3f}× the "
        "first seek's CDN bytes"
    )


if __name__ == "__main__":
    main()
