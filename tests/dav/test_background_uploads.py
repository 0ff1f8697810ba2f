"""``background_uploads: true``: PUT answers once the body is on local disk; PikPak gets it
afterwards; meanwhile the file is listed and readable; a restart resumes what was waiting."""

from __future__ import annotations

import math
import os
import time

import pytest

from pikdav.pikpak.retry import RetryPolicy
from pikdav.vfs.pending import PendingUploads
from tests.support.gateway import dav, start_gateway
from tests.support.pikpak_raw import control, drive_tree
from tests.support.waits import wait_until

USER = "alice@example.com"


def settled(gw) -> bool:
    """Nothing waits and nothing goes up: an upload that could still put a file back is over."""
    pending = gw.mounts[0].pending
    return pending.idle() and not pending.sent()[0]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(
        PendingUploads, "retry", RetryPolicy(attempts=3, seconds=math.inf, backoff=0.05, jitter=0)
    )


def complete(emulator, path: str) -> bool:
    row = drive_tree(emulator).get(path)
    return row is not None and row["phase"] == "PHASE_TYPE_COMPLETE"


def test_put_is_answered_before_pikpak_has_the_file(emulator, tmp_path):
    gw = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    try:
        data = os.urandom(3 << 20)
        control(
            emulator.base_url,
            "faults",
            {"path": "pikpak-emulator", "method": "PUT", "delay": 2, "times": 1},
        )
        assert dav(gw, "PUT", "/pikpak/big.bin", data=data).status_code == 201
        assert not complete(emulator, "big.bin")  # PikPak does not have it yet...
        listing = dav(gw, "PROPFIND", "/pikpak/", headers={"Depth": "1"})
        assert "/pikpak/big.bin" in listing.text  # ...but the user sees it
        assert dav(gw, "GET", "/pikpak/big.bin").content == data
        part = dav(gw, "GET", "/pikpak/big.bin", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        wait_until(lambda: complete(emulator, "big.bin"))
        wait_until(gw.mounts[0].pending.idle)
        assert dav(gw, "GET", "/pikpak/big.bin").content == data
        assert list((tmp_path / "state" / "uploads" / "pikpak").iterdir()) == []
    finally:
        gw.stop()


def test_a_restart_resumes_waiting_uploads(emulator, tmp_path):
    control(
        emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
    )
    first = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    data = os.urandom(1 << 20)
    try:
        assert dav(first, "PUT", "/pikpak/keep.bin", data=data).status_code == 201
        wait_until(lambda: any(w.failed for w in first.mounts[0].pending._waiting.values()))
    finally:
        first.stop()
    assert "keep.bin" not in drive_tree(emulator)
    control(emulator.base_url, "faults", method="DELETE")  # the store works again
    second = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    try:
        wait_until(lambda: complete(emulator, "keep.bin"))
        wait_until(second.mounts[0].pending.idle)
        assert dav(second, "GET", "/pikpak/keep.bin").content == data
    finally:
        second.stop()


def test_a_final_failure_keeps_the_content_readable(emulator, tmp_path, caplog):
    control(
        emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
    )
    gw = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    try:
        data = os.urandom(200_000)
        assert dav(gw, "PUT", "/pikpak/stuck.bin", data=data).status_code == 201
        wait_until(lambda: "failed for good" in caplog.text)
        assert dav(gw, "GET", "/pikpak/stuck.bin").content == data
        kept = list((tmp_path / "state" / "uploads" / "pikpak").glob("*.data"))
        assert len(kept) == 1 and kept[0].read_bytes() == data
    finally:
        gw.stop()


def test_a_delete_while_the_file_goes_up_leaves_nothing_behind(emulator, tmp_path):
    """20 DELETEs, each at another moment of a background upload: before the worker took
    it, while PikPak makes the pending file, while the bytes go to the store (each PUT to
    the store takes 0.2 s here), at the rename, after it. Once the DELETE has answered,
    PikPak holds neither the file nor its hidden temporary, and nothing comes back later."""
    control(emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "delay": 0.2})
    gw = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    in_flight = 0
    try:
        dav(gw, "PROPFIND", "/pikpak/", headers={"Depth": "1"})  # signed in before the first
        for cycle in range(20):
            name = f"cycle{cycle}.bin"
            assert dav(gw, "PUT", f"/pikpak/{name}", data=os.urandom(5000)).status_code == 201
            if cycle % 4 == 3:  # surely while the bytes go up
                wait_until(lambda: any(p.startswith(".pikdav-put-") for p in drive_tree(emulator)))
            else:
                time.sleep(cycle * 0.015)
            in_flight += any(path.startswith(".pikdav-put-") for path in drive_tree(emulator))
            assert dav(gw, "DELETE", f"/pikpak/{name}").status_code == 204
            assert dav(gw, "GET", f"/pikpak/{name}").status_code == 404
            assert drive_tree(emulator) == {}, f"cycle {cycle}"
        control(emulator.base_url, "faults", method="DELETE")
        wait_until(lambda: settled(gw), "the uploader has nothing going on")
        assert drive_tree(emulator) == {}
        assert list((tmp_path / "state" / "uploads" / "pikpak").iterdir()) == []
        # The DELETE came while PikPak already held the pending file in several cycles.
        assert in_flight >= 5
    finally:
        gw.stop()


def test_delete_cancels_and_move_waits(emulator, tmp_path):
    control(
        emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
    )
    gw = start_gateway(emulator, tmp_path / "state", download="proxy", background_uploads=True)
    try:
        dav(gw, "PUT", "/pikpak/a.bin", data=b"a" * 1000)
        moved = dav(gw, "MOVE", "/pikpak/a.bin", headers={"Destination": gw.url + "/pikpak/b"})
        assert moved.status_code == 409
        assert dav(gw, "DELETE", "/pikpak/a.bin").status_code == 204
        assert dav(gw, "GET", "/pikpak/a.bin").status_code == 404
        assert list((tmp_path / "state" / "uploads" / "pikpak").iterdir()) == []
        control(emulator.base_url, "faults", method="DELETE")
        wait_until(lambda: settled(gw), "the uploader has nothing going on")
        assert drive_tree(emulator) == {}
    finally:
        gw.stop()
