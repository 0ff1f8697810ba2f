"""The drop-folder part of a mount (vfs.offline.DropFolder) on its own, over alice's drive on
the emulator: it makes the offline folder at the mount's first use (never on a read-only
mount), knows which folder is it, turns a dropped link into a task listed beside a receipt,
and says once, not at every request, why it cannot make the folder."""

from __future__ import annotations

import logging
import re

from pikdav.pikpak.offline import OfflineTasks
from pikdav.vfs.offline import DropFolder, Offline
from pikdav.vfs.spool import SpoolFile, SpoolSettings
from tests.support.davclients import put_files
from tests.support.pikpak_raw import control
from tests.vfs.conftest import USER

TASK = re.compile(r"^sintel\.mkv \[\d{1,3}% (pending|running)\]\.task$")
MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=sintel.mkv"


def stored(emulator, *, folders_only: bool = False) -> set[str]:
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    return {
        r["path"]
        for r in rows
        if not r["trashed"] and (r["kind"].endswith("folder") or not folders_only)
    }


def folders(emulator) -> set[str]:
    return stored(emulator, folders_only=True)


def test_the_offline_folder_is_made_with_its_parents_at_the_first_use(
    emulator, session, make_mount
):
    mount = make_mount(offline=Offline(OfflineTasks(session), "/Downloads/Links/"))
    assert folders(emulator) == set()  # nothing asked of PikPak before the first use
    assert mount.offline_folder == "Downloads/Links"

    mount.resolve([])

    assert folders(emulator) == {"Downloads", "Downloads/Links"}
    links = mount.resolve(["Downloads", "Links"])
    downloads = mount.resolve(["Downloads"])
    assert links is not None and downloads is not None
    assert mount.drop is not None
    assert mount.drop.is_it(links)
    assert not mount.drop.is_it(downloads) and not mount.drop.is_it(mount.root)


def test_a_read_only_mount_finds_its_offline_folder_but_never_makes_it(
    emulator, session, make_mount
):
    offline = Offline(OfflineTasks(session), "Links")
    read_only = make_mount(offline=offline, writing=None)
    read_only.resolve([])
    assert folders(emulator) == set()

    put_files(emulator, {"Links/old.txt": b"x"})
    drop = DropFolder(offline, read_only.tree)  # make=None: the mount may not change
    drop.make()
    links = read_only.resolve(["Links"])
    assert links is not None and drop.is_it(links)
    assert folders(emulator) == {"Links"}


def test_a_dropped_magnet_becomes_a_task_listed_beside_its_receipt(emulator, session, make_mount):
    mount = make_mount(offline=Offline(OfflineTasks(session), "Links"))
    links = mount.resolve(["Links"])
    assert links is not None
    body = SpoolFile(SpoolSettings(), None, exact=False)
    body.write(MAGNET.encode())

    receipt = mount.store(links, "film.magnet", body, None)

    assert [(t.url, t.parent_id) for t in emulator.world.tasks.values()] == [(MAGNET, links.id)]
    assert mount.drop is not None and mount.drop.started(receipt) == 1
    listed = {e.name: e for e in mount.children(links)}
    assert len(listed) == 2 and TASK.match(max(listed)), listed  # the receipt and the task
    assert listed["film.magnet"] == receipt
    with mount.open(listed["film.magnet"]) as read:
        assert read.read() == MAGNET.encode()
    assert stored(emulator) == {"Links"}  # the link file itself is not stored


def test_a_folder_that_cannot_be_made_is_said_once_not_at_every_request(
    emulator, session, make_mount, caplog
):
    put_files(emulator, {"Links": b"a file where the folder should be"})
    mount = make_mount(offline=Offline(OfflineTasks(session), "Links/Films"))
    with caplog.at_level(logging.WARNING, logger="pikdav.vfs.offline"):
        for _ in range(3):
            assert mount.resolve(["Links"]) is not None  # the mount still answers
    said = [r.getMessage() for r in caplog.records if "offline folder" in r.getMessage()]
    assert len(said) == 1 and "is a file, not a folder" in said[0], said
