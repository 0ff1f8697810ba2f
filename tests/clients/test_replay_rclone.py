"""rclone's WebDAV backend as a client, replayed for the answers it checks: PROPFIND Depth 0
for one file's metadata, ranged GETs validated strictly, suffix ranges longer than the file,
ranges past the end of small files, for every size that matters (which a sync run does not
reach); and real rclone syncing a drive down and back up (500 files up and edited in
tests/clients/test_client_rclone_sync.py).

Written down from rclone's public history, not from pikdav's answers:
- metadata of one object is a PROPFIND with ``Depth: 0`` (rclone 3be3347e8); listings ask
  for displayname, getlastmodified, getcontentlength, resourcetype, getcontenttype and the
  ownCloud checksums and permissions (backend/webdav ``listAll``);
- GETs carry ``Depth: 0`` and a Range (the trace in rclone#6980); a ranged answer must be a
  206 whose Content-Range gives the asked start and end and the full size, with a matching
  Content-Length; a 200 is taken only when the range covers the whole file (rclone PR #9757,
  fixing #6980; 1003280bb);
- a suffix range longer than the file means the whole file (rclone cb41e42d0, #6310;
  RFC 9110 §14.1.2); a range starting past the end is 416 with ``bytes */size``
  (RFC 9110 §15.5.17; players do this on small files, nzbdav-dev/nzbdav#451).
"""

from __future__ import annotations

import random
import unicodedata

from tests.support.clientseq import RCLONE
from tests.support.davclients import Rclone, put_files, read_tree
from tests.support.replay import Answer, Step, body_is, header_is, replay, size_is

LIST = (
    '<?xml version="1.0"?>\n'
    '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
    'xmlns:nc="http://nextcloud.org/ns"><d:prop><d:displayname /><d:getlastmodified />'
    "<d:getcontentlength /><d:resourcetype /><d:getcontenttype /><oc:checksums />"
    "<oc:permissions /></d:prop></d:propfind>"
)
SIZES = [0, 1, 2, 100, 4095, 65536, 1_000_003]


def strict_range(data: bytes, start: int, end: int):
    """rclone's check of a ranged answer for bytes ``start``..``end`` (inclusive)."""
    size = len(data)
    last = min(end, size - 1)

    def check(answer: Answer, state: dict) -> None:
        if answer.status == 200:
            assert start == 0 and last == size - 1, "200 to a range that is not the whole file"
            assert answer.body == data
            return
        assert answer.header("Content-Range") == f"bytes {start}-{last}/{size}", answer.header(
            "Content-Range"
        )
        assert answer.header("Content-Length") == str(last - start + 1)
        assert answer.body == data[start : last + 1]

    return check


def ranged(header: str) -> dict[str, str]:
    return {"Depth": "0", "Range": header}


# fmt: off
def steps_for(name: str, data: bytes) -> list[Step]:
    size, path = len(data), f"/pikpak/rc/{name}"
    whole, gone = strict_range(data, 0, size - 1), header_is("Content-Range", f"bytes */{size}")
    steps = [
        Step("PROPFIND", path, 207, {"Depth": "0"}, LIST, checks=(size_is(path, size),)),
        Step("GET", path, 200, {"Depth": "0"}, checks=(body_is(data),)),
    ]
    if size == 0:
        # nothing to range over: the whole (empty) file, a 200 rclone accepts
        return [*steps, Step("GET", path, (200, 416), ranged("bytes=0-"))]
    for start, end in ((0, size - 1), (0, size // 2), (size // 3, size - 1), (size - 1, size + 10)):
        steps.append(Step("GET", path, (200, 206), ranged(f"bytes={start}-{end}"),
                          checks=(strict_range(data, start, end),)))
    return [
        *steps,
        # a suffix as long as the file, or longer: the whole file
        Step("GET", path, (200, 206), ranged(f"bytes=-{size + 1000}"), checks=(whole,)),
        Step("GET", path, (200, 206), ranged(f"bytes=-{size}"), checks=(whole,)),
        # starting at or past the end of the file
        Step("GET", path, 416, ranged(f"bytes={size}-{size + 4095}"), checks=(gone,)),
        Step("GET", path, 416, ranged(f"bytes={size + 1000}-"), checks=(gone,)),
    ]
# fmt: on


def test_rclone_metadata_and_strict_ranges_for_every_size(emulator, gateway):
    """The gateway's own answers (proxied; under a redirect the CDN answers the ranges)."""
    gw = gateway
    files = {f"f{size}.bin": random.Random(size).randbytes(size) for size in SIZES}
    put_files(emulator, {f"rc/{name}": data for name, data in files.items()})
    steps = [
        Step("PROPFIND", "/pikpak/rc/", 207, {"Depth": "1"}, LIST),
        Step("PROPFIND", "/pikpak/rc/missing.bin", 404, {"Depth": "0"}, LIST),
    ]
    for name, data in files.items():
        steps += steps_for(name, data)
    replay(gw.url, RCLONE, gw.auth, steps)


def test_real_rclone_syncs_down_then_up_with_names_in_both_normalisations(
    emulator, gateway, tmp_path
):
    """rclone itself, both ways: the drive (with a name Finder left in NFD) down to a local
    folder, local edits back up; every file ends up once, with its bytes, whatever spelling
    PikPak held it in."""
    nfd = unicodedata.normalize("NFD", "Café/crème brûlée.txt")
    drive = {
        nfd: b"from Finder\n",
        "Films/a.mkv": random.Random(1).randbytes(300_000),
        "notes.txt": b"notes\n",
    }
    put_files(emulator, drive)
    rclone = Rclone(gateway.url, tmp_path / "home")
    local = tmp_path / "local"
    rclone("sync", ":webdav:", str(local))
    down = read_tree(local)
    assert {unicodedata.normalize("NFC", p): d for p, d in down.items()} == {
        unicodedata.normalize("NFC", p): d for p, d in drive.items()
    }
    # local edits: one changed, one added, one deleted
    (local / "notes.txt").write_bytes(b"notes, edited\n")
    cafe = next(p for p in local.iterdir() if unicodedata.normalize("NFC", p.name) == "Café")
    (cafe / "tarte.txt").write_bytes(b"tarte\n")
    (local / "Films" / "a.mkv").unlink()
    rclone("sync", str(local), ":webdav:")
    check = rclone("check", str(local), ":webdav:", "--download", check=False)
    assert check.returncode == 0, check.stderr.decode()[-3000:]
    names = [
        unicodedata.normalize("NFC", n.name)
        for n in emulator.world.accounts["alice@example.com"].nodes.values()
        if not n.trashed
    ]
    assert names.count("Café") == 1 and names.count("tarte.txt") == 1, names
