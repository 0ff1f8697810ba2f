"""Background uploads are durable when the PUT is answered: the body, its folder entry and
its journal are on disk before the 201, and a gateway killed right after it finishes the
upload once restarted."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from pikdav.dav.auth import hash_password
from tests.support.command import start
from tests.support.pikpak_raw import control
from tests.support.shares import add_file

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


def hidden(emulator) -> list[str]:
    """The gateway's temporaries on the drive, pending, complete or trashed alike."""
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    return sorted(r["path"] for r in rows if r["path"].rpartition("/")[2].startswith(".pikdav-"))


def two_mounts(tmp_path: Path, emulator, state: str = "state", **top) -> Path:
    """``sync`` answers a PUT once PikPak has the file; ``later`` once it is on local disk."""
    config = yaml.safe_load(write_config(tmp_path, emulator).read_text())
    config["state_dir"] = str(tmp_path / state)
    config["mounts"] = [
        {"name": "sync", "download": "proxy"},
        {"name": "later", "download": "proxy", "background_uploads": True},
    ]
    path = tmp_path / f"{state}.yaml"
    path.write_text(yaml.safe_dump({**config, **top}))
    return path


def put_in_thread(url: str, answers: list[int]) -> threading.Thread:
    """A sync PUT going on beside the test; its status goes to ``answers`` (0: cut)."""

    def put() -> None:
        try:
            got = requests.put(url, data=os.urandom(150_000), auth=AUTH, timeout=60)
            answers.append(got.status_code)
        except requests.RequestException:
            answers.append(0)  # the stop closed the connection

    thread = threading.Thread(target=put)
    thread.start()
    return thread


def in_flight(emulator, *names: str) -> bool:
    """Whether PikPak holds a temporary for each of ``names`` (or name beginnings)."""
    held = [p.split("-", 3)[-1] for p in hidden(emulator)]  # .pikdav-put-<hex>-NAME
    return all(any(name.startswith(n) for name in held) for n in names)


SLOW_STORE = {"path": "pikpak-emulator", "method": "PUT", "delay": 30}
AUTH = ("alice", "wonderland")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stops_during_uploads_leave_no_temporary_on_pikpak(emulator, tmp_path, stop):
    """8 stops, each while a sync PUT and a background upload are going up to a slow store;
    then one start: within a minute the drive holds no ``.pikdav-*`` item, and every
    background upload that was answered 201 is there, whole. SIGTERM: the stop deletes what
    it cut; SIGKILL: the next start deletes what its records name."""
    config = two_mounts(tmp_path, emulator)
    acknowledged: dict[str, bytes] = {}
    sync_answers: list[int] = []
    for cycle in range(8):
        # PikPak's store takes 30 s per upload: both are in flight at the stop.
        control(emulator.base_url, "faults", SLOW_STORE)
        gw = start("serve", "-c", str(config), log_path=tmp_path / f"serve-{cycle}.log")
        try:
            body = os.urandom(200_000 + cycle * 1_000)
            answer = requests.put(f"{gw.url}later/bg-{cycle}.bin", data=body, auth=AUTH, timeout=60)
            assert answer.status_code == 201, answer.text
            acknowledged[f"bg-{cycle}.bin"] = body
            putting = put_in_thread(f"{gw.url}sync/sync-{cycle}.bin", sync_answers)
            # Background uploads go up one at a time: one of them is in flight.
            wait_until(lambda cycle=cycle: in_flight(emulator, f"sync-{cycle}.bin", "bg-"))
            code, _ = gw.stop(stop)
            assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
            putting.join(timeout=60)
        finally:
            gw.kill()
        control(emulator.base_url, "faults", method="DELETE")
    assert len(sync_answers) == 8 and 201 not in sync_answers  # the store took 30 s

    gw = start("serve", "-c", str(config), log_path=tmp_path / "serve-last.log")
    try:
        wait_until(
            lambda: (
                all(
                    drive(emulator).get(n, {}).get("phase") == "PHASE_TYPE_COMPLETE"
                    for n in acknowledged
                )
                and hidden(emulator) == []
            ),
            seconds=60,
        )
        for name, data in acknowledged.items():
            got = requests.get(f"{gw.url}later/{name}", auth=AUTH, timeout=60)
            assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest(), name
        assert not [n for n in drive(emulator) if n.startswith("sync-")]
    finally:
        gw.stop(signal.SIGTERM)
        gw.kill()
    said = (tmp_path / "serve-last.log").read_text()
    if stop == signal.SIGKILL:
        assert "removed the temporary upload '.pikdav-put-" in said
        assert "(left by an earlier run)" in said
    else:
        said = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
        assert "(cut by the stop)" in said  # when it can, a stop removes what it cut


