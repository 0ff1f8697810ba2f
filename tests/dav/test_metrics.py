"""/metrics: Prometheus' text format, read back with prometheus_client's own parser; the values
follow from a known sequence of requests."""

from __future__ import annotations

import base64
import http.client
import threading
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from pikdav.assembly import build_app_and_metrics, build_mounts, make_metrics_server, make_server
from pikdav.config import parse_config
from pikdav.dav.metrics import endpoint
from tests.support.gateway import _HASH, DAV_PASSWORD, PIKPAK_PASSWORD, PIKPAK_USER
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

ADMIN, VIEWER = ("alice", DAV_PASSWORD), ("bob", DAV_PASSWORD)
USERS = {"alice": {"password_hash": _HASH, "admin": True}, "bob": {"password_hash": _HASH}}
FILM = 3 << 20


def scrape(url: str, auth=ADMIN) -> dict[tuple[str, tuple], float]:
    resp = requests.get(url, auth=auth, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def get_from(url: str, path: str, address: str) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, source_address=(address, 0))
    basic = base64.b64encode(":".join(ADMIN).encode()).decode()
    conn.request("GET", path, headers={"Authorization": f"Basic {basic}"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_metrics_count_what_a_known_sequence_of_requests_did(emulator, make_gateway):
    control(emulator.base_url, "files", {"username": PIKPAK_USER, "path": "film.mkv", "size": FILM})
    # 127.0.0.2 plays the LAN client that gets redirects; 127.0.0.1 is proxied.
    gw = make_gateway(download="auto", redirect_networks=["127.0.0.2/32"], users=USERS)
    metrics = gw.url + "/metrics"
    assert requests.get(metrics, timeout=10).status_code == 401
    assert requests.get(metrics, auth=VIEWER, timeout=10).status_code == 403
    before = scrape(metrics)

    for _ in range(3):
        resp = requests.request(
            "PROPFIND", gw.url + "/pikpak/", auth=ADMIN, headers={"Depth": "1"}, timeout=30
        )
        assert resp.status_code == 207
    assert requests.get(gw.url + "/pikpak/film.mkv", auth=ADMIN, timeout=30).content
    assert requests.get(gw.url + "/pikpak/missing.mkv", auth=ADMIN, timeout=30).status_code == 404
    assert get_from(gw.url, "/pikpak/film.mkv", "127.0.0.2").status == 302
    for _ in range(2):
        assert (
            requests.request(
                "PROPFIND", gw.url + "/pikpak/", auth=("alice", "wrong"), timeout=30
            ).status_code
            == 401
        )
    # A stream ends when its body is closed, after the client has every byte: scrape until
    # it has (each scrape is a GET answered 200 itself).
    scrapes = 0

    def settled() -> dict | None:
        nonlocal scrapes
        scrapes += 1
        found = scrape(metrics)
        return found if value(found, "pikdav_active_streams") == 0 else None

    after = wait_until(settled, "the proxied stream to end", 10)

    assert delta(before, after, "pikdav_dav_requests_total", method="PROPFIND", status="207") == 3
    assert delta(before, after, "pikdav_dav_requests_total", method="PROPFIND", status="401") == 2
    assert delta(before, after, "pikdav_dav_requests_total", method="GET", status="200") == (
        1 + scrapes
    )
    assert delta(before, after, "pikdav_dav_requests_total", method="GET", status="404") == 1
    assert delta(before, after, "pikdav_dav_requests_total", method="GET", status="302") == 1
    assert delta(before, after, "pikdav_proxied_bytes_total") == FILM
    assert delta(before, after, "pikdav_redirects_total") == 1
    # The mount's root was listed once upstream; the other PROPFINDs were answered from the
    # cache. The link was asked for once: the redirect found it cached.
    assert delta(before, after, "pikdav_cache_misses_total", mount="pikpak", cache="listing") == 1
    assert delta(before, after, "pikdav_cache_hits_total", mount="pikpak", cache="listing") >= 2
    assert delta(before, after, "pikdav_cache_misses_total", mount="pikpak", cache="link") == 1
    assert delta(before, after, "pikdav_cache_hits_total", mount="pikpak", cache="link") >= 1
    # Upstream calls by endpoint and outcome, with their latency.
    lists = value(
        after, "pikdav_upstream_calls_total", account="main", endpoint="GET /drive/v1/files",
        outcome="ok",
    )  # fmt: skip
    assert lists >= 1
    assert (
        value(
            after,
            "pikdav_upstream_call_seconds_count",
            account="main",
            endpoint="GET /drive/v1/files",
        )
        == lists
    )
    assert value(
        after, "pikdav_upstream_calls_total", account="main", endpoint="POST /v1/auth/signin",
        outcome="ok",
    ) == 1  # fmt: skip
    assert value(after, "pikdav_sign_ins_total", account="main") == 1
    assert value(after, "pikdav_refreshes_total", account="main") == 0
    assert value(after, "pikdav_signed_in", account="main") == 1
    assert value(after, "pikdav_offline_tasks", account="main", phase="complete") == 0


def test_metrics_addr_serves_metrics_alone_without_a_login(emulator, tmp_path):
    config = parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 0, "metrics_addr": "127.0.0.1:0"},
            "state_dir": str(tmp_path / "state"),
            "accounts": {
                "main": {
                    "username": PIKPAK_USER,
                    "password": PIKPAK_PASSWORD,
                    "user_api": emulator.base_url,
                    "drive_api": emulator.base_url,
                }
            },
            "mounts": [{"name": "pikpak", "background_uploads": True}],
            "users": USERS,
        },
        "test.yaml",
    )
    app, metrics = build_app_and_metrics(config, build_mounts(config))
    servers = [make_server(config, app), make_metrics_server(config, metrics)]
    for server in servers:
        server.prepare()
        threading.Thread(target=server.serve, daemon=True).start()
    try:
        main, side = (f"http://127.0.0.1:{s.bind_addr[1]}" for s in servers)
        resp = requests.put(main + "/pikpak/a.txt", data=b"hello", auth=ADMIN, timeout=30)
        assert resp.status_code == 201
        samples = scrape(side + "/metrics", auth=None)
        assert value(samples, "pikdav_dav_requests_total", method="PUT", status="201") == 1
        assert {"waiting", "uploading", "failed"} == {
            dict(labels)["state"] for name, labels in samples if name == "pikdav_background_uploads"
        }
        assert requests.get(side + "/pikpak/", timeout=10).status_code == 404
    finally:
        for server in servers:
            server.stop()


def test_an_endpoint_label_carries_no_item_id():
    assert endpoint("GET", "/drive/v1/files/VNabcdefghijk") == "GET /drive/v1/files/{id}"
    assert endpoint("GET", "/drive/v1/tasks/VN0123") == "GET /drive/v1/tasks/{id}"
    assert endpoint("POST", "/drive/v1/files:batchTrash") == "POST /drive/v1/files:batchTrash"
    assert endpoint("GET", "/drive/v1/share/file_info") == "GET /drive/v1/share/file_info"
    assert endpoint("PUT", "/bucket/0f3a9c22e1") == "PUT /bucket/{id}"
