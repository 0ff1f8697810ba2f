"""cadaver, the command-line WebDAV client (neon), writing through the gateway.

Scripted sessions (commands on stdin, credentials from ``~/.netrc`` in a throw-away HOME), one
per step, so that between steps the emulator's own view of the drive can be checked: ``put``
(new, empty, and over an existing file), ``mkcol``, ``move``, ``copy``, ``lock``/``unlock``,
``delete`` and ``rmcol``, each answered "succeeded" and leaving the drive as the user expects,
with ``get`` returning identical bytes. A lock taken in one session keeps a second one (cadaver or
plain HTTP) from deleting, replacing or moving the file (423) until it is released.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import requests

from pikdav.pikpak.gcid import gcid_of_bytes
from tests.support.davclients import cadaver
from tests.support.gateway import DAV_PASSWORD, DAV_USER, PIKPAK_USER
from tests.support.pikpak_raw import control

COMPLETE = "PHASE_TYPE_COMPLETE"
TEMP_PREFIX = ".pikdav-"
FOLDER_KIND = "drive#folder"

VIDEO = "video 動画 é.bin"
VIDEO_BYTES = random.Random(1).randbytes(1_500_001)
VIDEO_V2 = random.Random(2).randbytes(700_000)
NOTES = "Notizen – 2024 ✓.txt"
NOTES_BYTES = "Grüße aus Zürich\n日本語\n".encode()
FOLDER = "Neuer Ordner 📁"
COPY = "Kopie von video.bin"

LOCKINFO = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>second client</D:owner></D:lockinfo>"
)


@pytest.fixture
def home(home: Path) -> Path:
    """cadaver's HOME, with the files the tests put."""
    (home / VIDEO).write_bytes(VIDEO_BYTES)
    (home / "v2.bin").write_bytes(VIDEO_V2)
    (home / NOTES).write_bytes(NOTES_BYTES)
    (home / "leer.txt").write_bytes(b"")
    return home


def succeeded(out: str, *lines: str) -> None:
    """Each ``lines`` entry is a regex of one cadaver progress line that ended "succeeded."."""
    for line in lines:
        assert re.search(rf"^{line}[^\n]* succeeded\.$", out, re.M), f"{line!r} in:\n{out}"
    assert "failed" not in out, out


class Drive:
    """The emulator's view of alice's drive."""

    def __init__(self, base: str) -> None:
        self.base = base

    def rows(self) -> list[dict]:
        rows = control(self.base, f"tree?username={PIKPAK_USER}", method="GET")["files"]
        # Never anything half-done, and no temporary name outside the trash.
        assert [r["path"] for r in rows if r["phase"] != COMPLETE] == []
        assert [r["path"] for r in rows if TEMP_PREFIX in r["path"] and not r["trashed"]] == []
        return rows

    def live(self) -> dict[str, dict]:
        live = [r for r in self.rows() if not r["trashed"]]
        assert len({r["path"] for r in live}) == len(live), live  # no duplicate names
        return {r["path"]: r for r in live}

    def trashed(self) -> list[tuple[str, int, str]]:
        return sorted(
            (r["path"], r["size"], r["hash"])
            for r in self.rows()
            if r["trashed"] and r["kind"] == "drive#file"
        )

    def files(self) -> dict[str, tuple[int, str]]:
        """Live files: path -> (size, hash)."""
        return {
            p: (r["size"], r["hash"]) for p, r in self.live().items() if r["kind"] != FOLDER_KIND
        }

    def folders(self) -> set[str]:
        return {p for p, r in self.live().items() if r["kind"] == FOLDER_KIND}


def entry(data: bytes) -> tuple[int, str]:
    return len(data), gcid_of_bytes(data)


