"""The status page's offline-download forms, posted as the page's buttons post them: a folder
path that climbs out of the mount is refused without making any folder, and deleting a task
id that does not exist says so."""

from __future__ import annotations

import html
import re

import requests

from tests.support.gateway import _HASH, DAV_PASSWORD
from tests.support.pikpak_raw import drive_tree

ADMIN = ("alice", DAV_PASSWORD)
USERS = {"alice": {"password_hash": _HASH, "admin": True}}
MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=sintel.mkv"


def post(gw, action: str, **form: str) -> str:
    """Press the page's button for ``action``: the notice shown on the answer."""
    page = requests.get(gw.url + "/_pikdav/", auth=ADMIN, timeout=30)
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
    answer = requests.post(
        gw.url + "/_pikdav/" + action,
        data={"csrf": token, "mount": "pikpak", **form},
        auth=ADMIN,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    notice = re.search(r'id="notice"[^>]*>\s*<p>(.*?)</p>', answer.text, re.S)
    assert notice, answer.text
    return html.unescape(notice.group(1)).strip()


def test_a_folder_path_climbing_out_is_refused_and_makes_no_folder(emulator, make_gateway):
    gw = make_gateway(users=USERS, offline_folder="Offline")
    for folder in ("Nope/../../x", "Nope/./x", "Nope//x", "Nope/.pikdav-x"):
        notice = post(gw, "offline/add", url=MAGNET, folder=folder)
        assert notice == f"{folder!r} is no folder path below the mount's root", notice
    assert set(drive_tree(emulator)) == set()
    assert emulator.world.tasks == {}
    # A proper path is made when missing, as before.
    assert "offline download started" in post(gw, "offline/add", url=MAGNET, folder="Films/New")
    assert {"Films", "Films/New"} <= set(drive_tree(emulator))


def test_deleting_a_task_that_does_not_exist_says_so(emulator, make_gateway):
    gw = make_gateway(users=USERS, offline_folder="Offline")
    assert "offline download started" in post(gw, "offline/add", url=MAGNET)
    (task_id,) = emulator.world.tasks
    for unknown in ("VT" + "0" * 24, "../files", ""):
        notice = post(gw, "offline/delete", id=unknown)
        assert notice == "no offline task has that id (nothing deleted)", (unknown, notice)
    assert list(emulator.world.tasks) == [task_id]
    assert post(gw, "offline/delete", id=task_id) == "the offline task is deleted (its files stay)"
    assert emulator.world.tasks == {}
