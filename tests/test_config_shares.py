"""Share mounts in the config: the keys of the issue, a config without accounts, and clear
messages for what cannot go together."""

from __future__ import annotations

import pytest

from pikdav.config import ConfigError, parse_config
from pikdav.dav.auth import hash_password
from pikdav.pikpak.shares import ShareLink, parse_share_link

HASH = hash_password("x")
LINK = "https://mypikpak.com/s/VNabc123def/VNfolder456?pwd=1234"


def config(mounts, accounts=None):
    data = {"mounts": mounts, "users": {"u": {"password_hash": HASH}}}
    if accounts is not None:
        data["accounts"] = accounts
    return parse_config(data, "config.yaml", {})


def error_of(mounts, accounts=None) -> str:
    with pytest.raises(ConfigError) as caught:
        config(mounts, accounts)
    return str(caught.value)


MAIN = {"main": {"username": "a@example.com", "password": "pw", "platform": "android"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LINK, ShareLink("VNabc123def", "VNfolder456", "1234")),
        ("https://mypikpak.com/s/VNabc123def", ShareLink("VNabc123def")),
        ("https://mypikpak.com/s/VNabc123def/", ShareLink("VNabc123def")),
        ("VNabc123def", ShareLink("VNabc123def")),
    ],
)
def test_share_links_and_bare_ids(text, expected):
    assert parse_share_link(text) == expected


@pytest.mark.parametrize(
    "text", ["", "https://mypikpak.com/VNabc123def", "ftp://mypikpak.com/s/VNabc123def", "a b"]
)
def test_what_is_not_a_share_link(text):
    with pytest.raises(ValueError, match="share link"):
        parse_share_link(text)


def test_a_config_of_share_mounts_alone_needs_no_account():
    parsed = config([{"name": "films", "share": LINK}])
    mount = parsed.mount("films")
    assert parsed.accounts == {}
    assert mount.is_share and mount.read_only and mount.account == ""
    assert mount.pass_code is None and mount.platform == "web"


def test_every_key_of_a_share_mount():
    parsed = config(
        [
            {
                "name": "films",
                "share": LINK,
                "pass_code": 9999,
                "root_folder_id": "VNother",
                "use_transcoding_address": True,
                "download": "redirect",
                "save_to": "main",
                "account": "main",
            }
        ],
        MAIN,
    )
    mount = parsed.mount("films")
    assert (mount.pass_code, mount.root_folder_id, mount.save_to) == ("9999", "VNother", "main")
    assert mount.use_transcoding_address and mount.save_folder == "pikdav shares/films"
    assert "9999" not in repr(mount)


def test_a_drive_mount_still_needs_an_account():
    assert "at least one PikPak account" in error_of(
        [{"name": "films", "share": LINK}, {"name": "drive"}]
    )


@pytest.mark.parametrize(
    ("mount", "accounts", "words"),
    [
        ({"share": "not a link"}, None, "mounts[0].share: must be a share link"),
        ({"share": LINK, "share_list": "x.txt"}, None, "not both"),
        ({"share": LINK, "save_to": "nobody"}, MAIN, "mounts[0].save_to: must name an account"),
        ({"share_list": __file__, "save_to": "main"}, MAIN, "save_to: belongs to a mount of one"),
        ({"share_list": __file__, "pass_code": "1"}, None, "give a pass code after the link"),
        ({"share": LINK, "save_folder": "x"}, MAIN, "goes with save_to"),
        ({"share": LINK, "background_uploads": True}, None, "read-only"),
        ({"share": LINK, "use_transcoding_address": True}, None, "download: redirect"),
        ({"share": LINK, "account": "main", "user_api": "http://x"}, MAIN, "come from account"),
        ({"share": LINK, "account": "other"}, MAIN, "no account is named 'other'"),
        ({"account": "main", "pass_code": "1"}, MAIN, "share mounts only"),
        ({"account": "main", "platform": "web"}, MAIN, "set it on the account"),
    ],
)
def test_what_a_share_mount_refuses(mount, accounts, words):
    message = error_of([{"name": "films", **mount}], accounts)
    assert words in message
    assert "1234" not in message  # the link's pass code is never repeated


def test_the_connection_settings_of_a_named_account_read_nothing_else(emulator, tmp_path):
    from pikdav.assembly import share_session

    parsed = config(
        [{"name": "films", "share": LINK, "account": "main"}],
        {"main": MAIN["main"] | {"user_api": emulator.base_url, "drive_api": emulator.base_url}},
    )
    session = share_session(parsed, parsed.mount("films"))
    assert session.platform.name == "android" and session.drive_api == emulator.base_url
    assert session.credentials.username == "" and session.credentials.password is None


def test_the_examples_share_mounts_parse_when_uncommented(tmp_path, monkeypatch):
    """config.example.yaml's commented share mounts are a config that works as written."""
    from pathlib import Path

    from pikdav.config import load_config

    monkeypatch.setenv("PIKPAK_PASSWORD", "hunter2")
    root = Path(__file__).resolve().parent.parent
    lines = (root / "config.example.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  # - name: films"))
    out = lines[:start]
    for number, line in enumerate(lines[start:], start):
        if not line.startswith("  #"):
            out.extend(lines[number:])
            break
        body = line[len("  # ") :]
        if body.lstrip().startswith("#"):
            continue  # a comment's continuation line
        out.append("  " + body)
    (tmp_path / "shares.txt").write_text("A = https://mypikpak.com/s/VNabc123\n")
    (tmp_path / "config.yaml").write_text("\n".join(out) + "\n")
    config = load_config(tmp_path / "config.yaml")
    films, many = config.mount("films"), config.mount("many")
    assert films.share.startswith("https://mypikpak.com/s/") and films.save_to == "main"
    assert films.save_folder == "pikdav shares/films" and films.account == "main"
    assert many.share_list == tmp_path / "shares.txt"
