"""Downloads through the gateway: proxied streaming against the CDN, RSS, redirects, TTFB.

One ``pikdav emulator`` process holds a synthetic file; one ``pikdav serve`` process (the
gateway) shows the same account twice: mount ``proxy`` (download: proxy) and mount ``redir``
(download: redirect). curl is the client. Side by side in one run:

1. a direct download of the CDN link (asked for from 127.0.0.1, as the gateway does) against
   the same file proxied through the gateway, best of N each;
2. the gateway's peak RSS while N parallel curl streams pull the file through ``proxy``
   (VmHWM after, minus VmRSS right before; VmHWM cannot be reset);
3. 302 redirects per second on ``redir`` with a warm link cache, from keep-alive
   ``http.client`` connections in a few threads (the gateway caches scrypt checks for 60 s);
4. time to first byte (curl's ``time_starttransfer``), median of N: the 302 itself, the
   redirect followed with ``-L`` to the CDN's first byte, the proxy, and the CDN directly.

    python bench/stream.py [--size-mib 1024] [--runs 3] [--streams 8] [--ttfb-runs 20]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.dav.auth import hash_password
from tests.support.pikpak_raw import RawSession, control

MIB = 1 << 20
PIKPAK_USER, PIKPAK_PASSWORD = "alice@example.com", "correct horse"
DAV_USER, DAV_PASSWORD = "alice", "wonderland"
CURL_FORMAT = "%{time_starttransfer} %{time_total} %{size_download} %{http_code}"


def curl(url: str, *extra: str, auth: bool = False) -> tuple[float, float, int, int]:
    """(time to first byte, total time, bytes, final status) of one curl GET into nothing."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", CURL_FORMAT, *extra]
    if auth:
        cmd += ["-u", f"{DAV_USER}:{DAV_PASSWORD}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    ttfb, total, size, code = out.split()
    return float(ttfb), float(total), int(float(size)), int(code)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def redirects_per_second(url: str, threads: int, seconds: float) -> tuple[float, int]:
    """302s per second from keep-alive connections; and how many answers were not 302."""
    parts = urlsplit(url)
    token = base64.b64encode(f"{DAV_USER}:{DAV_PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    deadline = time.perf_counter() + seconds
    counts = [0] * threads
    wrong = [0] * threads

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        while time.perf_counter() < deadline:
            conn.request("GET", parts.path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 302:
                counts[i] += 1
            else:
                wrong[i] += 1
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed, sum(wrong)


def start_gateway(tmp: Path, emulator: str) -> tuple[subprocess.Popen, str, Path]:
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp / "state"),
        "accounts": {
            "main": {
                "username": PIKPAK_USER,
                "password": PIKPAK_PASSWORD,
                "token_store": None,
                "user_api": emulator,
                "drive_api": emulator,
            }
        },
        "mounts": [
            {"name": "proxy", "account": "main", "download": "proxy"},
            {"name": "redir", "account": "main", "download": "redirect"},
        ],
        "users": {DAV_USER: {"password_hash": hash_password(DAV_PASSWORD), "mounts": ["*"]}},
    }
    proc, url = serve(tmp, config)
    return proc, url, tmp / "gateway.log"


def serve(tmp: Path, config: dict, source: Path | None = None) -> tuple[subprocess.Popen, str]:
    """A ``pikdav serve`` process with ``config`` (written to ``tmp``), and its URL; its log
    goes to ``tmp/gateway.log``. ``source``: run the pikdav of that checkout instead."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp / "gateway.log"
    env = dict(os.environ, PYTHONPATH=str(source)) if source is not None else None
    with open(log, "wb") as err:  # one log line per request: never into a pipe we do not read
        proc = subprocess.Popen(
            [sys.executable, "-m", "pikdav.cli", "serve", "-c", str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=source,
        )
    url = proc.stdout.readline().strip().rstrip("/")
    if not url:
        proc.wait(timeout=10)
        raise SystemExit(f"the gateway did not start:\n{log.read_text()}")
    return proc, url


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--redirect-threads", type=int, default=4)
    parser.add_argument("--redirect-seconds", type=float, default=5.0)
    parser.add_argument("--ttfb-runs", type=int, default=20)
    parser.add_argument(
        "--cdn-rate-mbs",
        type=int,
        default=200,
        help="CDN speed (MB/s) for the rate-limited comparison",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    emu = gateway = None
    try:
        emu = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pikdav.cli",
                "emulator",
                "--account",
                f"{PIKPAK_USER}:{PIKPAK_PASSWORD}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        base = emu.stdout.readline().strip()
        made = control(
            base, "files", {"username": PIKPAK_USER, "path": "big.bin", "size": size, "seed": 1}
        )
        raw = RawSession(base, PIKPAK_USER, PIKPAK_PASSWORD)
        raw.signin()
        raw.captcha(f"GET:/drive/v1/files/{made['id']}")
        direct = raw.get(f"/drive/v1/files/{made['id']}").json()["links"][
            "application/octet-stream"
        ]["url"]

        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            gateway, url, _ = start_gateway(tmp, base)
            proxied, redirected = f"{url}/proxy/big.bin", f"{url}/redir/big.bin"
            # Warm-up (untimed): sign-in, listings, link caches, the scrypt cache.
            for target in (proxied, redirected):
                first = curl(target, "-r", "0-0", auth=True)
                assert first[3] in (206, 302), first

            # 1. throughput, one stream, best of N (alternating).
            best = {"direct": 0.0, "proxy": 0.0}
            for _ in range(args.runs):
                for kind, target, auth in (("direct", direct, False), ("proxy", proxied, True)):
                    _, total, got, code = curl(target, auth=auth)
                    assert (got, code) == (size, 200), (kind, got, code)
                    best[kind] = max(best[kind], size / total / 1e9)

            # 1b. the same with the CDN limited to a realistic speed (it never is unlimited).
            control(base, "config", {"cdn_rate": args.cdn_rate_mbs * 1_000_000})
            limited = {"direct": 0.0, "proxy": 0.0}
            for _ in range(2):
                for kind, target, auth in (("direct", direct, False), ("proxy", proxied, True)):
                    _, total, got, code = curl(target, auth=auth)
                    assert (got, code) == (size, 200), (kind, got, code)
                    limited[kind] = max(limited[kind], size / total / 1e9)
            control(base, "config", {"cdn_rate": 0})

            # 2. peak RSS with parallel streams.
            before = proc_status(gateway.pid)
            sampled = [before["VmRSS"]]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.05):
                    sampled.append(proc_status(gateway.pid)["VmRSS"])

            sampler = threading.Thread(target=sample)
            sampler.start()
            start = time.perf_counter()
            with ThreadPoolExecutor(args.streams) as pool:
                results = list(pool.map(lambda _: curl(proxied, auth=True), range(args.streams)))
            wall = time.perf_counter() - start
            done.set()
            sampler.join()
            after = proc_status(gateway.pid)
            assert all((r[2], r[3]) == (size, 200) for r in results), results
            aggregate = args.streams * size / wall / 1e9

            # 3. redirects per second, warm link cache.
            rate, wrong = redirects_per_second(
                redirected, args.redirect_threads, args.redirect_seconds
            )

            # 4. time to first byte, median of N.
            ttfb: dict[str, list[float]] = {"302": [], "302 -L": [], "proxy": [], "direct": []}
            for _ in range(args.ttfb_runs):
                for kind, target, extra, auth in (
                    ("302", redirected, (), True),
                    ("302 -L", redirected, ("-L",), True),
                    ("proxy", proxied, (), True),
                    ("direct", direct, (), False),
                ):
                    first_byte, _, got, code = curl(target, *extra, auth=auth)
                    assert code == (302 if kind == "302" else 200), (kind, code)
                    assert kind == "302" or got == size, (kind, got)
                    ttfb[kind].append(first_byte * 1000)
            med = {k: statistics.median(v) for k, v in ttfb.items()}
    finally:
        stop(gateway)
        stop(emu)

    mib = 1024
    print(f"| measure | {args.size_mib} MiB synthetic file |")
    print("|---|---|")
    print(f"| direct CDN download, curl, best of {args.runs} | {best['direct']:.2f} GB/s |")
    print(f"| proxied through the gateway, curl, best of {args.runs} | {best['proxy']:.2f} GB/s |")
    print(f"| ratio proxied / direct | **{best['proxy'] / best['direct']:.2f}×** |")
    print(
        f"| CDN limited to {args.cdn_rate_mbs} MB/s: direct / proxied, best of 2 | "
        f"{limited['direct'] * 1000:.0f} / {limited['proxy'] * 1000:.0f} MB/s |"
    )
    print(
        f"| ratio proxied / direct at {args.cdn_rate_mbs} MB/s | "
        f"**{limited['proxy'] / limited['direct']:.2f}×** |"
    )
    print(f"| {args.streams} parallel proxied streams, aggregate | {aggregate:.2f} GB/s |")
    print(
        f"| gateway VmHWM after the streams − VmRSS before | "
        f"**{(after['VmHWM'] - before['VmRSS']) / mib:.0f} MiB** |"
    )
    print(
        f"| gateway VmRSS before / VmHWM before / VmHWM after / max sampled VmRSS | "
        f"{before['VmRSS'] / mib:.0f} / {before['VmHWM'] / mib:.0f} / "
        f"{after['VmHWM'] / mib:.0f} / {max(sampled) / mib:.0f} MiB |"
    )
    print(
        f"| 302 redirects per second, warm link cache, {args.redirect_threads} keep-alive "
        f"clients, {args.redirect_seconds:.0f} s | {rate:.0f}/s ({wrong} not 302) |"
    )
    print(f"| TTFB, 302 answer (no -L), median of {args.ttfb_runs} | {med['302']:.1f} ms |")
    print(f"| TTFB, redirect followed (-L) to the CDN | {med['302 -L']:.1f} ms |")
    print(f"| TTFB, proxied | {med['proxy']:.1f} ms |")
    print(f"| TTFB, direct CDN | {med['direct']:.1f} ms |")


if __name__ == "__main__":
    main()
