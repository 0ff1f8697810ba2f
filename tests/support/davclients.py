"""Real WebDAV clients (cadaver, rclone's WebDAV backend) driven against a gateway, and the
drive contents they are tested on."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from pikdav.emulator import Emulator

from .gateway import DAV_PASSWORD, DAV_USER, PIKPAK_USER
from .pikpak_raw import control
from .rclone import obscure, rclone_binary, rclone_env
from .tools import run_tool, tool_env

CADAVER_TIMEOUT = 60


def put_files(emulator: Emulator, tree: dict[str, bytes]) -> None:
    """Put ``tree`` (path -> bytes) into alice's drive on the emulator, folders and all."""
    for path, data in tree.items():
        control(
            emulator.base_url,
            "files",
            {"username": PIKPAK_USER, "path": path, "content": base64.b64encode(data).decode()},
        )


def dirs_of(paths: Iterable[str]) -> set[str]:
    """Every folder the file ``paths`` lie in, parents included."""
    out = set()
    for path in paths:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def read_tree(root: Path) -> dict[str, bytes]:
    """The files below ``root``: relative path -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def installed(tool: str) -> str:
    """The path of ``tool``; the test fails (with how to install it) if it is missing."""
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed: apt-get install {tool}", pytrace=False)
    return found


# ---------------------------------------------------------------------------- cadaver
def cadaver_binary() -> str:
    return installed("cadaver")


def netrc_home(home: Path) -> Path:
    """A fresh HOME whose ``.netrc`` gives cadaver the gateway's credentials."""
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {DAV_USER}\npassword {DAV_PASSWORD}\n")
    netrc.chmod(0o600)
    return home


def cadaver(url: str, home: Path, *commands: str) -> str:
    """Run one cadaver session in ``home`` (also its cwd); return what it printed."""
    proc = run_tool(
        [cadaver_binary(), url],
        env=tool_env(HOME=str(home), LANG="C.UTF-8", LC_ALL="C.UTF-8"),
        cwd=home,
        input="\n".join([*commands, "quit", ""]).encode(),
        timeout=CADAVER_TIMEOUT,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, out
    # A login problem would show as a prompt for credentials or a 401 (as words: a lock
    # token or an ETag printed by cadaver may hold the digits "401").
    for sign in ("Username:", "Authentication required", "401 Unauthorized"):
        assert sign not in out, out
    return out


# ---------------------------------------------------------------------------- rclone (WebDAV)
class Rclone:
    """rclone with an on-the-fly ``:webdav:`` remote (vendor ``other``) on the gateway's
    ``/pikpak`` mount, in its own HOME, as a user would configure it."""

    def __init__(
        self,
        url: str,
        home: Path,
        *,
        timeout: float = 120,
        io_timeout: str = "30s",
        extra_flags: Sequence[str] = (),
    ) -> None:
        self.binary = rclone_binary()
        self.home = home
        self.timeout = timeout
        home.mkdir(parents=True, exist_ok=True)
        self.config = home / "rclone.conf"
        self.config.write_text("")
        self.env = rclone_env(home)
        self.flags = [
            "--config",
            str(self.config),
            "--webdav-url",
            f"{url}/pikpak",
            "--webdav-vendor",
            "other",
            "--webdav-user",
            DAV_USER,
            "--webdav-pass",
            obscure(DAV_PASSWORD, self.env),
            *extra_flags,
            # Errors must show, not be retried away.
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            "--contimeout",
            "10s",
            "--timeout",
            io_timeout,
        ]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_tool(
            [self.binary, *self.flags, *args],
            env=self.env,
            cwd=self.home,
            timeout=self.timeout,
            check=check,
        )

    def log(self, *args: str, check: bool = True) -> str:
        """Run with ``-v`` and return what rclone logged."""
        return self(*args, "-v", check=check).stderr.decode("utf-8", "replace")
