"""A gateway without Redis never loads the ``redis`` package (about 10 MiB of memory on a
small home server); one with Redis does, and works."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, tempfile, threading
    from pathlib import Path

    import requests

    from pikdav.assembly import build_app, build_mounts, make_server
    from pikdav.config import parse_config
    from pikdav.dav.auth import hash_password
    from pikdav.demo import demo_config, start_demo_emulator

    work = Path(tempfile.mkdtemp())
    emulator = start_demo_emulator(work / "emulator")
    data = demo_config(emulator, "127.0.0.1", 0, hash_password("pw"), work / "state")
    if len(sys.argv) > 1:
        data["redis"] = sys.argv[1]
    config = parse_config(data, "demo")
    server = make_server(config, build_app(config, build_mounts(config)))
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    host, port = server.bind_addr[:2]
    url = f"http://{host}:{port}"
    listing = requests.request(
        "PROPFIND", url + "/pikpak/", auth=("demo", "pw"), headers={"Depth": "1"}, timeout=60
    )
    readme = requests.get(url + "/pikpak/Documents/README.txt", auth=("demo", "pw"), timeout=60)
    made = requests.request("MKCOL", url + "/pikpak/New", auth=("demo", "pw"), timeout=60)
    print(listing.status_code, readme.status_code, made.status_code, "redis" in sys.modules)
    server.stop()
    emulator.stop()
    """
)


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split("\n")[-2]


def test_a_gateway_without_redis_never_imports_it():
    assert run() == "207 200 201 False"


def test_a_gateway_with_redis_imports_it_and_works(redis_url):
    assert run(redis_url) == "207 200 201 True"
