"""One link-freshness rule (``Link.usable_for``), asked by the drive, the link cache and shares:
a link is handed out only while it has more than ``LINK_MARGIN`` seconds to live."""

from __future__ import annotations

import time

import pytest

from pikdav.pikpak.errors import LinkNotReady
from pikdav.pikpak.shares import SharedFolder
from pikdav.pikpak.types import LINK_MARGIN, Link
from pikdav.vfs.cache import LinkCache
from tests.pikpak.test_shares import share, visitor
from tests.support.pikpak_raw import control


def test_a_link_is_usable_until_the_margin_before_its_expiry():
    now = 1_000_000.0
    link = Link("https://cdn.example/download/?fid=x", now + LINK_MARGIN + 30)
    assert link.usable(now) and link.usable_for(now) == pytest.approx(30)
    assert not link.usable(now + 31) and link.usable_for(now + 31) == 0.0
    assert not Link("", now + 3600).usable(now)  # no URL: nothing to hand out


def test_the_link_cache_keeps_a_link_only_while_it_is_usable():
    loads: list[str] = []

    def load(expires_in: float):
        def make() -> Link:
            loads.append("x")
            return Link("https://cdn.example/download/?fid=x", time.time() + expires_in)

        return make

    cache = LinkCache()
    cache.fetch("long", load(LINK_MARGIN + 600))
    cache.fetch("long", load(LINK_MARGIN + 600))
    assert len(loads) == 1  # kept
    cache.fetch("short", load(LINK_MARGIN / 2))
    cache.fetch("short", load(LINK_MARGIN / 2))
    assert len(loads) == 3  # never kept: it is not usable


def test_a_share_link_about_to_expire_is_not_handed_out(emulator):
    made_file, made = share(emulator)
    shared = SharedFolder(visitor(emulator), made["share_id"], made["pass_code"])
    assert shared.download_link(made_file["id"]).usable()
    control(emulator.base_url, "config", {"link_ttl": int(LINK_MARGIN / 2)})
    with pytest.raises(LinkNotReady, match="try again in"):
        shared.download_link(made_file["id"])
