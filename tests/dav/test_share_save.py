"""PikPak's play limit on shared files, and ``save_to`` against it: a large shared file stops
near 45 % through the share's link; restored once into the account's drive, it plays whole —
also after a restart, without a second restore."""

from __future__ import annotations

import hashlib
import logging

import pytest
import requests

from tests.support.pikpak_raw import control
from tests.support.shares import (
    account,
    add_file,
    make_share,
    share_mount,
    start_share_gateway,
)

SIZE = 64 << 20
USER = "alice@example.com"


def restores(emulator) -> int:
    return emulator.world.stats.snapshot()["accounts"].get(USER, {}).get("share_restores", 0)


def expected_digest(emulator, file_id: str) -> str:
    acct = emulator.world.accounts[USER]
    blob = acct.nodes[file_id].blob
    digest = hashlib.sha256()
    for chunk in blob.iter_range(0, blob.size):
        digest.update(chunk)
    return digest.hexdigest()


def fetch(gw, path: str) -> tuple[int, str, int]:
    """(bytes received, their sha256, the announced length) of a GET; a cut stream ends it."""
    digest, got = hashlib.sha256(), 0
    with requests.get(gw.url + path, auth=gw.auth, stream=True, timeout=60) as resp:
        assert resp.status_code == 200, resp.text
        announced = int(resp.headers["Content-Length"])
        try:
            for chunk in resp.iter_content(1 << 20):
                digest.update(chunk)
                got += len(chunk)
        except requests.exceptions.RequestException:
            pass  # the gateway ends a stream the CDN gives up on short
    return got, digest.hexdigest(), announced


@pytest.fixture
def big_share(emulator):
    made = add_file(emulator, "Films/big.mkv", SIZE, seed=7)
    add_file(emulator, "Films/small.mkv", 1 << 20, seed=8)
    control(
        emulator.base_url, "config", {"share_play_limit": {"min_size": 32 << 20, "fraction": 0.45}}
    )
    share = make_share(emulator, "Films", pass_code="1111")
    return share | {"file_id": made["id"]}


def test_a_plain_share_mount_stops_near_45_percent_of_a_large_file(
    emulator, big_share, tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    mount = share_mount(emulator, "films", big_share["share_url"], pass_code="1111")
    gw = start_share_gateway(emulator, tmp_path / "gw", [mount | {"download": "proxy"}])
    try:
        got, _, announced = fetch(gw, "/films/Films/big.mkv")
    finally:
        gw.stop()
    assert announced == SIZE
    # What PikPak does to shared files: the share's link stops at the play limit.
    assert 0.40 * SIZE <= got <= 0.50 * SIZE, f"got {got / SIZE:.0%} of the file"
    assert restores(emulator) == 0


def test_save_to_serves_the_whole_file_from_one_restore_also_after_a_restart(
    emulator, big_share, tmp_path
):
    mount = share_mount(
        emulator, "films", big_share["share_url"], pass_code="1111", save_to="main"
    ) | {"download": "proxy"}
    accounts = {"main": account(emulator)}
    whole = expected_digest(emulator, big_share["file_id"])
    for run in range(2):  # the second gateway is a restart: it knows nothing in memory
        gw = start_share_gateway(emulator, tmp_path / f"gw{run}", [mount], accounts=accounts)
        try:
            for _ in range(2):
                got, digest, _ = fetch(gw, "/films/Films/big.mkv")
                assert (got, digest) == (SIZE, whole)
            # The listing stays the share's.
            listing = requests.request(
                "PROPFIND", gw.url + "/films/Films", headers={"Depth": "1"}, auth=gw.auth
            )
            assert "big.mkv" in listing.text and "small.mkv" in listing.text
        finally:
            gw.stop()
        assert restores(emulator) == 1
    tree = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    saved = [f["path"] for f in tree if f["path"].startswith("pikdav shares/films/")]
    assert saved == ["pikdav shares/films/big.mkv"]


def test_a_restore_without_room_is_507(emulator, big_share, tmp_path):
    control(emulator.base_url, "accounts", {"username": "tight", "password": "pw", "quota": 1})
    tight = account(emulator) | {"username": "tight", "password": "pw"}
    mount = share_mount(emulator, "films", big_share["share_url"], pass_code="1111") | {
        "save_to": "tight",
        "download": "proxy",
    }
    gw = start_share_gateway(emulator, tmp_path / "gw", [mount], accounts={"tight": tight})
    try:
        resp = requests.get(gw.url + "/films/Films/small.mkv", auth=gw.auth)
    finally:
        gw.stop()
    assert resp.status_code == 507 and "full" in resp.text
    assert (
        emulator.world.stats.snapshot()["accounts"].get("tight", {}).get("share_restores", 0) == 0
    )


def test_a_restore_that_fails_otherwise_serves_the_shares_link_with_a_warning(
    emulator, big_share, tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    control(emulator.base_url, "faults", {"path": "^/drive/v1/share/restore$", "status": 403})
    mount = share_mount(emulator, "films", big_share["share_url"], pass_code="1111") | {
        "save_to": "main",
        "download": "proxy",
    }
    gw = start_share_gateway(
        emulator, tmp_path / "gw", [mount], accounts={"main": account(emulator)}
    )
    try:
        got = requests.get(gw.url + "/films/Films/small.mkv", auth=gw.auth)
    finally:
        gw.stop()
    assert got.status_code == 200 and len(got.content) == 1 << 20  # below the play limit
    warned = [r.getMessage() for r in caplog.records if "cannot save" in r.getMessage()]
    assert len(warned) == 1 and "serving the share's own link" in warned[0], warned
    assert restores(emulator) == 0


def test_clients_opening_a_file_at_once_cause_one_restore(emulator, tmp_path):
    """20 cycles: each time six clients open a file not saved yet, at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    cycles = 20
    for i in range(cycles):
        add_file(emulator, f"Many/f{i:02d}.bin", 65_536, seed=100 + i)
    share = make_share(emulator, "Many")
    mount = share_mount(emulator, "many", share["share_url"], save_to="main", download="proxy")
    gw = start_share_gateway(
        emulator, tmp_path / "gw", [mount], accounts={"main": account(emulator)}
    )
    try:
        with ThreadPoolExecutor(6) as pool:
            for i in range(cycles):
                url = f"{gw.url}/many/Many/f{i:02d}.bin"
                bodies = list(
                    pool.map(lambda _, u=url: requests.get(u, auth=gw.auth).content, range(6))
                )
                assert all(len(b) == 65_536 for b in bodies) and len(set(bodies)) == 1
                assert restores(emulator) == i + 1
    finally:
        gw.stop()
