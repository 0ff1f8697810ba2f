"""Windows Explorer (the WebClient service, "Microsoft-WebDAV-MiniRedir") replayed against a
real gateway: map a drive, browse, copy a file in, copy a file above 50 MB out, rename,
delete; and how it is told about a wrong password.

Written down from public documentation, not from pikdav's answers:
- mapping: an OPTIONS of the server root without credentials, a 401 with a Basic challenge,
  the OPTIONS again with them (``DAV`` must name class 2 and ``MS-Author-Via: DAV``), then
  PROPFINDs of the root and of the mapped folder (WsgiDAV docs/source/user_guide_access.rst;
  sabre.io/dav/clients/windows);
- a copy in: a 0-byte PUT, LOCK, the real PUT (or LOCK of the new name first, then the
  0-byte PUT under it), PROPPATCH of ``Win32CreationTime``,
  ``Win32LastAccessTime``, ``Win32LastModifiedTime`` and ``Win32FileAttributes`` (each must
  answer 200, or Explorer reports an error), UNLOCK (the comment WsgiDAV removed in dd3e53a;
  WsgiDAV's ``emulate_win32_lastmod`` hotfix; sabre.io/dav/clients/windows);
- a copy out: PROPFIND of the file for its size, then GET; the WebClient refuses files above
  ``FileSizeLimitInBytes`` (50,000,000 bytes by default) itself, so the server must give the
  full length it listed (Microsoft KB 2668751);
- rename: MOVE with ``Overwrite: F``; delete: DELETE.
"""

from __future__ import annotations

import hashlib

from tests.support.clientseq import EXPLORER, explorer_copy_in
from tests.support.pikpak_raw import control
from tests.support.replay import (
    Answer,
    Step,
    body_is,
    header_has,
    listed,
    plain_error,
    prop_is,
    replay,
    size_is,
)

BIG = 60_000_000  # above the WebClient's default FileSizeLimitInBytes (50,000,000)
D0, D1 = {"Depth": "0"}, {"Depth": "1"}


def test_explorer_maps_browses_copies_in_and_out_renames_and_deletes(emulator, gateway):
    made = control(
        emulator.base_url,
        "files",
        {"username": "alice@example.com", "path": "Docs/big.iso", "size": BIG, "seed": 3},
    )
    big_sha = hashlib.sha256(emulator.world.blobs.get(made["hash"]).read_at(0, BIG)).hexdigest()
    report = b"quarterly report\r\n" * 4000

    def whole_big_file(answer: Answer, state: dict) -> None:
        assert answer.header("Content-Length") == str(BIG)
        assert hashlib.sha256(answer.body).hexdigest() == big_sha, "not the file's bytes"

    m, d, r = "/pikpak", "/pikpak/Docs/", "/pikpak/Docs/report.txt"
    # fmt: off
    steps = [
        # map the drive: \\127.0.0.1@port\pikpak (the first OPTIONS without credentials)
        Step("OPTIONS", "/", 401, auth=False,
             checks=(header_has("WWW-Authenticate", "Basic"), plain_error)),
        Step("OPTIONS", "/", 200,
             checks=(header_has("DAV", "1", "2"), header_has("MS-Author-Via", "DAV"))),
        Step("PROPFIND", "/", 207, D0),
        Step("PROPFIND", m, 207, D0, checks=(prop_is(m + "/", "quota-available-bytes", None),)),
        Step("PROPFIND", m, 207, D1, checks=(listed(d),)),
        Step("PROPFIND", m + "/desktop.ini", 404, D0),
        # browse
        Step("PROPFIND", d, 207, D1, checks=(size_is(d + "big.iso", BIG),)),
        Step("PROPFIND", d + "Thumbs.db", 404, D0),
        # copy two files in (the two orders Explorer is seen to use)
        Step("PROPFIND", r, 404, D0),
        *explorer_copy_in(r, report),
        *explorer_copy_in(d + "locked first.txt", report[:999], lock_first=True),
        Step("GET", d + "locked first.txt", 200, checks=(body_is(report[:999]),)),
        Step("PROPFIND", d, 207, D1,
             checks=(listed(d, d + "big.iso", r, d + "locked%20first.txt", exactly=True),)),
        Step("PROPFIND", r, 207, D0, checks=(size_is(r, len(report)),)),
        # copy the big file out
        Step("PROPFIND", d + "big.iso", 207, D0, checks=(size_is(d + "big.iso", BIG),)),
        Step("GET", d + "big.iso", 200, checks=(whole_big_file,)),
        # rename
        Step("MOVE", r, 201, {"Destination": "{url}" + d + "report%202026.txt", "Overwrite": "F"}),
        Step("GET", d + "report 2026.txt", 200, checks=(body_is(report),)),
        # delete
        Step("DELETE", d + "report 2026.txt", 204),
        Step("PROPFIND", d + "report 2026.txt", 404, D0),
    ]
    # fmt: on
    replay(gateway.url, EXPLORER, gateway.auth, steps)


def test_explorer_is_asked_again_for_a_wrong_password_and_refused_a_read_only_write(
    emulator, make_gateway
):
    """401 (with a Basic challenge) makes Explorer ask for the password again; 403 tells it
    the user may not do this, and it shows "access denied" without asking."""
    from pikdav.dav.auth import hash_password

    gw = make_gateway(
        download="proxy",
        users={
            "alice": {"password_hash": hash_password("wonderland"), "mounts": ["*"]},
            "guest": {"password_hash": hash_password("guest"), "mounts": ["*"], "read_only": True},
        },
    )
    steps = [
        Step(
            "PROPFIND",
            "/pikpak",
            401,
            {"Depth": "0"},
            checks=(header_has("WWW-Authenticate", "Basic"), plain_error),
        ),
    ]
    replay(gw.url, EXPLORER, ("alice", "wrong"), steps)
    steps = [
        Step("PROPFIND", "/pikpak", 207, {"Depth": "0"}),
        Step("PUT", "/pikpak/new.txt", 403, {}, b"", checks=(plain_error,)),
    ]
    replay(gw.url, EXPLORER, ("guest", "guest"), steps)
