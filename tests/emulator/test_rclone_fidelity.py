"""rclone's own pikpak backend, unchanged, against the emulator.

rclone was written against the real PikPak. It reaches the emulator only through
HTTPS_PROXY (a CONNECT proxy that tunnels every *.mypikpak.com host to the emulator's TLS
port) and ``--ca-cert``. When rclone fails here, the emulator is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
import requests

from pikdav.emulator import Emulator
from tests.support.connect_proxy import ConnectProxy
from tests.support.pikpak_raw import account_stats
from tests.support.rclone import RcloneRemote
from tests.support.tlsca import make_test_ca

USER = "rclone-user"
PASSWORD = "s3cret pass"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("rclone")
    ca = make_test_ca(base / "ca")
    emu = Emulator(
        "127.0.0.1", 0, tls_cert=ca.server_cert, tls_key=ca.server_key, state_dir=base / "state"
    )
    emu.world.add_account(USER, PASSWORD)
    emu.world.offline_seconds = 0.5
    with emu, ConnectProxy(("127.0.0.1", emu.port)) as proxy:
        remote = RcloneRemote(
            ca,
            proxy,
            USER,
            PASSWORD,
            base / "rclone",
            extra_options={"upload_cutoff": "10Mi", "chunk_size": "5Mi"},
        )
        yield emu, remote, ca, base


def tree(emu: Emulator) -> dict[str, dict]:
    resp = requests.get(
        f"{emu.base_url}/__emulator__/tree", params={"username": USER}, verify=False
    )
    return {row["path"]: row for row in resp.json()["files"]}


def write(path, size: int, seed: int) -> bytes:
    data = (
        os.urandom(0)
        if size == 0
        else hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    )
    data = data[:size]
    path.write_bytes(data)
    return data


def test_rclone_round_trip(stack):
    emu, remote, _ca, base = stack
    about = json.loads(remote.run("about", "--json", remote.root).stdout)
    assert about["total"] == 10 << 40 and about["used"] == 0

    remote.run("mkdir", remote.path("up/nested"))
    local = base / "local"
    local.mkdir()
    originals = {
        "small.bin": write(local / "small.bin", 1024, 1),
        "empty.bin": write(local / "empty.bin", 0, 2),
        "big.bin": write(local / "big.bin", 30 << 20, 3),
    }
    before = account_stats(emu, USER)
    remote.run("copy", str(local), remote.path("up"))
    after = account_stats(emu, USER)
    assert after["objstore_bytes"] - before.get("objstore_bytes", 0) == 1024 + (30 << 20)
    listed = {e["Path"]: e for e in remote.lsjson("", "-R")}
    assert listed["up/small.bin"]["Size"] == 1024
    assert listed["up/empty.bin"]["Size"] == 0
    assert listed["up/big.bin"]["Size"] == 30 << 20
    assert listed["up/nested"]["IsDir"] is True
    assert tree(emu)["up/big.bin"]["phase"] == "PHASE_TYPE_COMPLETE"

    down = base / "down"
    remote.run("copy", remote.path("up"), str(down))
    for name, data in originals.items():
        assert (down / name).read_bytes() == data, name

    remote.run("moveto", remote.path("up/small.bin"), remote.path("up/nested/moved.bin"))
    remote.run("copyto", remote.path("up/big.bin"), remote.path("up/nested/copy.bin"))
    remote.run("moveto", remote.path("up/nested/copy.bin"), remote.path("up/renamed.bin"))
    names = {e["Path"] for e in remote.lsjson("up", "-R")}
    assert names == {"nested", "nested/moved.bin", "big.bin", "empty.bin", "renamed.bin"}
    again = base / "again"
    remote.run("copyto", remote.path("up/renamed.bin"), str(again))
    assert again.read_bytes() == originals["big.bin"]

    remote.run("delete", remote.path("up/empty.bin"))
    assert "empty.bin" not in {e["Path"] for e in remote.lsjson("up")}
    remote.run("purge", remote.path("up/nested"))
    assert {e["Path"] for e in remote.lsjson("up")} == {"big.bin", "renamed.bin"}


def test_second_upload_of_known_content_is_instant(stack):
    emu, remote, _ca, base = stack
    src = base / "dup"
    src.mkdir()
    write(src / "one.bin", 3 << 20, 42)
    remote.run("copy", str(src), remote.path("dup1"))
    before = account_stats(emu, USER)
    remote.run("copy", str(src), remote.path("dup2"))
    after = account_stats(emu, USER)
    assert after["instant_uploads"] == before.get("instant_uploads", 0) + 1
    assert after["objstore_bytes"] == before["objstore_bytes"]
    assert {e["Path"] for e in remote.lsjson("dup2")} == {"one.bin"}


def test_overwrite_replaces_content(stack):
    _emu, remote, _ca, base = stack
    src = base / "over"
    src.mkdir()
    write(src / "f.txt", 100, 1)
    remote.run("copy", str(src), remote.path("over"))
    data = write(src / "f.txt", 200, 2)
    remote.run("copy", str(src), remote.path("over"))
    back = base / "over-back"
    remote.run("copy", remote.path("over"), str(back))
    assert (back / "f.txt").read_bytes() == data
    assert [e["Path"] for e in remote.lsjson("over")] == ["f.txt"]


def test_backend_addurl_creates_an_offline_task(stack):
    emu, remote, _ca, _base = stack
    remote.run("mkdir", remote.path("offline"))
    out = remote.run(
        "backend",
        "addurl",
        remote.path("offline"),
        "magnet:?xt=urn:btih:0123456789abcdef&dn=Sintel.mkv",
    )
    task = json.loads(out.stdout)
    assert task["type"] == "offline" and task["name"] == "Sintel.mkv"
    deadline = time.time() + 10
    while time.time() < deadline:
        names = {e["Path"] for e in remote.lsjson("offline")}
        if "Sintel.mkv" in names:
            break
        time.sleep(0.3)
    assert "Sintel.mkv" in names
    assert account_stats(emu, USER)["tasks_created"] == 1


def test_rclone_refreshes_and_recovers_from_a_rotated_refresh_token(stack):
    """Two rclone configs holding one refresh token, as when AList and rclone share a login.

    The first to refresh wins; the second's refresh is refused with ``invalid_grant``
    (4126), which rclone recognises and answers by signing in again."""
    emu, _remote, ca, base = stack
    emu.world.add_account("second", PASSWORD)
    emu.world.token_ttl = 12  # rclone refreshes 10 s ahead of the expiry it was told
    first = RcloneRemote(ca, _remote.proxy, "second", PASSWORD, base / "first")
    try:
        first.authorize()
    finally:
        emu.world.token_ttl = 7200
    twin = base / "twin"
    twin.mkdir()
    (twin / "rclone.conf").write_text(first.config_path.read_text())
    second = RcloneRemote(ca, _remote.proxy, "second", PASSWORD, base / "second-wd")
    second.config_path = twin / "rclone.conf"
    time.sleep(2.5)
    first.run("lsjson", first.root)
    counts = emu.world.stats.snapshot()["accounts"]["second"]
    assert counts["refresh"] == 1 and counts["refresh_rejected"] == 0
    second.run("lsjson", second.root)
    counts = emu.world.stats.snapshot()["accounts"]["second"]
    assert counts["refresh_rejected"] == 1
    assert counts["signin"] == 2  # the first login, then rclone's re-login


def test_rclone_housekeeping_commands(stack):
    emu, remote, _ca, base = stack
    src = base / "hk"
    src.mkdir()
    write(src / "keep.txt", 10, 9)
    remote.run("copy", str(src), remote.path("hk"))
    remote.run("mkdir", remote.path("hk/empty"))
    remote.run("rmdir", remote.path("hk/empty"))
    assert {e["Path"] for e in remote.lsjson("hk")} == {"keep.txt"}
    link = remote.run("link", remote.path("hk/keep.txt")).stdout.strip()
    assert link.startswith("https://mypikpak.com/s/")
    remote.run("delete", remote.path("hk"))
    trashed = [r for r in tree(emu).values() if r["trashed"]]
    assert trashed
    remote.run("cleanup", remote.root)
    assert not [r for r in tree(emu).values() if r["trashed"]]
    info = remote.run("config", "userinfo", remote.root).stdout
    assert USER in info