def test_a_start_removes_only_its_own_leftovers_not_another_instance_s_upload(
    emulator, tmp_path, redis_url
):
    """Two instances on one Redis, each with its own state_dir. B is killed during an
    upload; while A's upload is going up, B starts again: B removes its own leftover, and
    A's temporary stays, so A's PUT completes, whole."""
    configs = {
        who: two_mounts(tmp_path, emulator, state=f"state-{who}", redis=redis_url)
        for who in ("a", "b")
    }
    control(emulator.base_url, "faults", SLOW_STORE)
    answers_b: list[int] = []
    b = start("serve", "-c", str(configs["b"]), log_path=tmp_path / "serve-b1.log")
    try:
        put_in_thread(f"{b.url}sync/from-b.bin", answers_b)
        wait_until(lambda: in_flight(emulator, "from-b.bin"))
        b.stop(signal.SIGKILL)
    finally:
        b.kill()

    a = start("serve", "-c", str(configs["a"]), log_path=tmp_path / "serve-a.log")
    try:
        body = os.urandom(180_000)
        answers_a: list[int] = []

        def put_from_a() -> None:
            got = requests.put(f"{a.url}sync/from-a.bin", data=body, auth=AUTH, timeout=90)
            answers_a.append(got.status_code)

        putting = threading.Thread(target=put_from_a)
        putting.start()
        wait_until(lambda: in_flight(emulator, "from-a.bin"))
        b = start("serve", "-c", str(configs["b"]), log_path=tmp_path / "serve-b2.log")
        try:
            wait_until(lambda: "(left by an earlier run)" in b.log())
            assert "-from-b.bin' from PikPak (left by an earlier run)" in b.log()
            assert in_flight(emulator, "from-a.bin")  # A's upload is still going up
            assert not in_flight(emulator, "from-b.bin")
            putting.join(timeout=90)
            assert answers_a == [201]
            got = requests.get(f"{b.url}sync/from-a.bin", auth=AUTH, timeout=60)
            assert hashlib.sha256(got.content).digest() == hashlib.sha256(body).digest()
            assert hidden(emulator) == []
            assert "-from-a.bin" not in b.log()  # B never touched the temporary of A
        finally:
            b.stop(signal.SIGTERM)
            b.kill()
    finally:
        a.stop(signal.SIGTERM)
        a.kill()
        control(emulator.base_url, "faults", method="DELETE")


def test_a_start_removes_what_its_records_name_and_never_a_user_s_file(
    emulator, make_gateway, tmp_path
):
    """Records left by a killed run: one names a temporary that was renamed into place just
    before the kill (a user's file now), one a pending temporary by its id, one a temporary
    whose id never came back (found in its folder). Another instance's temporary has no
    record here. The start removes exactly the two temporaries its records name."""

    def add(path: str, *, pending: bool = False) -> str:
        made = add_file(emulator, path, content=base64.b64encode(b"x" * 100).decode())
        if pending:  # an upload whose bytes never all came
            acct = emulator.world.accounts[USER]
            acct.nodes[made["id"]].phase = "PHASE_TYPE_PENDING"
        return made["id"]

    kept = add("Docs/report.pdf")
    by_id = add("Docs/.pikdav-put-0a0a0a0a-notes.txt", pending=True)
    add("Docs/.pikdav-put-0b0b0b0b-draft.txt", pending=True)
    add("Docs/.pikdav-put-0c0c0c0c-theirs.txt", pending=True)  # another instance's
    folder = drive(emulator)["Docs"]["id"]
    records = tmp_path / "state0" / "temporaries" / "pikpak"
    records.mkdir(parents=True)
    for key, name, file_id in (
        ("r1", ".pikdav-put-0d0d0d0d-report.pdf", kept),  # renamed into place meanwhile
        ("r2", ".pikdav-put-0a0a0a0a-notes.txt", by_id),
        ("r3", ".pikdav-put-0b0b0b0b-draft.txt", ""),
    ):
        record = {"folder_id": folder, "name": name, "file_id": file_id}
        (records / f"{key}.json").write_text(json.dumps(record))

    make_gateway(download="proxy")
    wait_until(lambda: list(records.iterdir()) == [])
    assert hidden(emulator) == ["Docs/.pikdav-put-0c0c0c0c-theirs.txt"]
    assert "Docs/report.pdf" in drive(emulator)
