"""litmus (the neon WebDAV compliance suite) against the gateway: every group, 100 %.

litmus 0.13 runs basic (16), copymove (13), props (30), locks (41) and http (4); WsgiDAV's own
FilesystemProvider with a property store and locks passes all 104, and so must pikdav on
PikPak. A read-only mount is checked too: there litmus stops at ``begin`` (it cannot MKCOL
its scratch collection) and the only failure is that 405.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import requests

from tests.support.davclients import installed, put_files
from tests.support.gateway import DAV_PASSWORD, DAV_USER, PIKPAK_USER
from tests.support.tools import run_tool, tool_env

TIMEOUT = 180
GROUPS = ("basic", "http")
# What litmus 0.13 runs in each group when nothing stops it.
FULL = {
    "basic": [
        "init",
        "begin",
        "options",
        "put_get",
        "put_get_utf8_segment",
        "put_no_parent",
        "mkcol_over_plain",
        "delete",
        "delete_null",
        "delete_fragment",
        "mkcol",
        "mkcol_again",
        "delete_coll",
        "mkcol_no_parent",
        "mkcol_with_body",
        "finish",
    ],
    "http": ["init", "begin", "expect100", "finish"],
}


@dataclass
class Result:
    number: int
    name: str
    outcome: str  # "pass", "FAIL", "SKIPPED", "WARNING"
    detail: str


@pytest.fixture
def gateway(emulator, make_gateway):
    """The shared proxying gateway, on a drive that is not empty."""
    put_files(emulator, {"Movies/a.mp4": b"not really a movie"})
    return make_gateway(download="proxy")


_GROUP = re.compile(r"^-> running `(\w+)':$")
_TEST = re.compile(r"^\s*(\d+)\.\s+(\w+)\.*\s+(pass|FAIL|SKIPPED|WARNING)\b\s*(.*)$")
_SUMMARY = re.compile(r"^<- summary for `(\w+)': (.*)$")


def parse(output: str) -> tuple[dict[str, list[Result]], dict[str, str]]:
    """litmus's report, group -> results in order, and group -> summary line."""
    groups: dict[str, list[Result]] = {}
    summaries: dict[str, str] = {}
    current: list[Result] | None = None
    for raw in output.splitlines():
        # Progress is drawn with carriage returns: keep what is finally shown.
        line = raw.rsplit("\r", 1)[-1]
        if m := _GROUP.match(line):
            current = groups.setdefault(m[1], [])
        elif m := _SUMMARY.match(line):
            summaries[m[1]] = m[2]
            current = None
        elif current is not None and (m := _TEST.match(line)):
            current.append(Result(int(m[1]), m[2], m[3], m[4]))
        elif current:
            # A FAIL's reason may run over several lines.
            current[-1].detail += "\n" + line
    return groups, summaries


def run_litmus(url: str, cwd, groups: tuple[str, ...]) -> str:
    proc = run_tool(
        [installed("litmus"), "--keep-going", url, DAV_USER, DAV_PASSWORD],
        env=tool_env(HOME=str(cwd), TESTS=" ".join(groups)),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    output = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"litmus exited {proc.returncode}\n{output}"
    return output


ALL_GROUPS = ("basic", "copymove", "props", "locks", "http")
# How many tests litmus 0.13 runs per group (WsgiDAV's FilesystemProvider passes them all).
COUNTS = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}


def test_litmus_every_group_passes_completely(gateway, tmp_path):
    output = run_litmus(f"{gateway.url}/pikpak/", tmp_path, ALL_GROUPS)
    groups, summaries = parse(output)
    assert list(groups) == list(ALL_GROUPS), output
    for group in ALL_GROUPS:
        results = groups[group]
        failed = [r for r in results if r.outcome == "FAIL"]
        assert failed == [], (group, failed)
        assert len(results) == COUNTS[group], (group, [r.name for r in results])
        assert summaries[group] == (
            f"of {COUNTS[group]} tests run: {COUNTS[group]} passed, 0 failed. 100.0%"
        ), output
    assert [r.name for r in groups["basic"]] == FULL["basic"]
    assert [r.name for r in groups["http"]] == FULL["http"]


def test_litmus_against_a_read_only_mount(emulator, make_gateway, tmp_path):
    """A read-only mount: litmus cannot create its scratch collection; the only failure is
    the 405 refusal of that write, and nothing reaches the drive."""
    put_files(emulator, {"Movies/a.mp4": b"a movie"})
    gw = make_gateway(download="proxy", read_only=True)
    output = run_litmus(f"{gw.url}/pikpak/", tmp_path, GROUPS)
    groups, summaries = parse(output)
    for group in GROUPS:
        results = groups[group]
        assert [(r.name, r.outcome) for r in results] == [("init", "pass"), ("begin", "FAIL")], (
            output
        )
        assert "405 Method Not Allowed" in results[1].detail
        assert "Server must allow `MKCOL /pikpak/litmus/'" in results[1].detail
        assert summaries[group] == "of 2 tests run: 1 passed, 1 failed. 50.0%", output
    tree = requests.get(
        f"{emulator.base_url}/__emulator__/tree", params={"username": PIKPAK_USER}, timeout=10
    ).json()["files"]
    assert sorted(row["path"] for row in tree if not row["trashed"]) == ["Movies", "Movies/a.mp4"]