def test_cadaver_put_mkcol_move_copy_lock_delete_rmcol(gateway, emulator, home):
    url = f"{gateway.url}/pikpak/"
    drive = Drive(emulator.base_url)

    # put: two new files and an empty one.
    out = cadaver(url, home, f'put "{VIDEO}"', f'put "{NOTES}"', "put leer.txt")
    succeeded(out, "Uploading video ", "Uploading Notizen ", "Uploading leer.txt ")
    assert drive.files() == {
        VIDEO: entry(VIDEO_BYTES),
        NOTES: entry(NOTES_BYTES),
        "leer.txt": entry(b""),
    }
    video_id = drive.live()[VIDEO]["id"]

    # mkcol
    out = cadaver(url, home, f'mkcol "{FOLDER}"')
    succeeded(out, f"Creating `{FOLDER}':")
    assert drive.folders() == {FOLDER}

    # move into the folder: the same PikPak file (moved, not copied), nothing left behind.
    out = cadaver(url, home, f'move "{VIDEO}" "{FOLDER}/{VIDEO}"')
    succeeded(out, f"Moving `/pikpak/{VIDEO}' to `/pikpak/{FOLDER}/{VIDEO}':")
    assert drive.files() == {
        f"{FOLDER}/{VIDEO}": entry(VIDEO_BYTES),
        NOTES: entry(NOTES_BYTES),
        "leer.txt": entry(b""),
    }
    assert drive.live()[f"{FOLDER}/{VIDEO}"]["id"] == video_id
    assert drive.trashed() == []

    # copy back under another name; both read back byte for byte.
    out = cadaver(
        url,
        home,
        f'copy "{FOLDER}/{VIDEO}" "{COPY}"',
        f'get "{COPY}" got-copy.bin',
        f'get "{FOLDER}/{VIDEO}" got-moved.bin',
    )
    succeeded(
        out,
        f"Copying `/pikpak/{FOLDER}/{VIDEO}' to `/pikpak/{COPY}':",
        f"Downloading `/pikpak/{COPY}' to got-copy.bin:",
        f"Downloading `/pikpak/{FOLDER}/{VIDEO}' to got-moved.bin:",
    )
    assert (home / "got-copy.bin").read_bytes() == VIDEO_BYTES
    assert (home / "got-moved.bin").read_bytes() == VIDEO_BYTES
    files = drive.files()
    assert files[COPY] == files[f"{FOLDER}/{VIDEO}"] == entry(VIDEO_BYTES)
    assert drive.live()[COPY]["id"] != video_id
    assert len(files) == 4

    # put over an existing file: the new bytes are served, the old version is in the trash.
    out = cadaver(url, home, f'put v2.bin "{COPY}"', f'get "{COPY}" got-v2.bin')
    succeeded(out, "Uploading v2.bin ", f"Downloading `/pikpak/{COPY}' to got-v2.bin:")
    assert (home / "got-v2.bin").read_bytes() == VIDEO_V2
    assert drive.files()[COPY] == entry(VIDEO_V2)
    assert drive.trashed() == [(COPY, *entry(VIDEO_BYTES))]

    # lock, see the token, unlock; the file is untouched.
    before = drive.live()
    out = cadaver(url, home, f'lock "{COPY}"', "showlocks", f'unlock "{COPY}"', "showlocks")
    succeeded(out, f"Locking `{COPY}':", f"Unlocking `{COPY}':")
    tokens = re.findall(r"^Lock token <(opaquelocktoken:[^>]+)>:", out, re.M)
    assert len(tokens) == 1, out  # shown once: the second showlocks has none left
    assert re.search(r"Scope: exclusive\s+Type: write", out), out
    assert drive.live() == before

    # delete: a file goes to PikPak's trash (an empty one is deleted for good).
    out = cadaver(url, home, f'delete "{COPY}"', "delete leer.txt")
    succeeded(out, f"Deleting `{COPY}':", "Deleting `leer.txt':")
    assert set(drive.files()) == {f"{FOLDER}/{VIDEO}", NOTES}
    assert drive.trashed() == sorted([(COPY, *entry(VIDEO_BYTES)), (COPY, *entry(VIDEO_V2))])

    # rmcol: the folder and what it holds go to the trash together.
    out = cadaver(url, home, f'rmcol "{FOLDER}"', "ls")
    succeeded(out, f"Deleting collection `{FOLDER}':", "Listing collection `/pikpak/':")
    assert drive.folders() == set()
    assert drive.files() == {NOTES: entry(NOTES_BYTES)}
    assert (f"{FOLDER}/{VIDEO}", *entry(VIDEO_BYTES)) in drive.trashed()
    assert re.search(rf"^\s+{re.escape(NOTES)}\s+{len(NOTES_BYTES)}\s", out, re.M), out
    assert FOLDER not in out.split("Listing collection", 1)[1]

    # And what is left reads back as it was put.
    out = cadaver(url, home, f'get "{NOTES}" got-notes.txt')
    succeeded(out, f"Downloading `/pikpak/{NOTES}' to got-notes.txt:")
    assert (home / "got-notes.txt").read_bytes() == NOTES_BYTES


