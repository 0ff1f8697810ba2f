"""rclone's WebDAV remote copies a drive byte-identical through a mount that reaches PikPak
by its real names through the account's proxy, with ``download_domain`` and ``cdn_node: auto``
set: the gateway's own reads (proxy mode) and rclone following the 302 (redirect mode) both go
to the fastest node on the other domain."""

from __future__ import annotations

import random

import pytest

from tests.support.davclients import Rclone, read_tree
from tests.support.named_hosts import add_files, control, named_emulator, named_gateway, tunnel_to
from tests.support.tlsca import make_test_ca

FASTEST = "dl-a10b-0870"
TREE = {
    "Filme/Amélie (2001).mkv": random.Random(1).randbytes(2 * 1024 * 1024 + 7),
    "Filme/Bonus & Extras/Trailer 100% [HD].mp4": random.Random(2).randbytes(70_001),
    "notes.txt": b"line one\nline two\n",
}


@pytest.mark.parametrize("download", ["proxy", "redirect"])
def test_rclone_copies_byte_identical_through_proxy_domain_and_fastest_node(tmp_path, download):
    ca = make_test_ca(tmp_path / "ca")
    with named_emulator(tmp_path / "emu", ca) as emulator, tunnel_to(emulator) as proxy:
        add_files(emulator, ca, TREE)
        control(emulator, ca, "config", {"cdn_latency": {"*": 0.03, FASTEST: 0.0}})
        gw = named_gateway(
            emulator,
            ca,
            tmp_path / "gw",
            proxy,
            download,
            download_domain="mypikpak.net",
            cdn_node="auto",
        )
        try:
            assert gw.mounts[0].reading.route.choice.host == f"{FASTEST}.mypikpak.net"
            # rclone follows redirects to PikPak's names through the same proxy (Go never
            # sends loopback addresses, the gateway's, to a proxy) and trusts the test CA.
            rclone = Rclone(gw.url, tmp_path / "home", extra_flags=["--ca-cert", str(ca.ca_cert)])
            rclone.env["HTTPS_PROXY"] = proxy.url
            local = tmp_path / "copy"
            rclone("copy", ":webdav:", str(local))
            served = emulator.world.stats.snapshot()["total"]
        finally:
            gw.stop()
    assert read_tree(local) == TREE
    hosts = proxy.stats()["hosts"]
    assert hosts.get(f"{FASTEST}.mypikpak.net", 0) > 0
    # PikPak's own node of the links (dl-a10b-0621.mypikpak.com) served nothing but probes
    assert "dl-a10b-0621.mypikpak.com" not in hosts
    assert served[f"cdn_node:{FASTEST}"] >= len(TREE) + 2  # two probes, then every file
