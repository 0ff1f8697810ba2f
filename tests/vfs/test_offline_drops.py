"""vfs.offline on its own: the links a dropped file holds, the names of unfinished tasks, and
LinkDrops starting PikPak offline tasks (within its caps) against the emulator over
loopback, with no gateway."""

from __future__ import annotations

import plistlib

import pytest

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.offline import OfflineTasks
from pikdav.pikpak.types import Task
from pikdav.vfs import offline
from pikdav.vfs.errors import LinkRefused, LinksTooFast, NotLinks, TooManyLinks
from pikdav.vfs.offline import LinkDrops, is_drop, is_own, links_in, task_name
from tests.support.pikpak_raw import account_stats, control

MAGNET = "magnet:?xt=urn:btih:feedface&dn=Sintel.mkv"


def test_each_kind_of_dropped_file_gives_its_links():
    assert links_in("a.magnet", MAGNET.encode() + b"\n") == [MAGNET]
    shortcut = b"[InternetShortcut]\r\nURL=https://example.org/film.mkv\r\n"
    assert links_in("Film.URL", shortcut) == ["https://example.org/film.mkv"]
    webloc = plistlib.dumps({"URL": "https://example.org/mac.mkv"})
    assert links_in("film.webloc", webloc) == ["https://example.org/mac.mkv"]
    listing = f"# to fetch\n\n{MAGNET}\n  ed2k://|file|x.iso|1|AB|/  \n".encode()
    assert links_in("list.txt", b"\xef\xbb\xbf" + listing) == [MAGNET, "ed2k://|file|x.iso|1|AB|/"]
    assert [is_drop(n) for n in ("a.TXT", "b.magnet", "c.mkv")] == [True, True, False]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("a.txt", b"# only a comment\n", "holds no link"),
        ("a.txt", f"{MAGNET}\nftp://example.org/x\n".encode(), "line 2 of the .txt file"),
        ("a.url", b"[InternetShortcut]\n", "holds no link"),
        ("a.webloc", b"not a plist", "not a property list"),
        ("a.magnet", b"javascript:alert(1)", "the .magnet file is not a magnet:"),
        ("a.txt", b"x" * (offline.MAX_DROP + 1), "at most 64 KiB"),
    ],
)
def test_what_is_no_file_of_links_says_why(name, data, words):
    with pytest.raises(NotLinks, match=words):
        links_in(name, data)


def _task(**fields) -> Task:
    base = dict(id="t1", type="offline", name="Sintel.mkv", phase="PHASE_TYPE_RUNNING")
    base |= dict(progress=42, file_id="", file_name="", file_size=0, message="", url="")
    return Task(**(base | fields))


def test_an_unfinished_task_is_named_with_its_progress_and_phase():
    assert task_name(_task()) == "Sintel.mkv [42% running].task"
    assert (
        task_name(_task(phase="PHASE_TYPE_PENDING", progress=0)) == "Sintel.mkv [0% pending].task"
    )
    assert task_name(_task(phase="PHASE_TYPE_ERROR")) == "Sintel.mkv [error].task"
    assert task_name(_task(name="a/b\\c\x01")) == "a_b_c_ [42% running].task"


@pytest.fixture
def downloads(session) -> str:
    return Drive(session).mkdir("", "Downloads").id


@pytest.fixture
def tasks(session) -> OfflineTasks:
    return OfflineTasks(session)


def age_tasks(emulator, seconds: float) -> None:
    with emulator.world.lock:
        for t in emulator.world.tasks.values():
            t.created -= seconds


def test_a_drop_starts_a_task_per_link_and_lists_them_until_they_finish(
    emulator, tasks, downloads, monkeypatch
):
    monkeypatch.setattr(offline, "TASKS_TTL", 0.0)  # every look asks PikPak
    control(emulator.base_url, "config", {"offline_seconds": 30})
    drop = LinkDrops(tasks)
    data = f"{MAGNET}\nhttps://example.org/a.iso\n".encode()
    receipt = drop.drop(downloads, "links.txt", data, user="alice")
    assert (receipt.name, receipt.size) == ("links.txt", len(data)) and is_own(receipt)
    assert drop.content(receipt) == data and drop.started(receipt) == 2
    assert {t.url for t in tasks.list()} == {MAGNET, "https://example.org/a.iso"}
    entries, finished = drop.entries(downloads)
    assert sorted(e.name for e in entries) == [
        "Sintel.mkv [0% pending].task",
        "a.iso [0% pending].task",
        "links.txt",
    ]
    assert not finished and all(is_own(e) for e in entries)
    # The receipt is its folder's; the tasks are listed wherever the drop folder is.
    assert sorted(e.name for e in drop.entries("another folder")[0]) == [
        "Sintel.mkv [0% pending].task",
        "a.iso [0% pending].task",
    ]

    age_tasks(emulator, 60)  # both are done now
    entries, finished = drop.entries(downloads)
    assert [e.name for e in entries] == ["links.txt"] and finished
    assert drop.entries(downloads)[1] is False  # said once
    assert sorted(f.name for f in Drive(tasks.session).list_folder(downloads)) == [
        "Sintel.mkv",
        "a.iso",
    ]


def test_more_links_than_a_file_may_hold_start_nothing(emulator, tasks, downloads):
    drop = LinkDrops(tasks, links_per_file=3)
    links = "".join(f"https://example.org/{i}.iso\n" for i in range(4)).encode()
    with pytest.raises(TooManyLinks, match="holds 4 links; one file may start at most 3"):
        drop.drop(downloads, "many.txt", links)
    assert tasks.list() == [] and drop.entries(downloads)[0] == ()


def test_a_user_s_links_per_minute_are_capped_and_others_are_not(emulator, tasks, downloads):
    drop = LinkDrops(tasks, links_per_minute=3)
    two = b"https://example.org/1.iso\nhttps://example.org/2.iso\n"
    drop.drop(downloads, "first.txt", two, user="alice")
    with pytest.raises(LinksTooFast, match="2 started in the last minute") as caught:
        drop.drop(downloads, "second.txt", two, user="alice")
    assert 1 <= caught.value.retry_after <= 60
    drop.drop(downloads, "bob.txt", two, user="bob")  # another user's minute
    assert len(tasks.list()) == 4


def test_a_link_pikpak_refuses_says_how_many_started_and_only_those_count(
    emulator, tasks, downloads
):
    control(emulator.base_url, "config", {"task_daily_limit": 2})
    drop = LinkDrops(tasks, links_per_minute=4)
    three = b"https://example.org/1.iso\nhttps://example.org/2.iso\nhttps://example.org/3.iso\n"
    with pytest.raises(LinkRefused, match=r"\(2 of 3 started before it\)"):
        drop.drop(downloads, "three.txt", three, user="alice")
    assert account_stats(emulator)["tasks_created"] == 2
    control(emulator.base_url, "config", {"task_daily_limit": 100})
    # 2 of the minute's 4 were used: two more fit, a third does not.
    drop.drop(downloads, "two.txt", three[:52], user="alice")
    with pytest.raises(LinksTooFast):
        drop.drop(downloads, "one.txt", three[:26], user="alice")
