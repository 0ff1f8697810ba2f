"""The offline drop folder (``mounts[].offline_folder``) from real DAV clients: a link put into
it with rclone's WebDAV remote or cadaver becomes a PikPak offline task, the folder lists the
running task as ``NAME [P% PHASE].task`` and then the finished file; a link PikPak refuses
gives the PUT a 409 with the reason, and nothing is stored."""

from __future__ import annotations

import logging
import plistlib
import re

import requests

from tests.support.davclients import Rclone, cadaver
from tests.support.gateway import _HASH, DAV_PASSWORD, DAV_USER, PIKPAK_USER
from tests.support.pikpak_raw import control, drive_tree
from tests.support.waits import wait_until

MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=sintel.mkv"
TASK = re.compile(r"^sintel\.mkv \[\d{1,3}% (pending|running)\]\.task$")


def drop_gateway(emulator, make_gateway, seconds: float = 1.5):
    control(emulator.base_url, "config", {"offline_seconds": seconds})
    return make_gateway(download="proxy", offline_folder="Offline")  # made at first use


def finish_tasks(emulator) -> None:
    """Ends the running tasks now: their creation time goes back past their duration."""
    with emulator.world.lock:
        for task in emulator.world.tasks.values():
            task.created -= 120


def tasks(emulator) -> list[str]:
    return [t.url for t in emulator.world.tasks.values()]


def test_rclone_copyto_a_magnet_file_starts_a_task_shown_until_the_file_is_there(
    emulator, make_gateway, tmp_path
):
    gw = drop_gateway(emulator, make_gateway, seconds=60)
    rclone = Rclone(gw.url, tmp_path / "rclone")
    link = rclone.home / "link.magnet"
    link.write_text(MAGNET + "\n")
    rclone("copyto", str(link), ":webdav:Offline/link.magnet")
    assert tasks(emulator) == [MAGNET]
    names = rclone("lsf", ":webdav:Offline/").stdout.decode().splitlines()
    running = [n for n in names if n.endswith(".task")]
    assert len(running) == 1 and TASK.match(running[0]), names
    assert "link.magnet" in names  # the receipt, for a minute, from the gateway's memory
    assert "pikpak/Offline/link.magnet" not in set(drive_tree(emulator))  # never uploaded
    assert rclone("cat", f":webdav:Offline/{running[0]}").stdout == b""  # empty, read-only
    assert rclone("deletefile", f":webdav:Offline/{running[0]}", check=False).returncode != 0

    finish_tasks(emulator)
    names = wait_until(
        lambda: (
            "sintel.mkv" in (now := rclone("lsf", ":webdav:Offline/").stdout.decode().splitlines())
            and now
        ),
        "the finished file listed",
        20,
        every=0.5,
    )
    assert "sintel.mkv" in names and not [n for n in names if n.endswith(".task")], names
    assert "Offline/sintel.mkv" in set(drive_tree(emulator))


def test_cadaver_puts_a_list_of_links_and_a_windows_shortcut(emulator, make_gateway, home):
    gw = drop_gateway(emulator, make_gateway, seconds=30)
    (home / "links.txt").write_text(
        "# tonight\nhttps://example.org/films/big%20buck%20bunny.mp4\n\n"
        "ed2k://|file|notes.txt|12|0123456789ABCDEF0123456789ABCDEF|/\n"
    )
    (home / "film.url").write_text(
        "[InternetShortcut]\r\nURL=https://example.org/films/elephants-dream.webm\r\n"
    )
    out = cadaver(gw.url + "/pikpak/Offline/", home, "put links.txt", "put film.url", "ls")
    assert sorted(tasks(emulator)) == [
        "ed2k://|file|notes.txt|12|0123456789ABCDEF0123456789ABCDEF|/",
        "https://example.org/films/big%20buck%20bunny.mp4",
        "https://example.org/films/elephants-dream.webm",
    ]
    for name in ("big buck bunny.mp4", "notes.txt", "elephants-dream.webm"):
        assert re.search(rf"{re.escape(name)} \[\d+% (pending|running)\]\.task", out), out
    assert not set(drive_tree(emulator)) & {"Offline/links.txt", "Offline/film.url"}


def test_a_webloc_from_a_mac_starts_a_task(emulator, make_gateway):
    gw = drop_gateway(emulator, make_gateway)
    body = plistlib.dumps({"URL": "https://example.org/films/cosmos-laundromat.mkv"})
    resp = requests.put(gw.url + "/pikpak/Offline/Cosmos.webloc", data=body, auth=gw.auth)
    assert resp.status_code == 201
    assert tasks(emulator) == ["https://example.org/films/cosmos-laundromat.mkv"]


