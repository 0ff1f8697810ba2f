"""Assembly on its own: ``build_mounts`` turns a small config into mounts that have what the
config says (their roots, writability, offline folder, link route, background uploads, a
share read without the account's login), against the emulator, with no server."""

from __future__ import annotations

import pytest

from pikdav.assembly import build_mounts, cluster_of, memory_budget
from pikdav.config import parse_config
from pikdav.pikpak.types import Link
from pikdav.vfs.errors import ReadOnly
from tests.support.pikpak_raw import account_stats
from tests.support.shares import add_file, make_share

USER, PASSWORD = "alice@example.com", "correct horse"


@pytest.fixture
def config(emulator, tmp_path):
    films = add_file(emulator, "Films/sintel.mkv", 1000)
    add_file(emulator, "Trip/clip.mp4", 500)
    share = make_share(emulator, "Trip")
    data = {
        "server": {"host": "127.0.0.1", "port": 0, "anonymous": True},
        "state_dir": str(tmp_path / "state"),
        "accounts": {
            "main": {
                "username": USER,
                "password": PASSWORD,
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
            }
        },
        "mounts": [
            {
                "name": "pikpak",
                "offline_folder": "Offline",
                "download_domain": "mypikpak.net",
                "background_uploads": True,
            },
            {"name": "films", "root_folder_id": films["parent_id"], "read_only": True},
            {"name": "trip", "share": share["share_url"], "account": "main"},
        ],
    }
    return parse_config(data, "assembly.yaml")


def names(mount, *path: str) -> list[str]:
    folder = mount.resolve(list(path))  # as a DAV request finds its folder
    return sorted(e.name for e in mount.children(folder))


@pytest.fixture
def mounts(config):
    built = build_mounts(config)
    yield built
    for mount in built:
        mount.give_up_uploads()


def test_each_mount_shows_what_its_config_says(emulator, mounts):
    pikpak, films, trip = mounts
    assert [m.name for m in mounts] == ["pikpak", "films", "trip"]
    assert names(pikpak) == ["Films", "Offline", "Trip"]  # the offline folder is made
    assert pikpak.drop is not None and pikpak.drop.is_it(pikpak.resolve(["Offline"]))
    assert names(films) == ["sintel.mkv"]  # root_folder_id: the folder is the root
    assert names(trip) == ["Trip"] and names(trip, "Trip") == ["clip.mp4"]
    pikpak.check_writable("new.txt")
    for read_only in (films, trip):
        with pytest.raises(ReadOnly):
            read_only.check_writable("new.txt")
    assert pikpak.quota() is not None and trip.quota() is None
    assert [s.name for s in trip.share_statuses()] == ["trip"] and trip.share_statuses()[0].ok


def test_the_mounts_of_one_account_share_its_session_and_a_share_uses_none(emulator, mounts):
    pikpak, films, trip = mounts
    assert pikpak.source.signed_in_session() is films.source.signed_in_session() is not None
    assert trip.source.signed_in_session() is None
    for mount in mounts:
        names(mount)
    assert account_stats(emulator)["signin"] == 1  # one sign-in for both drive mounts


def test_download_domain_moves_the_mounts_links_and_only_that_mounts(mounts):
    pikpak, films, _ = mounts
    link = Link("https://dl-a10b-0621.mypikpak.com/download/?fid=x&expire=1", 1.0)
    assert pikpak.reading.route.route(link).url.startswith("https://dl-a10b-0621.mypikpak.net/")
    assert films.reading.route is None  # links as PikPak gives them


def test_one_memory_budget_for_every_mount_and_no_cluster_without_redis(mounts):
    budget = memory_budget(mounts)
    assert budget is not None and all(memory_budget([m]) is budget for m in mounts)
    assert cluster_of(mounts) is None


def test_background_uploads_only_where_asked_and_never_beside_a_server(config):
    served = build_mounts(config)
    assert [m.pending is not None for m in served] == [True, False, False]
    beside = build_mounts(config, background=False)  # e.g. `pikdav check` beside a server
    assert [m.pending is not None for m in beside] == [False, False, False]
    for mount in served + beside:
        mount.give_up_uploads()
