"""litmus (the neon WebDAV compliance suite), groups ``basic`` and ``http``, against the gateway.

Every litmus group starts with ``init`` (parse the URL, set up the session: no request) and
``begin``, which DELETEs and then MKCOLs ``<url>/litmus/`` as its scratch collection; every
later test works inside it. The gateway is read-only for now - writes answer 405 - so ``begin``
fails and litmus stops the group there:

    -> running `basic':
     0. init.................. pass
     1. begin................. FAIL (Could not create new collection `/pikpak/litmus/' for tests:
        405 Method Not Allowed
    Server must allow `MKCOL /pikpak/litmus/' for tests to proceed)
    <- summary for `basic': of 2 tests run: 1 passed, 1 failed. 50.0%

(and the same for ``http``). That is all a read-only server can pass. The test asserts exactly
that while the gateway refuses MKCOL, and that the only failures are 405 refusals of a write:
once the gateway accepts writes (OPTIONS lists MKCOL), every test of both groups must pass -
basic 16/16, http 4/4, as WsgiDAV itself scores - and this test holds the gateway to it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest
import requests

from tests.support.gateway import DAV_PASSWORD, DAV_USER, PIKPAK_USER, start_gateway
from tests.support.pikpak_raw import control

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


def litmus_binary() -> str:
    found = shutil.which("litmus")
    if not found:
        pytest.fail("litmus is not installed: apt-get install litmus", pytrace=False)
    return found


@pytest.fixture
def gateway(emulator, tmp_path):
    control(
        emulator.base_url,
        "files",
        {
            "username": PIKPAK_USER,
            "path": "Movies/a.mp4",
            "content": base64.b64encode(b"not really a movie").decode(),
        },
    )
    gw = start_gateway(emulator, tmp_path / "state", download="proxy")
    yield gw
    gw.stop()


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


def run_litmus(url: str, cwd) -> str:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env |= {"HOME": str(cwd), "TESTS": " ".join(GROUPS)}
    cmd = [litmus_binary(), "--keep-going", url, DAV_USER, DAV_PASSWORD]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"litmus timed out after {TIMEOUT}s\n{e.stdout!r}") from None
    output = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"litmus exited {proc.returncode}\n{output}"
    return output


def test_litmus_basic_and_http(gateway, emulator, tmp_path):
    url = f"{gateway.url}/pikpak/"
    allow = requests.options(url, auth=gateway.auth, timeout=10).headers.get("Allow", "")
    writable = "MKCOL" in {m.strip() for m in allow.split(",")}

    output = run_litmus(url, tmp_path)
    debug = (tmp_path / "debug.log").read_text(errors="replace")
    groups, summaries = parse(output)
    report = f"{output}\n--- Allow: {allow}"
    assert list(groups) == list(GROUPS), report
    assert set(summaries) == set(GROUPS), report

    for group in GROUPS:
        results = groups[group]
        outcomes = {r.name: r.outcome for r in results}
        # At least what any server passes, read-only or not.
        assert outcomes.get("init") == "pass", report
        # Every failure is the gateway refusing a write, nothing else (no 401, 403, 500, ...).
        for r in results:
            if r.outcome == "FAIL":
                assert "405 Method Not Allowed" in r.detail, (group, r, report)
                refused = re.search(r"must allow `(\w+) ", r.detail)
                assert refused and refused[1] not in allow, (group, r, report)

        if not writable:
            # Read-only: begin cannot create /pikpak/litmus/, and litmus stops the group.
            assert [(r.name, r.outcome) for r in results] == [
                ("init", "pass"),
                ("begin", "FAIL"),
            ], report
            assert "Could not create new collection `/pikpak/litmus/'" in results[1].detail
            assert "Server must allow `MKCOL /pikpak/litmus/'" in results[1].detail
            assert summaries[group] == "of 2 tests run: 1 passed, 1 failed. 50.0%", report
        else:
            # Writes work: the whole group passes (expect warnings, never failures).
            assert [r.name for r in results] == FULL[group], report
            assert all(r.outcome in ("pass", "WARNING") for r in results), report
            assert summaries[group].endswith("100.0%"), report

    if not writable:
        # The refusal happened on the wire: MKCOL got a 405 after authenticating.
        assert re.search(r"MKCOL /pikpak/litmus/ HTTP/1\.1\r?\n(?:[^\n]*\n)*?Authorization:", debug)
        assert "[status-line] < HTTP/1.1 405 Method Not Allowed" in debug
        # ... and nothing was written to the drive.
        tree = requests.get(
            f"{emulator.base_url}/__emulator__/tree", params={"username": PIKPAK_USER}, timeout=10
        ).json()["files"]
        assert sorted(row["path"] for row in tree if not row["trashed"]) == [
            "Movies",
            "Movies/a.mp4",
        ]
