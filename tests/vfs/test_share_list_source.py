"""vfs.sharelist on its own: reading a list file (both formats, bad lines with their numbers,
clashing folders) and ShareListSource over the emulator (the list's folders, each share's
files and links, an edited or vanished file), with no gateway."""

from __future__ import annotations

import base64
import logging

import pytest
import requests

from pikdav.pikpak.errors import NotFound
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.shares import SharedFolder
from pikdav.pikpak.tokenstore import MemoryTokenStore
from pikdav.vfs.sharelist import ShareListSource, read_share_list
from tests.support.shares import add_file, make_share, set_share_status

LINK = "https://mypikpak.com/s/VNabc123"


def test_lines_give_names_categories_and_pass_codes():
    text = (
        "# my films\n"
        "\n"
        f"Sintel = {LINK}\n"
        f"Films/Tears of Steel = {LINK}/VFolder42 1234\n"
        f"Spring = {LINK}?pwd=9999\n"
    )
    shares, bad = read_share_list(text)
    assert bad == []
    assert [(s.name, s.line) for s in shares] == [
        ("Sintel", 3),
        ("Films/Tears of Steel", 4),
        ("Spring", 5),
    ]
    assert [(s.link.share_id, s.link.folder_id, s.link.pass_code) for s in shares] == [
        ("VNabc123", "", ""),
        ("VNabc123", "VFolder42", "1234"),
        ("VNabc123", "", "9999"),
    ]
    assert len({s.key for s in shares}) == 3  # one share, three sources


def test_the_batch_tools_yaml_gives_categories_of_name_link_pairs():
    text = f"Loose: {LINK}\nfilms:\n  Sintel: {LINK}/VFolder42 1234\n  Bad: not a link\n"
    shares, bad = read_share_list(text)
    assert [(s.path, s.link.pass_code) for s in shares] == [
        (("Loose",), ""),
        (("films", "Sintel"), "1234"),
    ]
    assert [b.line for b in bad] == [4] and "link" in str(bad[0])


def test_each_bad_line_is_reported_with_its_number_and_the_others_kept():
    text = (
        f"Good = {LINK}\n"
        "no equals sign here\n"
        "Bad = https://example.com/not-a-share\n"
        f".. = {LINK}\n"
        f"good = {LINK}/VOther\n"  # the same folder as line 1 but for case: a clash
        f"Good/Inner = {LINK}\n"  # a share's folder cannot be a category too
        f"Also good = {LINK}/VOther\n"
    )
    shares, bad = read_share_list(text)
    assert [s.name for s in shares] == ["Good", "Also good"]
    assert [b.line for b in bad] == [2, 3, 4, 5, 6]
    assert str(bad[0]).startswith("line 2: ")
    assert "clashes with line 1" in str(bad[3]) and "clashes with line 1" in str(bad[4])


def test_broken_yaml_is_one_bad_line_at_its_place():
    shares, bad = read_share_list("films:\n  Sintel: [unclosed\n")
    assert shares == [] and len(bad) == 1 and bad[0].line >= 2
    assert str(bad[0]).startswith(f"line {bad[0].line}: YAML")


@pytest.fixture
def two_shares(emulator) -> list[dict]:
    made = []
    for i, code in enumerate(("", "pw")):
        content = base64.b64encode(f"share {i}\n".encode()).decode()
        add_file(emulator, f"s{i}/file{i}.txt", content=content)
        made.append(make_share(emulator, f"s{i}/file{i}.txt", pass_code=code))
    return made


def list_source(emulator, list_file) -> ShareListSource:
    session = Session(
        Credentials(), MemoryTokenStore(), user_api=emulator.base_url, drive_api=emulator.base_url
    )
    return ShareListSource(
        "lists",
        list_file,
        lambda entry: SharedFolder(session, entry.link.share_id, entry.link.pass_code),
    )


def names(source: ShareListSource, folder_id: str = "") -> list[str]:
    return sorted(f.name for f in source.list_folder(folder_id))


def test_the_lists_folders_lead_to_each_shares_files_and_links(emulator, two_shares, tmp_path):
    list_file = tmp_path / "shares.txt"
    list_file.write_text(
        f"Films/First = {two_shares[0]['share_url']}\nSecond = {two_shares[1]['share_url']} pw\n"
    )
    source = list_source(emulator, list_file)
    root = {f.name: f for f in source.list_folder("")}
    assert sorted(root) == ["Films", "Second"] and all(f.is_folder for f in root.values())
    (first,) = source.list_folder(root["Films"].id)
    assert first.name == "First" and first.is_folder
    for folder, expected in ((first, "share 0\n"), (root["Second"], "share 1\n")):
        (item,) = source.list_folder(folder.id)
        link = source.link(item.id)
        assert requests.get(link.url, timeout=30).text == expected
    assert [s.state for s in source.statuses()] == ["OK", "OK"]
    assert [s.name for s in source.statuses()] == ["Films/First", "Second"]


def test_an_edited_list_is_read_again_and_a_removed_shares_ids_are_gone(
    emulator, two_shares, tmp_path
):
    list_file = tmp_path / "shares.txt"
    list_file.write_text(f"First = {two_shares[0]['share_url']}\n")
    source = list_source(emulator, list_file)
    first = source.list_folder("")[0]
    (item,) = source.list_folder(first.id)
    list_file.write_text(f"Second = {two_shares[1]['share_url']} pw\nbroken line\n")
    assert names(source) == ["Second"]
    assert [str(b) for b in source.bad_lines] == ["line 2: expected 'name = link [pass code]'"]
    with pytest.raises(NotFound, match="no longer in the list"):
        source.link(item.id)
    assert source.list_folder(first.id) == []  # its folder is empty, and not listed


def test_a_list_file_that_vanishes_keeps_the_shares_read_before(
    emulator, two_shares, tmp_path, caplog
):
    list_file = tmp_path / "shares.txt"
    list_file.write_text(f"First = {two_shares[0]['share_url']}\n")
    source = list_source(emulator, list_file)
    assert names(source) == ["First"]
    list_file.unlink()
    with caplog.at_level(logging.WARNING, logger="pikdav.vfs.sharelist"):
        for _ in range(3):
            assert names(source) == ["First"]
    said = [r for r in caplog.records if "keeping the shares read before" in r.getMessage()]
    assert len(said) == 1  # once, not once per look


def test_each_shares_state_is_its_own(emulator, two_shares, tmp_path):
    list_file = tmp_path / "shares.txt"
    list_file.write_text(
        f"First = {two_shares[0]['share_url']}\nSecond = {two_shares[1]['share_url']} wrong\n"
    )
    set_share_status(emulator, two_shares[0]["share_id"], "EXPIRED")
    checked = list_source(emulator, list_file).check()
    assert [(entry.name, status.state) for entry, status in checked] == [
        ("First", "EXPIRED"),
        ("Second", "PASS_CODE_ERROR"),
    ]
