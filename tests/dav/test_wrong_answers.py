"""Requests that used to get a 500, a wrong success or an upstream error: the server root as
the target of a write, a COPY into its own child spelled with the mount name in another case,
names PikPak refuses or changes, an encoded slash in a path, a malformed ``If`` header. Each
is answered with a 4xx and a short plain-text reason, and nothing on the drive changes
(checked in the emulator's own view of it)."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.support.gateway import dav
from tests.support.pikpak_raw import control, drive_calls, drive_tree

USER = "alice@example.com"


def add(emulator, path: str, data: bytes) -> None:
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": path, "content": base64.b64encode(data).decode()},
    )


def assert_plain_refusal(answer: requests.Response, statuses: tuple[int, ...], words: str):
    assert answer.status_code in statuses, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("text/plain"), (answer.headers, answer.text)
    assert words in answer.text, answer.text
    assert "Traceback" not in answer.text and "<html" not in answer.text.lower()


@pytest.mark.parametrize(
    "method, headers",
    [
        ("DELETE", {}),
        ("MOVE", {"Destination": "/pikpak/moved"}),
        ("COPY", {"Destination": "/pikpak/copied"}),
        ("PUT", {}),
    ],
)
def test_a_write_to_the_server_root_is_refused_with_a_reason(gateway, emulator, method, headers):
    add(emulator, "Docs/a.txt", b"a")
    before = drive_tree(emulator)

    answer = dav(gateway, method, "/", headers=headers, data=b"body" if method == "PUT" else None)

    assert_plain_refusal(answer, (403, 405), "server root")
    assert drive_tree(emulator) == before
    assert dav(gateway, "GET", "/pikpak/Docs/a.txt").content == b"a"


@pytest.mark.parametrize("spelling", ["PIKPAK", "PikPak", "pikpak"])
def test_a_copy_into_its_own_child_is_refused_whatever_the_case_of_the_mount_name(
    gateway, emulator, spelling
):
    assert dav(gateway, "MKCOL", "/pikpak/R").status_code == 201
    assert dav(gateway, "MKCOL", "/pikpak/R/sub").status_code == 201
    assert dav(gateway, "PUT", "/pikpak/R/a.txt", data=b"a").status_code == 201
    before = drive_tree(emulator)

    for method in ("COPY", "MOVE"):
        answer = dav(
            gateway, method, "/pikpak/R", headers={"Destination": f"/{spelling}/R/sub/copyR"}
        )
        assert_plain_refusal(answer, (403,), "")
        assert drive_tree(emulator) == before


# A name PikPak refuses (an empty one: file_name_empty) or would store under another name
# (rclone's PikPak backend encodes trailing spaces and dots and backslashes for that reason).
REFUSED_NAMES = {
    "%20": "empty",
    "%20%20%20": "empty",
    "%09": "control",
    "trailing%20": "end with",
    "trailing.": "end with",
    "back%5Cslash.txt": "\\",
}


@pytest.mark.parametrize("name", list(REFUSED_NAMES))
@pytest.mark.parametrize("method", ["PUT", "MKCOL", "MOVE", "COPY"])
def test_a_name_pikpak_refuses_is_refused_before_any_call_to_pikpak(
    gateway, emulator, name, method
):
    add(emulator, "Docs/a.txt", b"a")
    assert dav(gateway, "PROPFIND", "/pikpak/Docs/", headers={"Depth": "1"}).status_code == 207
    before, calls = drive_tree(emulator), drive_calls(emulator)

    if method in ("PUT", "MKCOL"):
        answer = dav(
            gateway, method, f"/pikpak/Docs/{name}", data=b"x" if method == "PUT" else None
        )
    else:
        answer = dav(
            gateway, method, "/pikpak/Docs/a.txt", headers={"Destination": f"/pikpak/Docs/{name}"}
        )

    assert_plain_refusal(answer, (400,), REFUSED_NAMES[name])
    assert drive_calls(emulator) == calls
    assert drive_tree(emulator) == before


def test_names_pikpak_takes_as_they_are_still_work(gateway, emulator):
    for name in (" leading.txt", "dots.in.the.middle.txt", "a b c.txt", "colon: and ?.txt"):
        path = "/pikpak/" + requests.utils.quote(name)
        assert dav(gateway, "PUT", path, data=name.encode()).status_code == 201, name
        assert dav(gateway, "GET", path).content == name.encode()
        assert name in drive_tree(emulator)


def test_the_emulator_refuses_the_same_names_as_pikpak(emulator, alice):
    for name in (" ", "   ", "back\\slash", "trailing ", "trailing."):
        answer = alice.post("/drive/v1/files", {"kind": "drive#folder", "name": name})
        assert answer.status_code == 400, name
        assert answer.json()["error"] in ("file_name_empty", "file_name_invalid"), name


@pytest.mark.parametrize("slash", ["%2F", "%2f"])
def test_an_encoded_slash_in_a_path_is_refused(gateway, emulator, slash):
    add(emulator, "Docs/a.txt", b"a")
    before = drive_tree(emulator)

    put = dav(gateway, "PUT", f"/pikpak/Docs{slash}slash.txt", data=b"x")
    mkcol = dav(gateway, "MKCOL", f"/pikpak/Docs{slash}sub")
    get = dav(gateway, "GET", f"/pikpak/Docs{slash}a.txt")

    for answer in (put, mkcol, get):
        assert_plain_refusal(answer, (400,), "slash")
    assert drive_tree(emulator) == before


def test_a_literal_percent_sign_in_a_name_still_works(gateway, emulator):
    assert dav(gateway, "PUT", "/pikpak/100%25%2Fdone.txt", data=b"%").status_code == 400
    assert dav(gateway, "PUT", "/pikpak/100%25.txt", data=b"%").status_code == 201
    assert "100%.txt" in drive_tree(emulator)


@pytest.mark.parametrize(
    "header",
    ["((((", "x" * 8000, "(<urn:x>", "<http://h/pikpak/a.txt> ((", "(Not)", ")(", "([etag]"],
    ids=[
        "open parens",
        "8000 x",
        "unclosed list",
        "unclosed tagged",
        "bare not",
        "close first",
        "unclosed etag",
    ],
)
def test_a_malformed_if_header_is_400_and_the_write_is_not_applied(gateway, emulator, header):
    add(emulator, "Docs/a.txt", b"old")
    before = drive_tree(emulator)

    put = dav(gateway, "PUT", "/pikpak/Docs/a.txt", data=b"new", headers={"If": header})
    delete = dav(gateway, "DELETE", "/pikpak/Docs/a.txt", headers={"If": header})
    mkcol = dav(gateway, "MKCOL", "/pikpak/Docs/new", headers={"If": header})

    for answer in (put, delete, mkcol):
        assert_plain_refusal(answer, (400,), "If header")
    assert drive_tree(emulator) == before
    assert dav(gateway, "GET", "/pikpak/Docs/a.txt").content == b"old"


def test_well_formed_if_headers_still_work(gateway, emulator):
    add(emulator, "Docs/a.txt", b"old")
    url = f"{gateway.url}/pikpak/Docs/a.txt"
    for header, status in (
        ("([{etag}])", 204),
        (f"<{url}> ([{{etag}}])", 204),
        (f"<{url}> (Not [{{etag}}]) ([{{etag}}])", 204),
        ("(Not <urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>)", 204),
        ('( ["nope"] )  ( not ["nope"] )', 204),
        ('(["nope"])', 412),
    ):
        etag = dav(gateway, "HEAD", "/pikpak/Docs/a.txt").headers["ETag"]
        header = header.replace("{etag}", etag)
        answer = dav(gateway, "PUT", "/pikpak/Docs/a.txt", data=b"new", headers={"If": header})
        assert answer.status_code == status, (header, answer.text)
