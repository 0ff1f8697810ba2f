"""The way to PikPak's hosts by name: ``api_domain``, ``download_domain``, ``cdn_node`` and the
fallbacks when a host fails. The emulator serves TLS for every ``*.mypikpak.com|net`` name; a
real CONNECT proxy (the account's proxy) tunnels those names to it and counts tunnels by host,
so each test sees which host names pikdav really called (see tests/support/named_hosts.py).
The client's own part (rewriting links, probing nodes) is in tests/pikpak/test_link_routes.py."""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.command import check
from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER
from tests.support.named_hosts import add_files, control, named_emulator, named_gateway, tunnel_to
from tests.support.shares import start_share_gateway
from tests.support.tlsca import make_test_ca

BODY = os.urandom(200_000)


@pytest.fixture
def ca(tmp_path):
    return make_test_ca(tmp_path / "ca")


@pytest.fixture
def emulator(tmp_path, ca):
    with named_emulator(tmp_path / "emu", ca) as emu:
        add_files(emu, ca, {"film.mkv": BODY})
        yield emu


proxy_for = tunnel_to


@pytest.fixture
def gateway_for(emulator, ca, tmp_path):
    started = []

    def start(proxy, download: str = "proxy", api_domain=None, **mount):
        state = tmp_path / f"gw{len(started)}"
        gw = named_gateway(emulator, ca, state, proxy, download, api_domain, **mount)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def read(gw, path: str = "/pikpak/film.mkv") -> bytes:
    resp = requests.get(gw.url + path, auth=gw.auth, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.content


REDIRECTED = "player-that-redirects/1.0"  # a User-Agent the mounts redirect


def redirected_host(gw, path: str = "/pikpak/film.mkv") -> str:
    resp = requests.get(
        gw.url + path,
        auth=gw.auth,
        allow_redirects=False,
        headers={"User-Agent": REDIRECTED},
        timeout=60,
    )
    assert resp.status_code == 302
    return urlsplit(resp.headers["Location"]).hostname


def served_by(emulator, node: str) -> int:
    return emulator.world.stats.snapshot()["total"].get(f"cdn_node:{node}", 0)


def configure(emulator, ca, **settings) -> None:
    control(emulator, ca, "config", settings)


# --------------------------------------------------------------------------- api_domain
@pytest.mark.parametrize("domain", ["mypikpak.com", "mypikpak.net"])
def test_api_domain_sets_the_user_and_drive_hosts(emulator, gateway_for, domain):
    with proxy_for(emulator) as proxy:
        gw = gateway_for(proxy, api_domain=domain if domain != "mypikpak.com" else None)
        assert read(gw) == BODY
        hosts = set(proxy.stats()["hosts"])
    assert {f"user.{domain}", f"api-drive.{domain}", f"dl-a10b-0621.{domain}"} <= hosts
    other = "mypikpak.net" if domain == "mypikpak.com" else "mypikpak.com"
    assert not any(h.endswith(other) for h in hosts), hosts


# --------------------------------------------------------------------------- download_domain
@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_download_domain_moves_links_to_the_other_domain(emulator, gateway_for, download):
    with proxy_for(emulator) as proxy:
        gw = gateway_for(proxy, download, download_domain="mypikpak.net")
        if download == "redirect":
            assert redirected_host(gw) == "dl-a10b-0621.mypikpak.net"
        else:
            assert read(gw) == BODY
            assert "dl-a10b-0621.mypikpak.net" in proxy.stats()["hosts"]
            assert "dl-a10b-0621.mypikpak.com" not in proxy.stats()["hosts"]


# --------------------------------------------------------------------------- cdn_node auto
@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_cdn_node_auto_picks_the_fastest_node_that_answers(
    emulator, ca, gateway_for, download, caplog
):
    caplog.set_level(logging.INFO, logger="pikdav.pikpak.links")
    # the fastest would be 0871, but it is down; 0870 is next
    configure(
        emulator,
        ca,
        cdn_latency={"*": 0.3, "dl-a10b-0870": 0.005, "dl-a10b-0871": 0.0},
        cdn_down=["dl-a10b-0871"],
    )
    with proxy_for(emulator) as proxy:
        gw = gateway_for(proxy, download, cdn_node="auto")
        choice = gw.mounts[0].reading.route.choice
        assert choice.host == "dl-a10b-0870.mypikpak.com"
        assert choice.answered == 34 and choice.probed == 35
        assert re.search(
            r"mount pikpak: CDN node dl-a10b-0870\.mypikpak\.com \(\d+ ms; 34 of 35 nodes",
            caplog.text,
        )
        if download == "redirect":
            assert redirected_host(gw) == "dl-a10b-0870.mypikpak.com"
        else:
            before = served_by(emulator, "dl-a10b-0870"), served_by(emulator, "dl-a10b-0621")
            assert read(gw) == BODY
            assert served_by(emulator, "dl-a10b-0870") > before[0]
            assert served_by(emulator, "dl-a10b-0621") == before[1]  # PikPak's node: unused


# --------------------------------------------------------------------------- fallbacks
def test_a_failing_rewritten_host_falls_back_to_the_original_for_streams_and_redirects(
    emulator, ca, gateway_for, caplog
):
    configure(emulator, ca, cdn_down=["dl-a10b-0871"])
    with proxy_for(emulator) as proxy:
        gw = gateway_for(
            proxy, "proxy", cdn_node="dl-a10b-0871", force_redirect_user_agents=[REDIRECTED]
        )
        assert redirected_host(gw) == "dl-a10b-0871.mypikpak.com"
        with caplog.at_level(logging.WARNING):
            assert read(gw) == BODY  # read from the host PikPak gave
        assert served_by(emulator, "dl-a10b-0621") > 0
        assert "download host dl-a10b-0871.mypikpak.com failed" in caplog.text
        # the next link handed out, a redirect's too, is the original's
        assert redirected_host(gw) == "dl-a10b-0621.mypikpak.com"
    assert "sig=" not in caplog.text  # signed links never reach the log


def test_a_link_host_that_cannot_be_reached_is_read_on_the_other_domain(
    emulator, gateway_for, caplog
):
    # The .net API answers, but its download hosts do not connect (a DNS block, say).
    pattern = r"(user|api-drive)\.mypikpak\.net|[^/\s]+\.mypikpak\.com"
    with proxy_for(emulator, pattern) as proxy:
        gw = gateway_for(proxy, "proxy", api_domain="mypikpak.net")
        with caplog.at_level(logging.WARNING):
            assert read(gw) == BODY
        hosts = proxy.stats()["hosts"]
    assert "dl-a10b-0621.mypikpak.com" in hosts
    assert "download host dl-a10b-0621.mypikpak.net failed" in caplog.text


def test_check_shows_the_chosen_node_and_its_latency(emulator, ca, tmp_path):
    configure(emulator, ca, cdn_latency={"*": 0.3, "dl-a10b-0870": 0.005})
    with proxy_for(emulator) as proxy:
        proxy_url = proxy.url
        config = {
            "state_dir": str(tmp_path / "state"),
            "accounts": {
                "main": {
                    "username": PIKPAK_USER,
                    "password": PIKPAK_PASSWORD,
                    "ca_cert": str(ca.ca_cert),
                    "proxy": proxy.url,
                }
            },
            "mounts": [{"name": "pikpak", "cdn_node": "auto", "download_domain": "mypikpak.com"}],
            "server": {"anonymous": True},
        }
        done = check(tmp_path, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"mount pikpak: links: original; download domain mypikpak.com; "
        r"CDN node dl-a10b-0870\.mypikpak\.com \(\d+ ms; 35 of 35 nodes answered\)",
        done.stdout,
    ), done.stdout
    assert f"proxy: {proxy_url}; PikPak" in done.stdout


def test_an_upload_host_that_cannot_be_reached_is_tried_on_the_other_domain(
    emulator, gateway_for, caplog
):
    pattern = r"(user|api-drive)\.mypikpak\.net|[^/\s]+\.mypikpak\.com"
    new = os.urandom(150_000)
    with proxy_for(emulator, pattern) as proxy:
        gw = gateway_for(proxy, "proxy", api_domain="mypikpak.net")
        with caplog.at_level(logging.WARNING):
            put = requests.put(f"{gw.url}/pikpak/new.bin", data=new, auth=gw.auth, timeout=60)
        assert put.status_code in (201, 204), put.text
        got = requests.get(f"{gw.url}/pikpak/new.bin", auth=gw.auth, timeout=60)
        hosts = proxy.stats()["hosts"]
    assert got.content == new
    bucket = emulator.world.bucket
    assert f"{bucket}.mypikpak.com" in hosts and f"{bucket}.mypikpak.net" not in hosts
    assert "upload host mypikpak.net did not answer" in caplog.text


# --------------------------------------------------------------------------- share mounts
SHARED = "/shared/Films/film.mkv"


def share_gateway(emulator, ca, tmp_path, proxy, **mount):
    """A share mount of alice's Films, reached through the account ``main``'s connection
    (its proxy and CA; never its login)."""
    add_files(emulator, ca, {"Films/film.mkv": BODY})
    share = control(emulator, ca, "shares", {"username": PIKPAK_USER, "paths": ["Films"]})
    account = {
        "username": PIKPAK_USER,
        "password": PIKPAK_PASSWORD,
        "ca_cert": str(ca.ca_cert),
        "proxy": proxy.url,
    }
    shared = {
        "name": "shared",
        "share": share["share_url"],
        "account": "main",
        "force_redirect_user_agents": [REDIRECTED],
        **mount,
    }
    return start_share_gateway(emulator, tmp_path / "gw", [shared], accounts={"main": account})


def test_a_share_mount_s_links_move_to_the_download_domain(emulator, ca, tmp_path):
    with proxy_for(emulator) as proxy:
        gw = share_gateway(emulator, ca, tmp_path, proxy, download_domain="mypikpak.net")
        try:
            assert read(gw, SHARED) == BODY
            assert redirected_host(gw, SHARED).endswith(".mypikpak.net")
            called = {h for h in proxy.stats()["hosts"] if h.startswith("dl-")}
            assert called and all(h.endswith(".mypikpak.net") for h in called), called
        finally:
            gw.stop()


def test_a_share_mount_s_links_go_to_the_fastest_cdn_node(emulator, ca, tmp_path):
    configure(emulator, ca, cdn_latency={"*": 0.3, "dl-a10b-0870": 0.005})
    with proxy_for(emulator) as proxy:
        gw = share_gateway(emulator, ca, tmp_path, proxy, cdn_node="auto")
        try:
            assert gw.mounts[0].reading.route.choice.host == "dl-a10b-0870.mypikpak.com"
            assert redirected_host(gw, SHARED) == "dl-a10b-0870.mypikpak.com"
            before = served_by(emulator, "dl-a10b-0870")
            assert read(gw, SHARED) == BODY
            assert served_by(emulator, "dl-a10b-0870") > before
        finally:
            gw.stop()


def test_an_api_host_that_cannot_be_reached_is_called_on_the_other_domain(
    emulator, gateway_for, caplog
):
    """PikPak's API answers on .com and .net; a DNS block of one is not the end of the mount."""
    pattern = r"[^/\s]+\.mypikpak\.net"  # nothing on .com connects
    with proxy_for(emulator, pattern) as proxy:
        gw = gateway_for(proxy, "proxy")  # api_domain: mypikpak.com, the default
        with caplog.at_level(logging.WARNING):
            assert read(gw) == BODY
            listing = requests.request(
                "PROPFIND", gw.url + "/pikpak/", auth=gw.auth, headers={"Depth": "1"}, timeout=60
            )
        hosts = proxy.stats()["hosts"]
    assert listing.status_code == 207
    assert {"user.mypikpak.net", "api-drive.mypikpak.net"} <= set(hosts)
    assert re.search(r"API at (user|api-drive)\.mypikpak\.com did not connect", caplog.text)
    # One line when the way changes, not one per call.
    assert caplog.text.count("did not connect") <= 2
