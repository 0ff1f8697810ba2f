"""Running external tools (rclone, cadaver, litmus) from tests: a clean environment, a time
limit, and failures that show the command and the end of what it printed."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def tail(text: str | bytes | None, limit: int = 8000) -> str:
    """The last ``limit`` characters of a tool's output, decoded."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-limit:]


def tool_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any ``*_proxy`` variable, plus ``overrides``: a
    developer's proxy settings must not come between a tool and the loopback servers."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return env | overrides


def run_tool(
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    cwd: Path | str | None = None,
    input: str | bytes | None = None,
    check: bool = True,
    text: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` and capture its output; a timeout (and, with ``check``, a non-zero exit)
    raises AssertionError naming the command, with the tail of its stdout and stderr."""
    shown = " ".join(str(c) for c in cmd)
    name = Path(str(cmd[0])).name
    log.info("running %s", shown)
    try:
        proc = subprocess.run(
            list(cmd),
            env=env,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"{name} timed out after {timeout}s: {shown}\n"
            f"--- stdout (tail) ---\n{tail(e.stdout, 2000)}\n"
            f"--- stderr (tail) ---\n{tail(e.stderr)}"
        ) from None
    log.debug("%s exit %d; stderr tail:\n%s", name, proc.returncode, tail(proc.stderr, 2000))
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name} exited with {proc.returncode}: {shown}\n"
            f"--- stdout (tail) ---\n{tail(proc.stdout, 1000)}\n"
            f"--- stderr (tail) ---\n{tail(proc.stderr)}"
        )
    return proc
