"""Background uploads are durable when the PUT is answered: the body, its folder entry and
its journal are on disk before the 201, and a gateway killed right after it finishes the
upload once restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from pikdav.dav.auth import hash_password
from tests.support.pikpak_raw import control

USER = "alice@example.com"
PIKDAV = [sys.executable, "-m", "pikdav.cli"]


def drive(emulator) -> dict[str, dict]:
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    return {r["path"]: r for r in rows if not r["trashed"]}


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_the_body_then_its_folder_then_the_journal_are_fsynced_before_the_201(
    emulator, make_gateway, tmp_path, monkeypatch
):
    gw = make_gateway(download="proxy", background_uploads=True)
    uploads = Path(gw.config.state_dir) / "uploads" / "pikpak"
    synced: list[tuple[str, int]] = []  # (path relative to the uploads folder, size)
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path == uploads or path.parent == uploads:
            synced.append((os.path.relpath(path, uploads), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    body = os.urandom(3 << 20)
    answer = requests.put(gw.url + "/pikpak/film.mkv", data=body, auth=gw.auth, timeout=60)
    before_the_answer = list(synced)
    assert answer.status_code == 201
    kinds = [
        "body" if name.startswith("pikdav-put-") else "journal" if ".journal" in name else name
        for name, _ in before_the_answer
    ]
    assert kinds == ["body", ".", "journal", "."], before_the_answer
    assert before_the_answer[0][1] == len(body)  # every byte of it


def write_config(tmp_path: Path, emulator) -> Path:
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp_path / "state"),
        "accounts": {
            "main": {
                "username": USER,
                "password": "correct horse",
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
            }
        },
        "mounts": [{"name": "pikpak", "download": "proxy", "background_uploads": True}],
        "users": {"alice": {"password_hash": hash_password("wonderland")}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve(config: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [*PIKDAV, "serve", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=open(config.parent / "serve.log", "a"),
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return proc, url


@pytest.mark.parametrize("cycles", [20])
def test_a_gateway_killed_right_after_the_201_finishes_every_upload(emulator, tmp_path, cycles):
    config = write_config(tmp_path, emulator)
    # PikPak's object store is slow: no upload is done when its PUT is answered.
    control(emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "delay": 2})
    sent: dict[str, bytes] = {}
    for cycle in range(cycles):
        proc, url = serve(config)
        try:
            name = f"clip-{cycle:02d}.bin"
            sent[name] = os.urandom(100_000 + cycle * 37_000)
            answer = requests.put(
                f"{url}pikpak/{name}", data=sent[name], auth=("alice", "wonderland"), timeout=60
            )
            proc.send_signal(signal.SIGKILL)  # the moment the client is told "stored"
            assert answer.status_code == 201
        finally:
            proc.kill()
            proc.wait(timeout=20)
    control(emulator.base_url, "faults", method="DELETE")
    proc, url = serve(config)
    try:
        wait_until(
            lambda: all(
                drive(emulator).get(n, {}).get("phase") == "PHASE_TYPE_COMPLETE" for n in sent
            )
        )
        wait_until(lambda: list((tmp_path / "state" / "uploads" / "pikpak").iterdir()) == [])
        for name, data in sent.items():
            got = requests.get(f"{url}pikpak/{name}", auth=("alice", "wonderland"), timeout=60)
            assert got.content == data, name
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    acct = emulator.world.accounts[USER]
    stored = {
        n.name: n
        for n in acct.nodes.values()
        if not emulator.world.is_trashed(acct, n) and not n.name.startswith(".pikdav-")
    }  # (uploads cut by a kill leave PikPak pending files under hidden names)
    assert set(stored) == set(sent)
    for name, data in sent.items():
        assert stored[name].blob.read_at(0, len(data)) == data  # byte-identical at PikPak
