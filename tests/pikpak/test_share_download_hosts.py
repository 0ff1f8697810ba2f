"""A share mount's links go where the mount says, like an own drive's: ``download_domain``
moves them to the other domain, ``cdn_node: auto`` to the fastest node that answers. PikPak by
its real names (see tests/support/named_hosts.py): the CONNECT proxy of the account the mount
names sees which hosts pikdav really called."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER
from tests.support.named_hosts import control, named_emulator, tunnel_to
from tests.support.shares import start_share_gateway
from tests.support.tlsca import make_test_ca

BODY = os.urandom(300_000)
REDIRECTED = "player-that-redirects/1.0"


@pytest.fixture
def ca(tmp_path):
    return make_test_ca(tmp_path / "ca")


@pytest.fixture
def emulator(tmp_path, ca):
    with named_emulator(tmp_path / "emu", ca) as emu:
        content = base64.b64encode(BODY).decode()
        control(
            emu,
            ca,
            "files",
            {"username": PIKPAK_USER, "path": "Films/film.mkv", "content": content},
        )
        yield emu


def share_gateway(emulator, ca, tmp_path, proxy, **mount):
    share = control(emulator, ca, "shares", {"username": PIKPAK_USER, "paths": ["Films"]})
    account = {
        "username": PIKPAK_USER,
        "password": PIKPAK_PASSWORD,
        "ca_cert": str(ca.ca_cert),
        "proxy": proxy.url,
    }
    mounts = [
        {
            "name": "shared",
            "share": share["share_url"],
            "account": "main",
            "force_redirect_user_agents": [REDIRECTED],
            **mount,
        }
    ]
    return start_share_gateway(emulator, tmp_path / "gw", mounts, accounts={"main": account})


def read(gw) -> bytes:
    resp = requests.get(f"{gw.url}/shared/Films/film.mkv", auth=gw.auth, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.content


def redirected_host(gw) -> str:
    resp = requests.get(
        f"{gw.url}/shared/Films/film.mkv",
        auth=gw.auth,
        allow_redirects=False,
        headers={"User-Agent": REDIRECTED},
        timeout=60,
    )
    assert resp.status_code == 302, resp.text
    return urlsplit(resp.headers["Location"]).hostname


def download_hosts(proxy) -> set[str]:
    return {h for h in proxy.stats()["hosts"] if h.startswith("dl-")}


def test_a_share_mount_s_links_move_to_the_download_domain(emulator, ca, tmp_path):
    with tunnel_to(emulator) as proxy:
        gw = share_gateway(emulator, ca, tmp_path, proxy, download_domain="mypikpak.net")
        try:
            assert read(gw) == BODY
            assert redirected_host(gw).endswith(".mypikpak.net")
            assert download_hosts(proxy) and all(
                h.endswith(".mypikpak.net") for h in download_hosts(proxy)
            ), download_hosts(proxy)
        finally:
            gw.stop()


def test_a_share_mount_s_links_go_to_the_fastest_cdn_node(emulator, ca, tmp_path):
    control(emulator, ca, "config", {"cdn_latency": {"*": 0.3, "dl-a10b-0870": 0.005}})
    with tunnel_to(emulator) as proxy:
        gw = share_gateway(emulator, ca, tmp_path, proxy, cdn_node="auto")
        try:
            assert gw.mounts[0].route.choice.host == "dl-a10b-0870.mypikpak.com"
            assert redirected_host(gw) == "dl-a10b-0870.mypikpak.com"
            before = emulator.world.stats.snapshot()["total"].get("cdn_node:dl-a10b-0870", 0)
            assert read(gw) == BODY
            after = emulator.world.stats.snapshot()["total"].get("cdn_node:dl-a10b-0870", 0)
            assert after > before
        finally:
            gw.stop()
