"""COPY and MOVE Destinations that name something other than a plain new place: a ``.`` or
``..`` segment, the server root, another host, nothing at all, or a folder that holds the
source. Each is refused with a 4xx and a reason, and nothing stored is lost (checked in the
emulator's own view of the drive)."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.support.pikpak_raw import control, drive_tree

USER = "alice@example.com"
VICTIM = {"Victim3/keep1.txt": b"first file", "Victim3/keep2.txt": b"second file"}


def put_victim(emulator) -> None:
    for path, data in VICTIM.items():
        control(
            emulator.base_url,
            "files",
            {"username": USER, "path": path, "content": base64.b64encode(data).decode()},
        )


def assert_victim_intact(emulator, gw, mount: str) -> None:
    live = drive_tree(emulator)
    assert {"Victim3", *VICTIM} <= set(live), live
    assert live["Victim3"]["kind"] == "drive#folder"
    assert drive_tree(emulator, trashed=True) == {}
    for path, data in VICTIM.items():
        got = requests.get(f"{gw.url}/{mount}/{path}", auth=gw.auth, timeout=30)
        assert got.status_code == 200 and got.content == data


def send(gw, method: str, path: str, destination: str | None, **headers) -> requests.Response:
    if destination is not None:
        headers["Destination"] = destination
    return requests.request(method, gw.url + path, auth=gw.auth, headers=headers, timeout=30)


@pytest.fixture(params=[True, False], ids=["trash", "notrash"])
def mount(request, make_gateway, emulator):
    name = "pikpak" if request.param else "notrash"
    gw = make_gateway(name=name, download="proxy", use_trash=request.param)
    put_victim(emulator)
    return gw, name


DOT_TAILS = ["/.", "/./", "/keep2.txt/..", "/./keep9.txt", "/%2e", "/%2E/"]
NO_PLACE = [  # Destination (None: no header), status, words of the reason
    (None, 400, "Destination"),
    ("", 400, "Destination"),
    ("x.txt", 400, "Destination"),
    ("{url}/", 403, "server root"),
    ("{url}", 403, "server root"),
    ("/", 403, "server root"),
    ("{url}/{mount}", 403, "mount"),
    ("{url}/{mount}/", 403, "mount"),
    ("http://elsewhere.example/{mount}/x.txt", 502, "host"),
    ("{url}/{mount}/Victim3/a%ffb.txt", 400, "UTF-8"),
    ("{url}/{mount}/Victim3/a%01b.txt", 400, "control"),
    ("{url}/{mount}/Victim3/" + "n" * 300, 400, "255"),
]


def test_a_dot_segment_in_the_destination_is_refused(emulator, mount):
    gw, name = mount
    for method in ("COPY", "MOVE"):
        for tail in DOT_TAILS:
            dest = f"{gw.url}/{name}/Victim3{tail}"
            answer = send(gw, method, f"/{name}/Victim3/keep1.txt", dest)
            assert answer.status_code == 400, (method, dest, answer.text)
            assert "segment" in answer.text
            assert_victim_intact(emulator, gw, name)


def test_a_destination_that_holds_the_source_is_refused(emulator, mount):
    gw, name = mount
    for method in ("COPY", "MOVE"):
        # Overwrite: T would remove the folder first, and the source with it.
        answer = send(gw, method, f"/{name}/Victim3/keep1.txt", f"{gw.url}/{name}/Victim3")
        assert answer.status_code == 403, (method, answer.text)
        assert "contains" in answer.text
        assert_victim_intact(emulator, gw, name)


def test_a_destination_that_is_no_place_gets_a_clear_4xx(emulator, mount):
    gw, name = mount
    for method in ("COPY", "MOVE"):
        for destination, status, reason in NO_PLACE:
            dest = None if destination is None else destination.format(url=gw.url, mount=name)
            answer = send(gw, method, f"/{name}/Victim3/keep1.txt", dest)
            assert answer.status_code == status, (method, dest, answer.text)
            assert reason in answer.text, (method, dest, answer.text)
            assert "Traceback" not in answer.text and "Error(" not in answer.text
            assert_victim_intact(emulator, gw, name)


def test_an_if_header_naming_a_dot_path_is_refused(emulator, mount):
    gw, name = mount
    answer = requests.request(
        "DELETE",
        f"{gw.url}/{name}/Victim3/keep2.txt",
        auth=gw.auth,
        headers={"If": f'<{gw.url}/{name}/Victim3/./keep2.txt> (["x"]) (Not ["x"])'},
        timeout=30,
    )
    assert answer.status_code == 400 and "segment" in answer.text
    assert_victim_intact(emulator, gw, name)


def test_a_plain_copy_and_move_still_work(emulator, mount):
    gw, name = mount
    copy = send(gw, "COPY", f"/{name}/Victim3/keep1.txt", f"{gw.url}/{name}/Victim3/copy.txt")
    assert copy.status_code == 201
    move = send(gw, "MOVE", f"/{name}/Victim3/copy.txt", f"/{name}/moved%20here.txt")
    assert move.status_code == 201
    live = drive_tree(emulator)
    assert "moved here.txt" in live and "Victim3/copy.txt" not in live
    assert_victim_intact(emulator, gw, name)


def test_the_tree_resolves_a_dot_segment_to_nothing(emulator, mount):
    gw, _ = mount
    tree = gw.mounts[0].tree
    assert tree.resolve("Victim3/keep1.txt").name == "keep1.txt"
    for path in ("Victim3/.", "./Victim3", "Victim3/./keep1.txt", "Victim3/keep1.txt/..", "."):
        assert tree.resolve(path) is None, path


def test_an_if_header_tagged_with_an_absolute_url_is_evaluated(emulator, mount):
    gw, name = mount
    url = f"{gw.url}/{name}/Victim3/keep1.txt"
    etag = requests.head(url, auth=gw.auth, timeout=30).headers["ETag"]
    # WsgiDAV compares a tag with the resource's path: a full URL never matched, and the
    # condition was ignored (the PUT replaced the file though its ETag was another).
    for tag in (url, f"/{name}/Victim3/keep1.txt", url.replace("keep1", "%6beep1")):
        stale = requests.put(
            url, data=b"new", auth=gw.auth, headers={"If": f'<{tag}> (["not-{etag[1:]}])'}
        )
        assert stale.status_code == 412, (tag, stale.status_code)
    assert_victim_intact(emulator, gw, name)
    fresh = requests.put(url, data=b"new", auth=gw.auth, headers={"If": f"<{url}> ([{etag}])"})
    assert fresh.status_code == 204
    assert requests.get(url, auth=gw.auth, timeout=30).content == b"new"


def test_a_lock_token_no_server_gives_is_refused(mount):
    gw, name = mount
    answer = requests.request(
        "UNLOCK",
        f"{gw.url}/{name}/Victim3/keep1.txt",
        auth=gw.auth,
        headers={"Lock-Token": "<opaquelocktoken:" + "x" * 300 + ">"},
        timeout=30,
    )
    assert answer.status_code == 400 and "lock token" in answer.text
