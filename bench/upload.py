"""Upload of a large file: pikdav's uploader against a plain multipart upload, side by side.

Both legs run in their own process against one ``pikdav emulator`` process, with the same
part size and concurrency. The plain leg gets its ticket and GCID beforehand (untimed) and
only moves bytes with boto3; pikdav's leg is timed whole: GCID, ticket, multipart upload,
completion. Peak RSS growth is measured in each child after its imports and sign-in.

    python bench/upload.py [--size-mib 1024] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MIB, drive_on, make_file, start_emulator, stop

PART = 8 * MIB
CONCURRENCY = 4
USER, PASSWORD = "bench", "pw"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_pikdav(base: str, path: str) -> dict:
    from pikdav.pikpak.upload import Uploader, UploadSettings

    drive = drive_on(base, USER, PASSWORD)
    import boto3  # noqa: F401 - imported before the baseline, as the plain leg does

    base_rss = rss_mib()
    start = time.perf_counter()
    up = Uploader(drive, UploadSettings(cutoff=64 * MIB, part_size=PART, concurrency=CONCURRENCY))
    done = up.upload_file("", Path(path).name, Path(path))
    elapsed = time.perf_counter() - start
    assert done.complete and done.size == os.path.getsize(path)
    return {"seconds": elapsed, "rss_growth_mib": rss_mib() - base_rss}


def child_plain(base: str, path: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    from pikdav.pikpak.gcid import GcidHasher
    from tests.support.pikpak_raw import RawSession

    size = os.path.getsize(path)
    hasher = GcidHasher(size)
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            hasher.update(chunk)
    raw = RawSession(base, USER, PASSWORD)
    raw.signin()
    raw.captcha("POST:/drive/v1/files")
    ticket = raw.post(
        "/drive/v1/files",
        {
            "kind": "drive#file",
            "name": Path(path).name,
            "parent_id": "",
            "size": size,
            "hash": hasher.hexdigest(),
            "upload_type": "UPLOAD_TYPE_RESUMABLE",
        },
    ).json()
    params = ticket["resumable"]["params"]
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{params['endpoint']}",
        aws_access_key_id=params["access_key_id"],
        aws_secret_access_key=params["access_key_secret"],
        aws_session_token=params["security_token"],
        config=Config(
            region_name="pikpak",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=CONCURRENCY + 2,
        ),
    )
    base_rss = rss_mib()
    start = time.perf_counter()
    bucket, key = params["bucket"], params["key"]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    fd = os.open(path, os.O_RDONLY)

    def part(n: int) -> dict:
        data = os.pread(fd, min(PART, size - (n - 1) * PART), (n - 1) * PART)
        etag = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data
        )["ETag"]
        return {"PartNumber": n, "ETag": etag}

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        parts = list(pool.map(part, range(1, -(-size // PART) + 1)))
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rss_growth_mib": rss_mib() - base_rss}


def run_child(kind: str, base: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, base, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, base, path = args.child
        fn = child_pikdav if kind == "pikdav" else child_plain
        print(json.dumps(fn(base, path)))
        return
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory() as tmp:
        emu, base = start_emulator(Path(tmp), user=USER, password=PASSWORD)
        try:
            results: dict[str, list[dict]] = {"plain": [], "pikdav": []}
            for run in range(args.runs):
                for kind in ("plain", "pikdav"):
                    path = Path(tmp) / f"{kind}-{run}.bin"
                    make_file(path, size)  # fresh content: never an instant upload
                    results[kind].append(run_child(kind, base, path))
                    path.unlink()
            best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
            mb = size / 1e6
            for kind in ("plain", "pikdav"):
                r = best[kind]
                print(
                    f"{kind:7s} {args.size_mib} MiB: {r['seconds']:.2f} s "
                    f"({mb / r['seconds']:.0f} MB/s), peak RSS growth "
                    f"{r['rss_growth_mib']:.0f} MiB"
                )
            ratio = best["plain"]["seconds"] / best["pikdav"]["seconds"]
            print(
                f"pikdav throughput / plain multipart throughput: {ratio:.2f}x "
                f"(best of {args.runs})"
            )
        finally:
            stop(emu)


if __name__ == "__main__":
    main()
