"""Offline (cloud) download tasks and reading a shared link, through pikdav's client."""

from __future__ import annotations

import pytest
import requests

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import AuthError, NotFound
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.shares import SharedFolder
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

USER, PASSWORD = "alice@example.com", "correct horse"


def session_for(emulator, user: str = USER, password: str | None = PASSWORD) -> Session:
    return Session(
        Credentials(user, password),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )


def age_tasks(emulator, seconds: float) -> None:
    """Moves the emulator's tasks back in time, as if they had been made `seconds` ago."""
    with emulator.world.lock:
        for t in emulator.world.tasks.values():
            t.created -= seconds


def test_offline_task_lifecycle(emulator):
    control(emulator.base_url, "config", {"offline_seconds": 30})
    session = session_for(emulator)
    drive, tasks = Drive(session), OfflineTasks(session)
    folder = drive.mkdir("", "Downloads")
    task = tasks.add("magnet:?xt=urn:btih:feedface&dn=Tears.of.Steel.mkv", folder.id)
    assert task.name == "Tears.of.Steel.mkv" and not task.done
    assert [t.id for t in tasks.list("PHASE_TYPE_RUNNING,PHASE_TYPE_PENDING")] == [task.id]
    age_tasks(emulator, 60)  # the 30 s task is now due
    current = wait_until(
        lambda: (t := next(t for t in tasks.list() if t.id == task.id)).done and t, "done", 10
    )
    assert current.progress == 100 and current.file_size > 0
    assert [f.name for f in drive.list_folder(folder.id)] == ["Tears.of.Steel.mkv"]
    tasks.delete([task.id], delete_files=True)
    assert tasks.list() == [] and drive.list_folder(folder.id) == []
    failing = tasks.add("https://example.org/fail/broken.iso")
    assert not next(t for t in tasks.list() if t.id == failing.id).failed
    age_tasks(emulator, 60)
    assert next(t for t in tasks.list() if t.id == failing.id).failed


def test_shared_link_with_a_pass_code(emulator):
    made = control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "Trip/clip.mp4", "size": 3000, "seed": 5},
    )
    owner = session_for(emulator)
    share = owner.call(
        "POST",
        "/drive/v1/share",
        json={
            "file_ids": [made["parent_id"]],
            "share_to": "encryptedlink",
            "expiration_days": -1,
            "pass_code_option": "REQUIRED",
        },
    )
    control(emulator.base_url, "accounts", {"username": "visitor", "password": "pw"})
    visitor = session_for(emulator, "visitor", None)  # never logs in: shares need no login
    with pytest.raises(AuthError, match="pass code"):
        SharedFolder(visitor, share["share_id"], "wrong").list_folder()
    shared = SharedFolder(visitor, share["share_id"], share["pass_code"])
    top = shared.list_folder()
    assert [f.name for f in top] == ["Trip"] and top[0].is_folder
    inside = shared.list_folder(top[0].id)
    assert [(f.name, f.size) for f in inside] == [("clip.mp4", 3000)]
    link = shared.download_link(inside[0].id)
    expected = emulator.world.blobs.get(made["hash"]).read_at(0, 3000)
    assert requests.get(link.url, timeout=30).content == expected
    with pytest.raises(NotFound):
        SharedFolder(visitor, "no-such-share").list_folder()
    assert emulator.world.stats.snapshot()["accounts"].get("visitor", {}).get("signin", 0) == 0
