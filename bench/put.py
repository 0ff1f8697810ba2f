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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MIB,
    PIKPAK_PASSWORD,
    PIKPAK_USER,
    curl,
    drive_on,
    gateway_config,
    make_file,
    proc_status,
    serve,
    start_emulator,
    stop,
)
from tests.support.pikpak_raw import control


def vm(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in MiB."""
    return {key: kib // 1024 for key, kib in proc_status(pid).items()}


def curl_put(url: str, path: Path) -> float:
    """Seconds of one PUT of ``path`` by curl (-T, with Content-Length)."""
    _, total, _, code = curl(url, "-T", str(path), auth=True)
    assert code in (201, 204), code
    return total


def child_upload(base: str, path: str) -> None:
    from pikdav.pikpak.upload import Uploader

    drive = drive_on(base, PIKPAK_USER, PIKPAK_PASSWORD)
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
        emu = gateway = None
        try:
            emu, base = start_emulator(tmp_path)
            config = gateway_config(tmp_path, base, [{"name": "pikpak"}], temp_dir=tmp)
            gateway, root = serve(tmp_path, config)
            url = f"{root}/pikpak/"
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
                stop(proc)
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
