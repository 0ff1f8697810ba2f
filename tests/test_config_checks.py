"""Mistakes the config parser let through to a traceback or a broken server: a URL Python
cannot parse (``http://[::1``), a port out of range, a ``state_dir`` that cannot be created or
is a file. ``pikdav check`` and ``pikdav serve`` name the file, the key and the problem, and
exit with status 2, as for every other mistake."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.command import PIKDAV, check
from tests.test_config import HASH

BROKEN_URLS = ["http://[::1", "http://[::1]:99999", "https://host:notaport/"]


def config(tmp_path: Path, **changes) -> dict:
    data = {
        "server": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp_path / "state"),
        "accounts": {
            "main": {
                "username": "alice@example.com",
                "password": "pw",
                "user_api": "http://127.0.0.1:9",
                "drive_api": "http://127.0.0.1:9",
            }
        },
        "mounts": [{"name": "pikpak", "account": "main"}],
        "users": {"alice": {"password_hash": HASH}},
    }
    for key, value in changes.items():
        if key in ("user_api", "drive_api", "proxy", "token_store"):
            data["accounts"]["main"][key] = value
        elif key == "webhook":
            data["notify"] = {"webhook": value}
        else:
            data[key] = value
    return data


def assert_named_mistake(done: subprocess.CompletedProcess[str], key: str, problem: str):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "config.yaml" in done.stderr and key in done.stderr, done.stderr
    assert problem in done.stderr, done.stderr


@pytest.mark.parametrize("url", BROKEN_URLS)
@pytest.mark.parametrize(
    "key, where, problem",
    [
        ("user_api", "accounts.main.user_api", "URL"),
        ("drive_api", "accounts.main.drive_api", "URL"),
        ("webhook", "notify.webhook", "URL"),
        ("proxy", "accounts.main.proxy", "proxy URL"),
    ],
)
def test_a_url_python_cannot_parse_is_a_named_mistake(tmp_path, url, key, where, problem):
    done = check(tmp_path, config(tmp_path, **{key: url}))
    assert_named_mistake(done, where, problem)


@pytest.mark.parametrize("url", ["redis://[::1", "redis://[::1]:99999/0", "redis://h:port/0"])
@pytest.mark.parametrize("key", ["redis", "token_store"])
def test_a_redis_url_python_cannot_parse_is_a_named_mistake(tmp_path, url, key):
    done = check(tmp_path, config(tmp_path, **{key: url}))
    assert_named_mistake(done, key, "redis://")


def test_a_state_dir_that_cannot_be_created_is_a_named_mistake(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for state_dir in ("/proc/pikdav-state", str(blocker / "state")):
        done = check(tmp_path, config(tmp_path, state_dir=state_dir))
        assert_named_mistake(done, "state_dir", "cannot be created")


def test_a_state_dir_that_is_a_file_is_a_named_mistake_for_check_and_serve(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = config(tmp_path, state_dir=str(blocker))
    assert_named_mistake(check(tmp_path, data), "state_dir", "not a folder")

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    serve = subprocess.run(
        [*PIKDAV, "serve", "-c", str(path)], capture_output=True, text=True, timeout=60
    )
    assert_named_mistake(serve, "state_dir", "not a folder")
    assert blocker.read_text() == "not a folder"


def test_a_state_dir_that_does_not_exist_yet_is_made(tmp_path):
    done = check(tmp_path, config(tmp_path, state_dir=str(tmp_path / "new" / "state")))
    assert "configuration is valid" in done.stdout, (done.stdout, done.stderr)
    assert (tmp_path / "new" / "state").is_dir()


def test_a_cache_dir_that_cannot_be_used_is_a_named_mistake(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for cache_dir, problem in ((blocker, "not a folder"), (blocker / "cache", "cannot be created")):
        data = config(tmp_path)
        data["cache"] = {"dir": str(cache_dir)}
        assert_named_mistake(check(tmp_path, data), "cache.dir", problem)
    assert blocker.read_text() == "not a folder"
