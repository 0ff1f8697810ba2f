"""`pikdav offline add|list|delete|retry` against the emulator, as a user runs it."""

from __future__ import annotations

import subprocess

import yaml

from tests.support.command import PIKDAV, write_config
from tests.support.pikpak_raw import control, drive_tree
from tests.support.waits import wait_until

MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=sintel.mkv"
BROKEN = "https://example.org/fail/broken.iso"


def offline(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PIKDAV, "offline", *args, "-c", config], capture_output=True, text=True, timeout=60
    )


def listed(config: str) -> dict[str, list[str]]:
    proc = offline(config, "list")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    return {row[3]: row for row in rows}


def wait_for_phase(config: str, name: str, phase: str) -> list[str]:
    return wait_until(
        lambda: (row := listed(config).get(name)) and row[1] == phase and row,
        f"{name} {phase}",
        20,
        every=0.2,  # each look is a `pikdav offline list` process
    )


def test_add_list_retry_and_delete_offline_downloads(emulator, tmp_path):
    control(emulator.base_url, "config", {"offline_seconds": 0.3})
    config = write_config(tmp_path, emulator)
    data = yaml.safe_load(open(config))
    data["mounts"][0]["offline_folder"] = "Offline"
    with open(config, "w") as out:
        yaml.safe_dump(data, out)

    added = offline(config, "add", MAGNET, BROKEN)
    assert added.returncode == 0, added.stderr
    ids = [line.split("\t")[0] for line in added.stdout.splitlines()]
    assert len(ids) == 2 and all(ids)
    assert "sintel.mkv" in added.stdout and "broken.iso" in added.stdout

    done = wait_for_phase(config, "sintel.mkv", "complete")
    assert done[0] == ids[0] and done[2] == "100%"
    assert (
        drive_tree(emulator, trashed=None)["Offline/sintel.mkv"]["kind"] == "drive#file"
    )  # the mount's folder
    assert wait_for_phase(config, "broken.iso", "error")[0] == ids[1]

    retried = offline(config, "retry", ids[1])
    assert retried.returncode == 0 and f"started {ids[1]} again" in retried.stdout
    wait_for_phase(config, "broken.iso", "complete")

    # --folder: another folder, made when missing.
    other = offline(
        config,
        "add",
        "ed2k://|file|notes.txt|12|0123456789ABCDEF0123456789ABCDEF|/",
        "--folder",
        "From CLI/ed2k",
    )
    assert other.returncode == 0, other.stderr
    wait_for_phase(config, "notes.txt", "complete")
    assert "From CLI/ed2k/notes.txt" in drive_tree(emulator, trashed=None)

    gone = offline(config, "delete", ids[0])
    assert gone.returncode == 0 and "deleted 1 task" in gone.stdout
    assert "sintel.mkv" not in listed(config)
    assert "Offline/sintel.mkv" in drive_tree(emulator, trashed=None)  # the file stays


def test_a_refused_link_says_why_and_starts_nothing(emulator, tmp_path):
    config = write_config(tmp_path, emulator)
    control(emulator.base_url, "config", {"task_daily_limit": 0})
    proc = offline(config, "add", MAGNET)
    assert proc.returncode == 1
    assert "daily limit of cloud downloads" in proc.stderr and "Traceback" not in proc.stderr
    control(emulator.base_url, "config", {"task_daily_limit": 100})
    bad = offline(config, "add", "gopher://example.org/x")
    assert bad.returncode == 1 and "PikPak refused the request" in bad.stderr
    assert listed(config) == {}
    unknown = offline(config, "list", "--mount", "nope")
    assert unknown.returncode == 2 and "no mount is named 'nope'" in unknown.stderr


def test_deleting_an_unknown_task_id_says_it_does_not_exist(emulator, tmp_path):
    config = write_config(tmp_path, emulator)
    added = offline(config, "add", MAGNET)
    assert added.returncode == 0, added.stderr
    task_id = added.stdout.split("\t")[0]
    unknown = "VT" + "0" * 24

    proc = offline(config, "delete", unknown)
    assert proc.returncode == 1
    assert f"no offline task has the id {unknown}" in proc.stderr
    assert "deleted" not in proc.stdout
    assert task_id in [row[0] for row in listed(config).values()]

    # One known, one unknown: the known one goes, the unknown one is named.
    both = offline(config, "delete", task_id, unknown)
    assert both.returncode == 1 and "deleted 1 task (their files stay)" in both.stdout
    assert f"no offline task has the id {unknown}" in both.stderr
    assert listed(config) == {}
