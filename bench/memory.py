"""The gateway's memory under many clients: 50 at once for two minutes, and a long soak.

One ``pikdav emulator`` (plain HTTP on loopback, its CDN unthrottled) holds ``--files`` synthetic
files of ``--file-mib`` MiB and folders of ``--entries`` entries; one ``pikdav serve`` shows the
account with ``download: proxy``. ``--clients`` clients in threads, each with its own
keep-alive connection, do one thing over and over for ``--seconds``: a third PROPFIND Depth 1 a
folder, a third GET a whole file, a third read 1 MiB at a random offset (Range). Every answer's
length and status is checked. The gateway's VmRSS is sampled every half second; the table shows
it before the load, its peak (VmHWM), at the end of the load and 5 s after, and for a run longer
than two minutes how it moved after the first minute (lowest and highest sample from then on).

``--checkout REV`` also runs the gateway of that commit first (before and after, one emulator);
``--budget SIZE`` sets ``server.memory_budget`` (the working tree's only).

    python bench/memory.py [--clients 50] [--seconds 120] [--checkout REV]
    python bench/memory.py --clients 20 --seconds 900          # the soak
    python bench/memory.py --smoke                              # a few seconds: does it run
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DAV_PASSWORD,
    DAV_USER,
    MIB,
    PIKPAK_USER,
    ROOT,
    gateway_config,
    proc_status,
    serve,
    sources,
    start_emulator,
    stop,
)
from tests.support.pikpak_raw import control

FOLDERS = 4
KINDS = ("PROPFIND", "GET", "Range 1 MiB")


def filled_emulator(tmp: Path, files: int, size: int, entries: int) -> tuple[subprocess.Popen, str]:
    emu, base = start_emulator(tmp)
    for index in range(files):
        control(
            base,
            "files",
            {"username": PIKPAK_USER, "path": f"big/f{index}.bin", "size": size, "seed": index},
        )
    http = requests.Session()
    for folder in range(FOLDERS):
        for index in range(entries):
            http.post(
                f"{base}/__emulator__/files",
                json={"username": PIKPAK_USER, "path": f"dir{folder}/e{index:05d}.txt", "size": 1},
            ).raise_for_status()
    return emu, base


def memory_config(tmp: Path, emulator: str, budget: str | None) -> dict:
    server = {"memory_budget": budget} if budget is not None else {}
    mounts = [{"name": "pp", "account": "main", "download": "proxy"}]
    return gateway_config(tmp, emulator, mounts, admin=True, **server)


def budget_held(base: str) -> int | None:
    """What the gateway says it holds of its memory budget (None: it does not say)."""
    try:
        text = requests.get(f"{base}/metrics", auth=(DAV_USER, DAV_PASSWORD), timeout=5).text
    except requests.RequestException:
        return None
    match = re.search(r"^pikdav_memory_in_use_bytes (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else None


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


class Load:
    """``clients`` threads against ``url`` until ``stop`` is set; counts answers by kind."""

    def __init__(
        self, url: str, clients: int, files: int, size: int, kinds: tuple[str, ...]
    ) -> None:
        self.url, self.files, self.size, self.kinds = url, files, size, kinds
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.bytes = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def run(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _client(self, number: int) -> None:
        kind = self.kinds[number % len(self.kinds)]
        rng = random.Random(number)
        http = requests.Session()
        http.auth = (DAV_USER, DAV_PASSWORD)
        http.trust_env = False
        while not self.stop.is_set():
            try:
                ok, got = self._one(http, kind, rng)
            except requests.RequestException:
                ok, got = False, 0
                http.close()
            with self._lock:
                (self.done if ok else self.failed)[kind] += 1
                self.bytes += got

    def _one(self, http: requests.Session, kind: str, rng: random.Random) -> tuple[bool, int]:
        if kind == "PROPFIND":
            folder = rng.randrange(FOLDERS)
            resp = http.request(
                "PROPFIND", f"{self.url}/dir{folder}/", headers={"Depth": "1"}, timeout=120
            )
            return resp.status_code == 207 and b":response>" in resp.content, 0
        file = f"{self.url}/big/f{rng.randrange(self.files)}.bin"
        headers, want, status = {}, self.size, 200
        if kind != "GET":
            offset = rng.randrange(self.size - MIB)
            headers, want, status = {"Range": f"bytes={offset}-{offset + MIB - 1}"}, MIB, 206
        with http.get(file, headers=headers, stream=True, timeout=120) as resp:
            got = sum(len(chunk) for chunk in resp.iter_content(256 * 1024))
            return resp.status_code == status and got == want, got


def run_once(tmp: Path, base: str, source: Path, args) -> dict:
    gateway, root = serve(tmp, memory_config(tmp, base, args.budget), source)
    url = f"{root}/pp"
    size = args.file_mib * MIB
    samples: list[tuple[float, int]] = []
    held: list[int] = []  # what the gateway says it holds of its budget, when it says
    threads: list[int] = []
    try:
        # Warm-up (not measured): sign-in and the listings of the files.
        requests.request("PROPFIND", f"{url}/big/", auth=(DAV_USER, DAV_PASSWORD), timeout=60)
        before = proc_status(gateway.pid)
        load = Load(url, args.clients, args.files, size, args.kinds)
        began = time.monotonic()
        load.run()
        while (elapsed := time.monotonic() - began) < args.seconds:
            samples.append((elapsed, proc_status(gateway.pid)["VmRSS"]))
            threads.append(threads_of(gateway.pid))
            if (now := budget_held(root)) is not None:
                held.append(now)
            time.sleep(0.5)
        load.join()
        wall = time.monotonic() - began
        end = proc_status(gateway.pid)
        time.sleep(5)
        after = proc_status(gateway.pid)
    finally:
        stop(gateway)
    later = [rss for at, rss in samples if at >= 60]
    # Each whole minute's median sample: whether RSS creeps, apart from its swings with the load.
    minutes = [
        statistics.median(rss for at, rss in samples if m * 60 <= at < (m + 1) * 60) / 1024
        for m in range(int(samples[-1][0] // 60) if samples else 0)
    ]
    return {
        "minutes": minutes,
        "before": before["VmRSS"] / 1024,
        "peak": end["VmHWM"] / 1024,
        "end": end["VmRSS"] / 1024,
        "after": after["VmRSS"] / 1024,
        "later": (min(later) / 1024, max(later) / 1024) if later else None,
        "done": load.done,
        "failed": load.failed,
        "rate": load.bytes / wall / 1e6,
        "held": max(held) / MIB if held else None,
        "threads": max(threads),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mib", type=int, default=64)
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--checkout", help="also run the gateway from this commit, first")
    parser.add_argument("--budget", help="server.memory_budget of the working tree's gateway")
    parser.add_argument(
        "--only", choices=["PROPFIND", "GET", "Range"], help="every client does this one thing"
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    args.kinds = tuple(k for k in KINDS if k.startswith(args.only)) if args.only else KINDS
    if args.smoke:
        args.clients, args.seconds, args.files, args.file_mib, args.entries = 6, 3, 2, 4, 20
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        runs = sources(args.checkout, tmp)
        emu = None
        try:
            emu, base = filled_emulator(tmp, args.files, args.file_mib * MIB, args.entries)
            print(
                f"# bench/memory.py — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs: "
                f"{args.clients} clients for {args.seconds:g} s, {args.files} files of "
                f"{args.file_mib} MiB, folders of {args.entries}; {', '.join(args.kinds)}"
            )
            results = {}
            for number, (label, source) in enumerate(runs.items()):
                budget, args.budget = args.budget, args.budget if source is ROOT else None
                results[label] = run_once(tmp / f"gateway-{number}", base, source, args)
                args.budget = budget
        finally:
            stop(emu)
    print(
        "\n| gateway | RSS before | peak (VmHWM) | at the end | 5 s after | after 1 min: lowest "
        "– highest | budget held, most | threads, most | MB/s | answers (failed) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        later = f"{r['later'][0]:.0f} – {r['later'][1]:.0f}" if r["later"] else "–"
        held = f"{r['held']:.0f}" if r["held"] is not None else "–"
        answers = ", ".join(f"{kind} {r['done'][kind]} ({r['failed'][kind]})" for kind in KINDS)
        print(
            f"| {label} | {r['before']:.0f} | **{r['peak']:.0f}** | {r['end']:.0f} | "
            f"{r['after']:.0f} | {later} | {held} | {r['threads']} | {r['rate']:.0f} | "
            f"{answers} |"
        )
    print("(RSS in MiB)\n")
    for label, r in results.items():
        steady = r["minutes"][1:]  # after the first minute
        if steady:
            spread = (max(steady) - min(steady)) / min(steady) * 100
            print(
                f"{label}: median RSS of each minute: "
                f"{', '.join(f'{m:.0f}' for m in r['minutes'])} MiB; after the first minute "
                f"{min(steady):.0f} – {max(steady):.0f} ({spread:.0f} % apart)"
            )
    if any(sum(r["failed"].values()) for r in results.values()):
        raise SystemExit("some answers were wrong")


if __name__ == "__main__":
    main()
