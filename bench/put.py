"""PUT of a large file through the gateway, side by side with pikdav's client uploading the
same size directly, and a PUT of content PikPak already has against hashing it locally.

One ``pikdav emulator`` process and one ``pikdav serve`` process; curl sends the PUTs
(``-T``, with Content-Length). The direct leg runs pikdav's ``Uploader`` in a child process.
Fresh random content for each upload (else PikPak would recognise it); the "known content"
leg PUTs a file that was uploaded before, so no byte should reach the object store.

    python bench/put.py [--size-mib 1024] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pikdav.dav.auth import hash_password
from tests.support.pikpak_raw import control

MIB = 1 << 20
USER, PASSWORD = "alice@example.com", "correct horse"


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(size // (64 * MIB)):
            fh.write(os.urandom(64 * MIB))
        fh.write(os.urandom(size % (64 * MIB)))


def vm(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) // 1024
    return out


def curl_put(url: str, path: Path) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            "alice:wonderland",
            "-T",
            str(path),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out in ("201", "204"), out
    return time.perf_counter() - start


def child_upload(base: str, path: str) -> None:
    from pikdav.pikpak.drive import Drive
    from pikdav.pikpak.session import Credentials, Session
    from pikdav.pikpak.tokenstore import MemoryTokenStore
    from pikdav.pikpak.upload import Uploader

    drive = Drive(
        Session(Credentials(USER, PASSWORD), MemoryTokenStore(), user_api=base, drive_api=base)
    )
    drive.about()
    start = time.perf_counter()
    Uploader(drive).upload_file("", Path(path).name, Path(path))
    print(json.dumps({"seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_upload(*args.child)
        return
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        emu = subprocess.Popen(
            [sys.executable, "-m", "pikdav.cli", "emulator", "--account", f"{USER}:{PASSWORD}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        gateway = None
        try:
            base = emu.stdout.readline().strip()
            config = {
                "server": {"host": "127.0.0.1", "port": 0, "temp_dir": tmp},
                "state_dir": str(tmp_path / "state"),
                "accounts": {
                    "main": {
                        "username": USER,
                        "password": PASSWORD,
                        "user_api": base,
                        "drive_api": base,
                    }
                },
                "mounts": [{"name": "pikpak"}],
                "users": {"alice": {"password_hash": hash_password("wonderland")}},
            }
            (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
            gateway = subprocess.Popen(
                [sys.executable, "-m", "pikdav.cli", "serve", "-c", str(tmp_path / "config.yaml")],
                stdout=subprocess.PIPE,
                stderr=(tmp_path / "gateway.log").open("w"),
                text=True,
            )
            url = gateway.stdout.readline().strip() + "pikpak/"
            times: dict[str, list[float]] = {"put": [], "client": []}
            # Warm-up: the first PUT signs in and imports boto3 (both legs do that untimed).
            warm = tmp_path / "warm.bin"
            make_file(warm, 9 * MIB)
            curl_put(url + "warm.bin", warm)
            before = vm(gateway.pid)
            for run in range(args.runs):
                for kind in ("client", "put"):
                    path = tmp_path / f"{kind}-{run}.bin"
                    make_file(path, size)
                    if kind == "put":
                        times[kind].append(curl_put(url + path.name, path))
                    else:
                        out = subprocess.run(
                            [sys.executable, __file__, "--child", base, str(path)],
                            check=True,
                            capture_output=True,
                            text=True,
                        ).stdout
                        times[kind].append(json.loads(out.splitlines()[-1])["seconds"])
                    if not (kind == "put" and run == args.runs - 1):
                        path.unlink()
            after = vm(gateway.pid)
            # Known content: the last file PUT above, PUT again under another name.
            known = tmp_path / f"put-{args.runs - 1}.bin"
            moved = control(base, "stats", method="GET")["total"]["objstore_bytes"]
            known_put = min(curl_put(url + f"again-{i}.bin", known) for i in range(2))
            moved_after = control(base, "stats", method="GET")["total"]["objstore_bytes"]
            from pikdav.pikpak.upload import gcid_of_file

            hashing = []
            for _ in range(2):
                start = time.perf_counter()
                gcid_of_file(known)
                hashing.append(time.perf_counter() - start)
            phases = [
                line.split("pikdav.dav.provider: ")[1]
                for line in (tmp_path / "gateway.log").read_text().splitlines()
                if "received in" in line
            ]
        finally:
            for proc in (gateway, emu):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=20)
    mb = size / 1e6
    put, client = min(times["put"]), min(times["client"])
    print(f"| measure | {args.size_mib} MiB |")
    print("|---|---|")
    print(
        f"| pikdav client upload (GCID + ticket + multipart), best of {args.runs} | "
        f"{client:.2f} s ({mb / client:.0f} MB/s) |"
    )
    print(
        f"| PUT through the gateway (curl -T), best of {args.runs} | "
        f"{put:.2f} s ({mb / put:.0f} MB/s) |"
    )
    print(f"| ratio PUT / client upload (throughput) | **{client / put:.2f}×** |")
    print(
        f"| gateway RSS before / peak after (VmHWM) | {before['VmRSS']} / "
        f"{after['VmHWM']} MiB (growth {after['VmHWM'] - before['VmRSS']} MiB) |"
    )
    print(f"| PUT of known content, best of 2 | {known_put:.2f} s |")
    print(f"| hashing the same file locally (GCID), best of 2 | {min(hashing):.2f} s |")
    print(f"| ratio known PUT / local hashing | **{known_put / min(hashing):.2f}×** |")
    print(f"| bytes sent to the object store by the known-content PUTs | {moved_after - moved} |")
    for line in phases:
        print(f"gateway: {line}")


if __name__ == "__main__":
    main()