def test_a_lock_held_by_one_session_stops_another(gateway, emulator, home):
    url = f"{gateway.url}/pikpak/"
    drive = Drive(emulator.base_url)
    out = cadaver(url, home, f'put "{NOTES}"', f'lock "{NOTES}"', "showlocks")
    succeeded(out, "Uploading Notizen ", f"Locking `{NOTES}':")
    tokens = re.findall(r"^Lock token <(opaquelocktoken:[^>]+)>:", out, re.M)
    assert len(tokens) == 1, out
    token = tokens[0]
    before = drive.live()
    assert set(before) == {NOTES}

    # The session ended without unlocking: the lock stays. A second cadaver session without
    # the token can neither delete, replace nor move the file.
    out = cadaver(
        url, home, f'delete "{NOTES}"', f'put v2.bin "{NOTES}"', f'move "{NOTES}" other.txt'
    )
    assert len(re.findall(r"failed:\n423 Locked", out)) == 3, out
    assert "succeeded" not in out, out
    assert drive.live() == before

    # Nor can a plain HTTP client without an If header.
    target = f"{url}{requests.utils.quote(NOTES)}"
    auth = (DAV_USER, DAV_PASSWORD)
    assert requests.delete(target, auth=auth, timeout=30).status_code == 423
    assert requests.put(target, data=b"x", auth=auth, timeout=30).status_code == 423
    # A second exclusive lock is refused too.
    relock = requests.request("LOCK", target, data=LOCKINFO, auth=auth, timeout=30)
    assert relock.status_code == 423
    assert drive.live() == before

    # cadaver's lock discovery shows the lock the first session holds.
    out = cadaver(url, home, f'discover "{NOTES}"')
    assert f"Lock token <{token}>:" in out, out

    # Released with its token (as the first session would), the file can go.
    unlock = requests.request(
        "UNLOCK", target, headers={"Lock-Token": f"<{token}>"}, auth=auth, timeout=30
    )
    assert unlock.status_code == 204, unlock.text
    out = cadaver(url, home, f'delete "{NOTES}"')
    succeeded(out, f"Deleting `{NOTES}':")
    assert drive.live() == {}
    assert drive.trashed() == [(NOTES, *entry(NOTES_BYTES))]


def test_a_lock_taken_over_http_is_honoured_by_cadaver(gateway, emulator, home):
    url = f"{gateway.url}/pikpak/"
    drive = Drive(emulator.base_url)
    out = cadaver(url, home, f'put "{VIDEO}"')
    succeeded(out, "Uploading video ")
    target = f"{url}{requests.utils.quote(VIDEO)}"
    auth = (DAV_USER, DAV_PASSWORD)
    lock = requests.request(
        "LOCK",
        target,
        data=LOCKINFO,
        headers={"Timeout": "Second-300", "Depth": "0", "Content-Type": "application/xml"},
        auth=auth,
        timeout=30,
    )
    assert lock.status_code == 200, lock.text
    token = lock.headers["Lock-Token"]
    assert token.startswith("<opaquelocktoken:")

    out = cadaver(url, home, f'discover "{VIDEO}"', f'delete "{VIDEO}"')
    assert "Owner: second client" in out, out
    assert re.search(rf"Deleting `{re.escape(VIDEO)}':[^\n]*failed:\n423 Locked", out), out
    assert requests.delete(target, auth=auth, timeout=30).status_code == 423
    assert set(drive.files()) == {VIDEO}

    # The lock holder, naming its token, may delete.
    deleted = requests.delete(target, headers={"If": f"({token})"}, auth=auth, timeout=30)
    assert deleted.status_code == 204, deleted.text
    assert drive.live() == {}
    assert drive.trashed() == [(VIDEO, *entry(VIDEO_BYTES))]

    # The name is free again, without a lock: cadaver can put it back.
    out = cadaver(url, home, f'put "{VIDEO}"', f'get "{VIDEO}" back.bin')
    succeeded(out, "Uploading video ", f"Downloading `/pikpak/{VIDEO}' to back.bin:")
    assert (home / "back.bin").read_bytes() == VIDEO_BYTES
    assert drive.files() == {VIDEO: entry(VIDEO_BYTES)}
