"""Cells of the status page that told a first-week user something untrue: a share mount's
offline folder ("My Pack": a share has none) and the counts after a failed sign-in ("0 / 0",
as if nothing had been tried)."""

from __future__ import annotations

import base64
import re

import requests

from tests.support.gateway import DAV_PASSWORD, DAV_USER
from tests.support.shares import account, add_file, make_share, start_share_gateway


def cells(page: str, css: str) -> list[str]:
    found = re.findall(rf'<td class="{css}">(.*?)</td>', page, re.DOTALL)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def test_share_mounts_have_no_offline_folder_and_a_failed_sign_in_is_counted(emulator, tmp_path):
    add_file(emulator, "Pub/a.txt", content=base64.b64encode(b"x").decode())
    share = make_share(emulator, "Pub/a.txt")
    gw = start_share_gateway(
        emulator,
        tmp_path / "state",
        [
            {"name": "pikpak", "account": "main"},
            {"name": "films", "share": share["share_url"], "account": "main"},
        ],
        accounts={"main": {**account(emulator), "password": "not the password"}},
        admin=True,
    )
    auth = (DAV_USER, DAV_PASSWORD)
    try:
        failed = requests.request(
            "PROPFIND", gw.url + "/pikpak/", headers={"Depth": "1"}, auth=auth
        )
        assert failed.status_code == 503  # PikPak refused the password: sign-ins pause
        page = requests.get(gw.url + "/_pikdav/", auth=auth, timeout=30)
        assert page.status_code == 200
        assert cells(page.text, "offline-folder") == ["My Pack", "none"]
        assert cells(page.text, "counts") == ["0 / 0, 1 failed"]
    finally:
        gw.stop()
