"""pikdav against `rclone serve webdav` over rclone's pikpak backend, on the same emulator.

Both servers reach the emulator the same way: through one loopback CONNECT proxy that tunnels
every ``*.mypikpak.com`` host to the emulator's TLS port (rclone's pikpak backend only knows
PikPak's real host names), trusting the same test CA. pikdav is given that proxy with
``accounts.<name>.proxy`` and the CA with ``ca_cert``; rclone with ``HTTPS_PROXY`` and
``--ca-cert``. The tunnel's own ceiling is measured too (a CDN link fetched through it by curl):
no server can be faster than it.

Side by side in one run, once with the unthrottled CDN and once with PikPak's limits (per
connection ``--rate`` MB/s, 8 connections per link, 20 per account, 30 ms first-byte delay):
cold and warm PROPFIND Depth 1 of ``--entries`` files, a GET of a large file, time to first
byte of a 64 KiB Range at random offsets (median), a PUT of fresh content, and each server's
peak RSS.

    python bench/vs_rclone.py [--entries 10000] [--get-mib 1024] [--put-mib 256] [--rate 4]
    python bench/vs_rclone.py --smoke      # small sizes: does it all run
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DAV_PASSWORD,
    DAV_USER,
    MIB,
    curl,
    heading,
    make_file,
    proc_status,
    propfind,
    seconds_of,
    serve,
    stop,
)
from bench.common import start_emulator as start_plain_emulator
from pikdav.dav.auth import hash_password
from tests.support.connect_proxy import ConnectProxy
from tests.support.pikpak_raw import pikpak_cdn
from tests.support.rclone import RcloneRemote
from tests.support.tlsca import TestCA, make_test_ca
from tests.support.waits import wait_for_port
from tests.support.web import free_port

USER, PASSWORD = "bench@example.com", "bench pass"

VERIFY: list[str] = []  # the test CA's file, once made (the emulator's certificate)


def timed_propfind(url: str) -> float:
    return seconds_of(lambda: propfind(url))


def control(base: str, name: str, body: dict | None = None, method: str = "POST") -> dict:
    resp = requests.request(method, f"{base}/__emulator__/{name}", json=body, verify=VERIFY[0])
    resp.raise_for_status()
    return resp.json()


def start_emulator(tmp: Path, entries: int) -> tuple[subprocess.Popen, str, int, TestCA]:
    """``pikdav emulator`` over TLS (a test CA made in ``tmp``, trusted by :func:`control`)
    with the bench's account and ``entries`` one-byte files in ``many/``: the process, its
    URL, its port, and the CA."""
    ca = make_test_ca(tmp / "ca")
    VERIFY.append(str(ca.ca_cert))
    emu, base = start_plain_emulator(tmp, user=USER, password=PASSWORD, ca=ca)
    session = requests.Session()
    for index in range(entries):
        session.post(
            f"{base}/__emulator__/files",
            json={"username": USER, "path": f"many/f{index:05d}.bin", "size": 1},
            verify=VERIFY[0],
        ).raise_for_status()
    return emu, base, int(base.rsplit(":", 1)[1]), ca


def pikdav_config(tmp: Path, proxy: ConnectProxy, ca) -> dict:
    """pikdav on the emulator through ``proxy``, trusting the test CA, proxying its GETs."""
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp / "pikdav-state"),
        "accounts": {
            "main": {
                "username": USER,
                "password": PASSWORD,
                "proxy": proxy.url,
                "ca_cert": str(ca.ca_cert),
            }
        },
        "mounts": [{"name": "pp", "account": "main", "download": "proxy"}],
        "users": {DAV_USER: {"password_hash": hash_password(DAV_PASSWORD), "mounts": ["*"]}},
    }


def start_pikdav(tmp: Path, proxy: ConnectProxy, ca) -> tuple[subprocess.Popen, str]:
    proc, url = serve(tmp, pikdav_config(tmp, proxy, ca))
    return proc, f"{url}/pp"


def start_rclone(remote: RcloneRemote, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = remote.command(
        "serve", "webdav", remote.root, "--addr", f"127.0.0.1:{port}",
        "--user", DAV_USER, "--pass", DAV_PASSWORD, "--dir-cache-time", "60s",
    )  # fmt: skip
    command.remove("-vv")
    with open(tmp / "rclone.log", "wb") as log:
        proc = subprocess.Popen(command, env=remote.env(), stdout=log, stderr=log)
    log = tmp / "rclone.log"
    wait_for_port(port, "rclone", proc, seconds=60, died=log.read_text)
    return proc, f"http://127.0.0.1:{port}"


def measure(
    name: str, url: str, size: int, seeks: list[int], put: Path | None, file: str = "big.bin"
) -> dict:
    figures: dict = {}
    _, total, got, code = curl(f"{url}/{file}", auth=True)
    assert (got, code) == (size, 200), (name, got, code)
    figures["get"] = size / total / 1e6
    figures["seek"] = statistics.median(
        curl(f"{url}/{file}", "-r", f"{offset}-{offset + 65535}", auth=True)[0] for offset in seeks
    )
    if put is not None:
        _, total, _, code = curl(f"{url}/up-{name}.bin", "-T", str(put), auth=True)
        assert code in (201, 204), (name, code)
        figures["put"] = put.stat().st_size / total / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--get-mib", type=int, default=1024, help="the unthrottled GET")
    parser.add_argument("--limited-mib", type=int, default=256, help="the GET with limits")
    parser.add_argument("--put-mib", type=int, default=256)
    parser.add_argument("--rate", type=float, default=4.0, help="MB/s per CDN connection")
    parser.add_argument("--seeks", type=int, default=10)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.entries, args.get_mib, args.limited_mib, args.put_mib = 200, 16, 8, 8
        args.seeks, args.rate = 3, 16.0
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        emu = pikdav = rclone = None
        try:
            emu, base, port, ca = start_emulator(tmp, args.entries)
            big, limited = args.get_mib * MIB, args.limited_mib * MIB
            control(base, "files", {"username": USER, "path": "big.bin", "size": big, "seed": 1})
            # The file of the run with limits, there from the start (no listing goes stale).
            control(
                base,
                "files",
                {"username": USER, "path": "limited.bin", "size": limited, "seed": 2},
            )
            # Content of its own for each server: both upload into one account, and PikPak
            # (the emulator too) takes a second upload of content it has by its hash alone,
            # without a byte sent, which would make the second server look fast.
            puts = {name: tmp / f"fresh-{name}.bin" for name in ("pikdav", "rclone")}
            for path in puts.values():
                make_file(path, args.put_mib * MIB)
            with ConnectProxy(("127.0.0.1", port)) as proxy:
                remote = RcloneRemote(ca, proxy, USER, PASSWORD, tmp / "rclone")
                remote.authorize()
                pikdav, pikdav_url = start_pikdav(tmp, proxy, ca)
                rclone, rclone_url = start_rclone(remote, tmp)
                servers = {"pikdav": pikdav_url, "rclone": rclone_url}
                print(heading(__file__))
                rows = {}
                for name, url in servers.items():
                    cold = timed_propfind(f"{url}/many/")
                    warm = statistics.median(timed_propfind(f"{url}/many/") for _ in range(3))
                    rows[name] = {"cold": cold, "warm": warm}
                # The tunnel's ceiling: a CDN link fetched through the proxy by curl.
                link = _direct_link(base)
                _, total, got, _ = curl(link, "-x", proxy.url, "--cacert", str(ca.ca_cert))
                tunnel = got / total / 1e6
                rng = random.Random(3)
                seeks = [rng.randrange(big - 65536) for _ in range(args.seeks)]
                for name, url in servers.items():
                    rows[name] |= measure(name, url, big, seeks, puts[name])
                for name, proc in (("pikdav", pikdav), ("rclone", rclone)):
                    rows[name]["rss"] = proc_status(proc.pid)["VmHWM"] / 1024
                _print("unthrottled CDN", rows, tunnel)

                control(base, "config", pikpak_cdn(int(args.rate * 1e6)))
                seeks = [rng.randrange(limited - 65536) for _ in range(args.seeks)]
                rows = {
                    name: measure(name, url, limited, seeks, None, "limited.bin")
                    for name, url in servers.items()
                }
                _, total, got, _ = curl(
                    _direct_link(base, "limited.bin"),
                    "-x", proxy.url, "--cacert", str(ca.ca_cert),
                )  # fmt: skip
                print(f"direct single connection at the limits: {got / total / 1e6:.1f} MB/s")
                _print(f"PikPak's limits ({args.rate:g} MB/s per connection)", rows, None)
        finally:
            for proc in (pikdav, rclone, emu):
                stop(proc)


def _direct_link(base: str, file: str = "big.bin") -> str:
    """The file's CDN link, asked for from loopback (where the proxy connects from), on a
    PikPak download host name, so that curl reaches it through the tunnel as the servers do."""
    from tests.support.pikpak_raw import RawSession

    raw = RawSession(base, USER, PASSWORD)
    raw.http.verify, raw.http.trust_env = VERIFY[0], False
    raw.signin()
    listing = raw.get("/drive/v1/files", parent_id="", limit=100).json()["files"]
    file_id = next(f["id"] for f in listing if f["name"] == file)
    raw.captcha(f"GET:/drive/v1/files/{file_id}")
    link = urlsplit(raw.get(f"/drive/v1/files/{file_id}").json()["web_content_link"])
    return link._replace(scheme="https", netloc="dl-a10b-0621.mypikpak.com").geturl()


def _print(title: str, rows: dict, tunnel: float | None) -> None:
    print(f"\n{title}")
    keys = [k for k in ("cold", "warm", "get", "seek", "put", "rss") if k in rows["pikdav"]]
    units = {"cold": "s", "warm": "s", "get": "MB/s", "seek": "ms", "put": "MB/s", "rss": "MiB"}
    print("| | " + " | ".join(f"{k} ({units[k]})" for k in keys) + " |")
    for name, row in rows.items():
        cells = [
            f"{row[k] * 1000:.0f}" if k == "seek" else f"{row[k]:.2f}" if k in ("cold", "warm")
            else f"{row[k]:.0f}" for k in keys
        ]  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")
    if tunnel is not None:
        print(f"tunnel ceiling (curl through the CONNECT proxy): {tunnel:.0f} MB/s")


if __name__ == "__main__":
    main()
