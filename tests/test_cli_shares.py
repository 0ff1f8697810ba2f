"""The command line on shares: ``pikdav check`` lists every share mount with its state, and
``pikdav shares check`` checks a list file without a server; a config of shares alone serves."""

from __future__ import annotations

import base64
import subprocess

import requests
import yaml

from pikdav.dav.auth import hash_password
from tests.support.command import PIKDAV
from tests.support.shares import add_file, make_share, set_share_status
from tests.support.web import free_port

HASH = hash_password("wonderland")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PIKDAV, *args], capture_output=True, text=True, timeout=60, check=False)


def shared(emulator):
    for name in ("a.txt", "b.txt"):
        add_file(emulator, f"Pub/{name}", content=base64.b64encode(b"x").decode())
    open_share = make_share(emulator, "Pub/a.txt", "Pub/b.txt", pass_code="zqwz")
    dead = make_share(emulator, "Pub")
    set_share_status(emulator, dead["share_id"], "EXPIRED")
    return open_share, dead


def test_check_lists_each_share_mount_with_status_root_count_and_pass_code(emulator, tmp_path):
    open_share, dead = shared(emulator)
    listed = tmp_path / "shares.txt"
    listed.write_text(
        f"Good = {open_share['share_url']} zqwz\nDead = {dead['share_url']}\nnonsense line\n"
    )
    where = {"user_api": emulator.base_url, "drive_api": emulator.base_url}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mounts": [
                    {"name": "good", "share": open_share["share_url"] + "?pwd=zqwz", **where},
                    {"name": "dead", "share": dead["share_url"], **where},
                    {"name": "many", "share_list": str(listed), **where},
                ],
                "users": {"alice": {"password_hash": HASH}},
            }
        )
    )
    out = run("check", "-c", str(config))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(
        line.startswith(f"share mount good ({open_share['share_id']}): OK, 2 items at the root,")
        and "pass code used" in line
        for line in lines
    ), out.stdout
    assert any(
        line.startswith("share mount dead")
        and "FAILED: EXPIRED: the share has expired" in line
        and "no pass code" in line
        for line in lines
    ), out.stdout
    assert any(
        "share list many" in line and "1 of 2 shares open, 1 bad line" in line for line in lines
    )
    assert "  line 3: expected 'name = link [pass code]'" in lines
    assert "zqwz" not in out.stdout + out.stderr  # the pass code is not shown


def test_shares_check_prints_each_shares_status_without_a_server(emulator, tmp_path):
    open_share, dead = shared(emulator)
    listed = tmp_path / "shares.yaml"
    listed.write_text(
        f"films:\n  Good: {open_share['share_url']}?pwd=zqwz\n  Dead: {dead['share_url']}\n"
        "music:\n  Broken: ftp://nowhere\n"
    )
    out = run(
        "shares", "check", str(listed), "--user-api", emulator.base_url,
        "--drive-api", emulator.base_url,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"{listed}: line 5: the link must be a share link" in out.stdout
    assert f"films/Good ({open_share['share_id']}): OK, 2 items at the root" in out.stdout
    assert "films/Dead" in out.stdout and "FAILED: EXPIRED" in out.stdout
    assert out.stdout.rstrip().endswith(
        "1 of 2 shares open; FAILED: 1 line of the list could not be read"
    )
    missing = run("shares", "check", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_shares_check_reaches_pikpak_as_the_configs_account_and_says_what_failed(
    emulator, tmp_path
):
    open_share, _ = shared(emulator)
    listed = tmp_path / "shares.txt"
    listed.write_text(f"Good = {open_share['share_url']} zqwz\nnonsense line\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "accounts": {
                    "main": {
                        "username": "alice@example.com",
                        "user_api": emulator.base_url,
                        "drive_api": emulator.base_url,
                    }
                },
                "mounts": [{"name": "pikpak"}],
                "users": {"alice": {"password_hash": HASH}},
            }
        )
    )
    out = run("shares", "check", "-c", str(config), str(listed))
    # Every share opens, but a line of the list could not be read: that is a failure, and
    # the output says so.
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"Good ({open_share['share_id']}): OK, 2 items at the root" in out.stdout
    assert f"{listed}: line 2: expected 'name = link [pass code]': skipped" in out.stdout
    assert out.stdout.rstrip().endswith(
        "1 of 1 share open; FAILED: 1 line of the list could not be read"
    )
    listed.write_text(f"Good = {open_share['share_url']} zqwz\n")
    fixed = run("shares", "check", "-c", str(config), str(listed))
    assert fixed.returncode == 0 and fixed.stdout.rstrip().endswith("1 of 1 share open")
    assert "FAILED" not in fixed.stdout


def test_check_says_failed_for_a_share_list_with_an_unreadable_line(emulator, tmp_path):
    open_share, _ = shared(emulator)
    listed = tmp_path / "shares.txt"
    listed.write_text(f"Good = {open_share['share_url']} zqwz\nnonsense line\n")
    where = {"user_api": emulator.base_url, "drive_api": emulator.base_url}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mounts": [{"name": "many", "share_list": str(listed), **where}],
                "users": {"alice": {"password_hash": HASH}},
            }
        )
    )
    out = run("check", "-c", str(config))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 of 1 share open, 1 bad line skipped (FAILED)" in out.stdout


def test_login_with_a_config_of_shares_alone_says_there_is_nothing_to_sign_in(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mounts": [{"name": "films", "share": "https://mypikpak.com/s/VNabc123def"}],
                "users": {"alice": {"password_hash": HASH}},
            }
        )
    )
    out = run("login", "-c", str(config), "--refresh-token", "x")
    assert out.returncode == 2 and "has no accounts (share mounts need no login)" in out.stderr


def test_serve_with_a_config_of_shares_alone(emulator, tmp_path):
    open_share, _ = shared(emulator)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"host": "127.0.0.1", "port": 0},
                "state_dir": str(tmp_path / "state"),
                "mounts": [
                    {
                        "name": "films",
                        "share": open_share["share_url"],
                        "pass_code": "zqwz",
                        "user_api": emulator.base_url,
                        "drive_api": emulator.base_url,
                    }
                ],
                "users": {"alice": {"password_hash": HASH}},
            }
        )
    )
    proc = subprocess.Popen(
        [*PIKDAV, "serve", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() else url
        got = requests.get(url + "films/a.txt", auth=("alice", "wonderland"), timeout=10)
        assert got.status_code == 200 and got.content == b"x"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_shares_check_says_when_pikpak_cannot_be_reached(tmp_path):
    port = free_port()  # nothing listens: connections are refused
    listed = tmp_path / "shares.txt"
    listed.write_text("One = https://mypikpak.com/s/VNabc123def\n")
    base = f"http://127.0.0.1:{port}"
    out = run("shares", "check", str(listed), "--user-api", base, "--drive-api", base)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "One (VNabc123def): FAILED: UNREADABLE: cannot reach PikPak" in out.stdout, out.stdout
