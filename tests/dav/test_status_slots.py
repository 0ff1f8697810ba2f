"""The status page shows what the later parts know: each share mount's state with what to do,
and whether the Redis that several instances share answers."""

from __future__ import annotations

import threading

import requests

from pikdav.assembly import build_app, build_mounts, make_server
from pikdav.config import parse_config
from tests.support.gateway import _HASH, DAV_PASSWORD, DAV_USER
from tests.support.redis_server import redis_process
from tests.support.shares import add_file, make_share, set_share_status, share_mount

ADMIN = {DAV_USER: {"password_hash": _HASH, "mounts": ["*"], "admin": True}}


def page(url: str) -> str:
    resp = requests.get(f"{url}/_pikdav/", auth=(DAV_USER, DAV_PASSWORD), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.text


def test_each_share_mount_shows_its_state_and_what_to_do(emulator, tmp_path):
    add_file(emulator, "Trip/a.txt", content="aGVsbG8=")
    open_share, gone_share = make_share(emulator, "Trip"), make_share(emulator, "Trip")
    set_share_status(emulator, gone_share["share_id"], "EXPIRED")
    data = {
        "server": {"host": "127.0.0.1", "port": 0, "threads": 8},
        "state_dir": str(tmp_path / "state"),
        "mounts": [
            share_mount(emulator, "trip", open_share["share_url"]),
            share_mount(emulator, "old", gone_share["share_url"]),
        ],
        "users": ADMIN,
    }
    config = parse_config(data, "test-config.yaml", base_dir=tmp_path)
    mounts = build_mounts(config)
    server = make_server(config, build_app(config, mounts))
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        host, port = server.bind_addr[:2]
        url = f"http://{host}:{port}"
        for name in ("trip", "old"):  # a client reads each share once
            requests.request(
                "PROPFIND", f"{url}/{name}/", headers={"Depth": "1"}, auth=(DAV_USER, DAV_PASSWORD)
            )
        html = page(url)
        assert "trip: OK" in html
        assert "old: EXPIRED (" in html  # with what to do about it
    finally:
        server.stop()


def test_the_shared_state_shows_whether_redis_answers(emulator, make_gateway, tmp_path):
    (tmp_path / "redis").mkdir()
    with redis_process(tmp_path / "redis") as redis:
        gw = make_gateway(download="proxy", redis=redis.url, users=ADMIN)
        assert "answering" in page(gw.url)
        redis.stop()
        # A change finds Redis gone (reads keep being served from the caches).
        requests.request("MKCOL", f"{gw.url}/pikpak/new", auth=gw.auth, timeout=30)
        html = page(gw.url)
        assert "unreachable" in html and "changes and locks are refused" in html
