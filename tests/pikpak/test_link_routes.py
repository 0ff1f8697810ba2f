"""How the client picks and rewrites PikPak's download hosts (``download_domain``, ``cdn_node``),
without a gateway: the emulator serves TLS for every ``*.mypikpak.com|net`` name and a real
CONNECT proxy tunnels those names to it (see tests/support/named_hosts.py). What a gateway does
with the same settings is in tests/dav/test_download_hosts.py."""

from __future__ import annotations

import threading

import pytest

from pikdav.pikpak.http import Connection, cdn_session
from pikdav.pikpak.links import LinkRoute, known_nodes, with_domain, with_node
from pikdav.pikpak.types import Link
from tests.support.named_hosts import control, named_emulator, tunnel_to
from tests.support.tlsca import make_test_ca
from tests.support.waits import wait_until


@pytest.fixture
def named(tmp_path):
    """The emulator serving PikPak's names over TLS, and the CA its certificate is from."""
    ca = make_test_ca(tmp_path / "ca")
    with named_emulator(tmp_path / "emu", ca) as emu:
        yield emu, ca


proxy_for = tunnel_to


def configure(emulator, ca, **settings) -> None:
    control(emulator, ca, "config", settings)


def test_a_link_domain_is_rewritten_keeping_subdomain_path_and_query():
    url = "https://dl-z01a-0026.mypikpak.com/download/?fid=abc&expire=1&sig=x%2Fy"
    assert with_domain(url, "pikpak.me") == (
        "https://dl-z01a-0026.pikpak.me/download/?fid=abc&expire=1&sig=x%2Fy"
    )
    assert with_node(url, "dl-a10b-0622") == (
        "https://dl-a10b-0622.mypikpak.com/download/?fid=abc&expire=1&sig=x%2Fy"
    )
    assert with_node(url, "node.example.org").startswith("https://node.example.org/download/?")
    assert with_domain("http://127.0.0.1:8080/download/?fid=a", "pikpak.me").startswith(
        "http://127.0.0.1:8080/"
    )


def test_the_known_nodes_are_the_35_of_the_data_file_plus_the_configs():
    nodes = known_nodes(("dl-x-0001", "dl-a10b-0621"))
    assert len(nodes) == 36 and nodes[0] == "dl-a10b-0621" and nodes[-1] == "dl-x-0001"


def test_the_probe_picks_the_fastest_answering_node_every_time(named):
    """The choice rests on timings: 10 probes in a row on a busy machine all agree (each takes
    about 1 s: three requests to nodes that answer in 0.3 s)."""
    emulator, ca = named
    configure(
        emulator,
        ca,
        cdn_latency={"*": 0.3, "dl-a10b-0870": 0.005, "dl-a10b-0871": 0.0},
        cdn_down=["dl-a10b-0871"],
    )
    nodes = ("dl-a10b-0621", "dl-a10b-0870", "dl-a10b-0871", "dl-a10b-0872", "dl-a10b-0873")
    with proxy_for(emulator) as proxy:
        connection = Connection(ca_cert=str(ca.ca_cert), proxy=proxy.url)
        with cdn_session(connection) as http:
            route = LinkRoute(http, cdn_node="auto", nodes=nodes, name="test")
            for _ in range(10):
                choice = route.probe()
                assert (choice.host, choice.answered, choice.probed) == (
                    "dl-a10b-0870.mypikpak.com",
                    4,
                    5,
                )


def test_the_route_probes_again_and_follows_the_fastest_node(named):
    """Every probe_every seconds the nodes are asked again: when the fastest changes, links
    follow (10 changes in a row); close() ends the probing."""
    emulator, ca = named
    nodes = ("dl-a10b-0870", "dl-a10b-0871", "dl-a10b-0872")
    with proxy_for(emulator) as proxy:
        connection = Connection(ca_cert=str(ca.ca_cert), proxy=proxy.url)
        with cdn_session(connection) as http:
            route = LinkRoute(http, cdn_node="auto", nodes=nodes, probe_every=0.05, name="t")
            link = Link("https://dl-a10b-0621.mypikpak.com/download/?fid=x&expire=1", 1.0)
            for flip in range(10):
                fast = nodes[flip % 2]
                configure(emulator, ca, cdn_latency={"*": 0.05, fast: 0.0})
                if flip == 0:
                    route.start()
                wait_until(
                    lambda fast=fast: (
                        route.route(link).url == link.url.replace("dl-a10b-0621", fast)
                    ),
                    lambda: f"still on {route.choice}",
                    10,
                )
                assert route.route(link).fallback == link.url
            route.close()
            assert not any(t.name == "cdn-probe:t" for t in threading.enumerate())
