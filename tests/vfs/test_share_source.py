"""vfs.share on its own: a share link as a source (listing, links, its state and the refusals
it remembers) and ShareSaver (files read from a copy saved once into an own drive), against
the emulator over loopback, with no gateway."""

from __future__ import annotations

import base64
import logging
import os

import pytest
import requests

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import ShareExpired, SharePassCodeRefused
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.shares import SharedFolder
from pikdav.pikpak.tokenstore import MemoryTokenStore
from pikdav.vfs.share import ShareSaver, ShareSource
from tests.support.pikpak_raw import account_stats, control, drive_calls
from tests.support.shares import add_file, make_share, set_share_status

BODY = os.urandom(40_000)


@pytest.fixture
def shared(emulator) -> dict:
    """alice's Films (film.mkv and Extras/trailer.mp4), shared with a pass code."""
    add_file(emulator, "Films/film.mkv", content=base64.b64encode(BODY).decode())
    add_file(emulator, "Films/Extras/trailer.mp4", 1000)
    return make_share(emulator, "Films", pass_code="4321")


def anonymous(emulator) -> Session:
    return Session(
        Credentials(), MemoryTokenStore(), user_api=emulator.base_url, drive_api=emulator.base_url
    )


def source_of(emulator, shared: dict, pass_code: str | None = None, **options) -> ShareSource:
    code = shared["pass_code"] if pass_code is None else pass_code
    return ShareSource(
        "films", SharedFolder(anonymous(emulator), shared["share_id"], code), **options
    )


def test_a_share_is_listed_and_its_files_read_through_their_links(emulator, shared):
    source = source_of(emulator, shared)
    assert source.status().state == "not read yet" and not source.status().ok
    (films,) = source.list_folder("")
    assert films.name == "Films" and films.is_folder
    status = source.status()
    assert status.ok and status.files_at_root == 1 and status.pass_code_used
    inside = {f.name: f for f in source.list_folder(films.id)}
    assert set(inside) == {"film.mkv", "Extras"}
    link = source.link(inside["film.mkv"].id)
    assert requests.get(link.url, timeout=30).content == BODY
    assert source.quota() is None  # a share has no quota of its own


def test_a_folder_inside_the_share_can_be_the_root(emulator, shared):
    films = source_of(emulator, shared).list_folder("")[0]
    source = source_of(emulator, shared, root_id=films.id)
    assert {f.name for f in source.list_folder(films.id)} == {"film.mkv", "Extras"}
    assert source.status().files_at_root == 2


def test_a_refusal_is_answered_from_memory_logged_once_and_check_asks_again(
    emulator, shared, caplog
):
    source = source_of(emulator, shared)
    source.list_folder("")
    set_share_status(emulator, shared["share_id"], "EXPIRED")
    with caplog.at_level(logging.INFO, logger="pikdav.vfs.share"):
        with pytest.raises(ShareExpired):
            source.list_folder("")
        asked = drive_calls(emulator)
        for _ in range(5):  # clients polling a dead share: PikPak is not asked again
            with pytest.raises(ShareExpired):
                source.list_folder("")
        assert drive_calls(emulator) == asked
        status = source.status()
        assert status.state == "EXPIRED" and not status.ok and status.advice
        said = [r for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert "EXPIRED" in said[0].getMessage()

        set_share_status(emulator, shared["share_id"], "OK")  # the owner renews it
        with pytest.raises(ShareExpired):  # still the remembered answer…
            source.list_folder("")
        assert source.check().ok  # …until someone checks
        assert source.list_folder("")[0].name == "Films"
    assert [r.getMessage() for r in caplog.records if r.getMessage().endswith(": open")] == [
        f"share films ({shared['share_id']}): open"
    ]


def test_a_wrong_pass_code_is_the_share_s_state_with_what_to_do(emulator, shared):
    source = source_of(emulator, shared, pass_code="0000")
    status = source.check()
    assert status.state == "PASS_CODE_ERROR" and not status.ok
    assert "pass code" in status.advice and status.pass_code_used
    with pytest.raises(SharePassCodeRefused):
        source.list_folder("")


@pytest.fixture
def bob(emulator) -> Drive:
    """Another account's drive, where shared files are saved."""
    control(emulator.base_url, "accounts", {"username": "bob@example.com", "password": "pw"})
    return Drive(
        Session(
            Credentials("bob@example.com", "pw"),
            MemoryTokenStore(),
            user_api=emulator.base_url,
            drive_api=emulator.base_url,
        )
    )


def saved_files(bob: Drive, *path: str) -> list[str]:
    parent = ""
    for name in path:
        parent = next(f for f in bob.iter_folder(parent) if f.is_folder and f.name == name).id
    return [f.name for f in bob.iter_folder(parent)]


def saving_source(emulator, shared, bob: Drive) -> ShareSource:
    folder = SharedFolder(anonymous(emulator), shared["share_id"], shared["pass_code"])
    return ShareSource("films", folder, saver=ShareSaver(folder, bob, "Saved/Shares"))


def test_with_a_saver_a_file_is_read_from_one_copy_saved_into_the_drive(emulator, shared, bob):
    source = saving_source(emulator, shared, bob)
    films = source.list_folder("")[0]
    film = next(f for f in source.list_folder(films.id) if f.name == "film.mkv")
    for _ in range(3):
        link = source.link(film.id)
        assert requests.get(link.url, timeout=30).content == BODY
    assert saved_files(bob, "Saved", "Shares") == ["film.mkv"]
    assert account_stats(emulator, "bob@example.com")["share_restores"] == 1
    # After a restart the copy is found by its name and hash: not saved a second time.
    again = saving_source(emulator, shared, bob)
    again.list_folder(films.id)
    assert requests.get(again.link(film.id).url, timeout=30).content == BODY
    assert account_stats(emulator, "bob@example.com")["share_restores"] == 1
    assert saved_files(bob, "Saved", "Shares") == ["film.mkv"]


def test_a_save_pikpak_refuses_falls_back_to_the_share_s_own_link(emulator, shared, bob, caplog):
    control(
        emulator.base_url,
        "faults",
        {"path": "^/drive/v1/share/restore$", "status": 400, "error": {"error": "file_restore"}},
    )
    source = saving_source(emulator, shared, bob)
    films = source.list_folder("")[0]
    film = next(f for f in source.list_folder(films.id) if f.name == "film.mkv")
    with caplog.at_level(logging.WARNING, logger="pikdav.vfs.share"):
        link = source.link(film.id)
    assert requests.get(link.url, timeout=30).content == BODY
    assert "serving the share's own link" in caplog.text
    assert account_stats(emulator, "bob@example.com").get("share_restores", 0) == 0