def test_a_refused_link_is_a_409_with_the_reason_and_nothing_is_stored(emulator, make_gateway):
    gw = drop_gateway(emulator, make_gateway)
    control(emulator.base_url, "config", {"task_daily_limit": 0})
    resp = requests.put(gw.url + "/pikpak/Offline/link.magnet", data=MAGNET, auth=gw.auth)
    assert resp.status_code == 409
    assert "PikPak's daily limit of cloud downloads is reached" in resp.text
    assert "Traceback" not in resp.text

    control(emulator.base_url, "config", {"task_daily_limit": 100})
    bad = requests.put(
        gw.url + "/pikpak/Offline/links.txt", data=MAGNET + "\nnot a link\n", auth=gw.auth
    )
    assert bad.status_code == 403 and "line 2 of the .txt file is not a magnet:" in bad.text
    assert tasks(emulator) == []
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Offline/", auth=gw.auth, headers={"Depth": "1"}
    )
    assert listing.status_code == 207
    assert "link.magnet" not in listing.text and "links.txt" not in listing.text
    assert set(drive_tree(emulator)) == {"Offline"}
    # Outside the offline folder a .txt is a file like any other.
    assert requests.put(gw.url + "/pikpak/notes.txt", data=b"hi", auth=gw.auth).status_code == 201
    assert "notes.txt" in set(drive_tree(emulator))


def test_a_missing_offline_folder_is_made_at_first_use_and_takes_drops(
    emulator, make_gateway, caplog
):
    caplog.set_level(logging.INFO, logger="pikdav")
    gw = make_gateway(download="proxy", offline_folder="Downloads/Links")

    def folders() -> set[str]:
        tree = control(emulator.base_url, f"tree?username={PIKPAK_USER}", method="GET")
        return {f["path"] for f in tree["files"] if not f["trashed"]}

    assert "Downloads" not in folders()
    # The first request shows it, so that a client sees where to drop its links.
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Downloads/", headers={"Depth": "1"}, auth=gw.auth
    )
    assert listing.status_code == 207 and "/pikpak/Downloads/Links/" in listing.text
    assert "Downloads/Links" in folders()
    links = f"{MAGNET}\nhttps://example.com/a.iso\n"
    put = requests.put(gw.url + "/pikpak/Downloads/Links/two.txt", data=links, auth=gw.auth)
    assert put.status_code in (201, 204), put.text
    assert tasks(emulator) == [MAGNET, "https://example.com/a.iso"]
    # The log says what the drop did: tasks started (how many, where), nothing stored.
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("PUT "))
    assert line.endswith("2 offline tasks started in Downloads/Links; the file is not stored")
    assert "stored on PikPak" not in caplog.text


def links(count: int, first: int = 0) -> bytes:
    return "".join(
        f"https://example.org/films/film{i:05d}.mkv\n" for i in range(first, first + count)
    ).encode()


def test_a_file_of_thousands_of_links_is_refused_and_starts_nothing(emulator, make_gateway):
    """With the defaults, a 64 KiB list of links is no way to start thousands of tasks."""
    gw = drop_gateway(emulator, make_gateway)
    body = links(1600)
    assert 60_000 < len(body) <= 64 * 1024
    resp = requests.put(gw.url + "/pikpak/Offline/many.txt", data=body, auth=gw.auth)
    assert resp.status_code == 413, resp.text
    assert "holds 1600 links; one file may start at most 100 offline downloads" in resp.text
    assert "Traceback" not in resp.text and "<html" not in resp.text.lower()
    assert tasks(emulator) == []
    assert set(drive_tree(emulator)) == {"Offline"}


def test_links_per_file_and_per_minute_per_user_are_capped(emulator, make_gateway):
    users = {name: {"password_hash": _HASH, "mounts": ["*"]} for name in (DAV_USER, "second")}
    control(emulator.base_url, "config", {"offline_seconds": 60})
    gw = make_gateway(
        download="proxy",
        offline_folder="Offline",
        offline_links_per_file=3,
        offline_links_per_minute=5,
        users=users,
    )
    put = "/pikpak/Offline/{}.txt"

    # One file: more than 3 links is 413, nothing started; 3 are started.
    over = requests.put(gw.url + put.format("four"), data=links(4), auth=gw.auth)
    assert over.status_code == 413 and "one file may start at most 3" in over.text, over.text
    assert tasks(emulator) == []
    assert requests.put(gw.url + put.format("a"), data=links(3), auth=gw.auth).status_code == 201
    # Within the minute, 3 more would make 6 of 5: 429 with Retry-After, nothing started.
    fast = requests.put(gw.url + put.format("b"), data=links(3, 3), auth=gw.auth)
    assert fast.status_code == 429, fast.text
    assert "at most 5 offline downloads a minute" in fast.text
    assert 1 <= int(fast.headers["Retry-After"]) <= 60
    assert len(tasks(emulator)) == 3
    # 2 more still fit; a third does not.
    assert requests.put(gw.url + put.format("c"), data=links(2, 3), auth=gw.auth).status_code == 201
    one = requests.put(gw.url + put.format("d"), data=links(1, 5), auth=gw.auth)
    assert one.status_code == 429 and "Retry-After" in one.headers
    assert len(tasks(emulator)) == 5
    # The cap is each user's: another user may drop now.
    second = ("second", DAV_PASSWORD)
    assert requests.put(gw.url + put.format("e"), data=links(3, 6), auth=second).status_code == 201
    assert len(tasks(emulator)) == 8
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Offline/", auth=gw.auth, headers={"Depth": "1"}
    )
    assert "four.txt" not in listing.text and "b.txt" not in listing.text
