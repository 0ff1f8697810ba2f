"""Many shares in one mount (``share_list``): a list file in either format, one bad line
reported with its number and skipped, a change picked up without a restart, and each share's
state in its own folder."""

from __future__ import annotations

import base64
import logging
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote

import pytest
import requests

from tests.support.shares import add_file, make_share, set_share_status, start_share_gateway
from tests.support.waits import wait_until

DAV = "{DAV:}"
COUNT = 50


def names(gw, path: str) -> list[str]:
    resp = requests.request("PROPFIND", gw.url + quote(path), headers={"Depth": "1"}, auth=gw.auth)
    assert resp.status_code == 207, (path, resp.status_code, resp.text)
    hrefs = [unquote(r.findtext(f"{DAV}href")) for r in ET.fromstring(resp.content)]
    return sorted(h.rstrip("/").rpartition("/")[2] for h in hrefs[1:])


@pytest.fixture
def shares(emulator) -> list[dict]:
    """COUNT shares of alice's, every other one with a pass code; each holds one file."""
    made = []
    for i in range(COUNT):
        content = base64.b64encode(f"share {i}\n".encode()).decode()
        add_file(emulator, f"s{i:02d}/file{i:02d}.txt", content=content)
        made.append(
            make_share(emulator, f"s{i:02d}/file{i:02d}.txt", pass_code="pw" if i % 2 else "")
        )
    return made


def as_lines(shares: list[dict], broken_at: int) -> tuple[str, int, list[str]]:
    """The list in ``name = link [pass code]`` lines, a broken line among them:
    (text, the broken line's number, the folders expected at the root)."""
    lines = ["# films to watch", ""]
    broken_line = 0
    for i, share in enumerate(shares):
        if i == broken_at:
            lines.append(f"Broken {i} = https://example.com/not-a-share")
            broken_line = len(lines)
            continue
        lines.append(f"Share {i:02d} = {share['share_url']} {share['pass_code']}".rstrip())
    roots = [f"Share {i:02d}" for i in range(len(shares)) if i != broken_at]
    return "\n".join(lines) + "\n", broken_line, roots


def as_yaml(shares: list[dict], broken_at: int) -> tuple[str, int, list[str]]:
    """The batch tool's YAML: two categories of ``name: link`` pairs."""
    lines, broken_line = ["# the batch tool's format", "films:"], 0
    for i, share in enumerate(shares):
        if i == COUNT // 2:
            lines.append("series:")
        if i == broken_at:
            lines.append(f"  Broken {i}: [not, a, link]")
            broken_line = len(lines)
            continue
        code = f"?pwd={share['pass_code']}" if share["pass_code"] else ""
        lines.append(f'  "Share {i:02d}": "{share["share_url"]}{code}"')
    return "\n".join(lines) + "\n", broken_line, ["films", "series"]


def folder_of(fmt, i: int) -> str:
    if fmt is as_lines:
        return f"/many/Share {i:02d}"
    return f"/many/{'films' if i < COUNT // 2 else 'series'}/Share {i:02d}"


@pytest.mark.parametrize("fmt", [as_lines, as_yaml], ids=["lines", "yaml"])
def test_fifty_shares_one_broken_line_reported_and_skipped(emulator, shares, tmp_path, caplog, fmt):
    caplog.set_level(logging.INFO, logger="pikdav")
    text, broken_line, roots = fmt(shares, broken_at=7)
    listed = tmp_path / "shares.txt"
    listed.write_text(text)
    mount = {
        "name": "many",
        "share_list": str(listed),
        "user_api": emulator.base_url,
        "drive_api": emulator.base_url,
    }
    gw = start_share_gateway(emulator, tmp_path / "gw", [mount])
    try:
        assert names(gw, "/many") == roots
        readable = 0
        for i in range(COUNT):
            if i == 7:
                continue
            assert names(gw, folder_of(fmt, i)) == [f"file{i:02d}.txt"]
            readable += 1
        assert readable == COUNT - 1
        got = requests.get(gw.url + quote(folder_of(fmt, 3) + "/file03.txt"), auth=gw.auth)
        assert got.content == b"share 3\n"
        reported = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(reported) == 1 and f"line {broken_line}:" in reported[0], reported
        assert [b.line for b in gw.mounts[0].source.bad_lines] == [broken_line]

        # A share that PikPak refuses shows in its own folder; the others are unaffected.
        set_share_status(emulator, shares[4]["share_id"], "EXPIRED")
        gw.mounts[0].tree.forget_everything()
        gone = requests.request(
            "PROPFIND", gw.url + quote(folder_of(fmt, 4)), headers={"Depth": "1"}, auth=gw.auth
        )
        assert gone.status_code == 404 and "expired" in gone.text
        assert names(gw, folder_of(fmt, 5)) == ["file05.txt"]
        states = {s.name: s.state for s in gw.mounts[0].source.statuses()}
        assert states[folder_of(fmt, 4).removeprefix("/many/")] == "EXPIRED"
    finally:
        gw.stop()


def test_an_edited_list_adds_a_folder_without_a_restart(emulator, shares, tmp_path):
    listed = tmp_path / "shares.txt"
    listed.write_text(f"First = {shares[0]['share_url']}\n")
    mount = {
        "name": "many",
        "share_list": str(listed),
        "user_api": emulator.base_url,
        "drive_api": emulator.base_url,
    }
    gw = start_share_gateway(emulator, tmp_path / "gw", [mount])
    try:
        assert names(gw, "/many") == ["First"]
        listed.write_text(
            f"First = {shares[0]['share_url']}\nSecond = {shares[1]['share_url']} pw\n"
        )
        # Read again after 1 s (LIST_TTL); 30 s for slow CI.
        wait_until(lambda: names(gw, "/many") == ["First", "Second"], "the edit picked up", 30)
        assert names(gw, "/many/Second") == ["file01.txt"]
    finally:
        gw.stop()


def test_each_line_is_judged_by_its_own_pass_code(emulator, shares, tmp_path):
    """Given a share with a pass code named by three lines (right, wrong and no pass code),
    only the line with the right code is served, in either order."""
    share = shares[1]  # pass code "pw"
    assert share["pass_code"] == "pw"
    listed = tmp_path / "shares.txt"
    for order in (["Right", "Wrong", "Missing"], ["Wrong", "Missing", "Right"]):
        line = {
            "Right": f"Right = {share['share_url']} pw",
            "Wrong": f"Wrong = {share['share_url']} nope",
            "Missing": f"Missing = {share['share_url']}",
        }
        listed.write_text("\n".join(line[name] for name in order) + "\n")
        mount = {
            "name": "many",
            "share_list": str(listed),
            "user_api": emulator.base_url,
            "drive_api": emulator.base_url,
        }
        gw = start_share_gateway(emulator, tmp_path / f"gw-{order[0]}", [mount])
        try:
            assert names(gw, "/many") == ["Missing", "Right", "Wrong"]
            assert names(gw, "/many/Right") == ["file01.txt"]
            got = requests.get(gw.url + "/many/Right/file01.txt", auth=gw.auth)
            assert got.content == b"share 1\n"
            for refused in ("Wrong", "Missing"):
                resp = requests.request(
                    "PROPFIND", gw.url + f"/many/{refused}", headers={"Depth": "1"}, auth=gw.auth
                )
                assert 400 <= resp.status_code < 500, (refused, resp.status_code, resp.text)
                assert "file01.txt" not in resp.text
                got = requests.get(gw.url + f"/many/{refused}/file01.txt", auth=gw.auth)
                assert 400 <= got.status_code < 500 and b"share 1" not in got.content
        finally:
            gw.stop()
