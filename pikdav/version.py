"""What ``pikdav --version`` says: the release, and the commit it was built from.

A git checkout (an editable install) asks git, so the answer follows every new commit. A wheel
or an sdist built from a checkout carries the commit in the package's ``COMMIT`` file, written
by ``setup.py`` at build time; an installed wheel has no git to ask.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import __version__

_PACKAGE = Path(__file__).resolve().parent


def git_commit(root: Path) -> str | None:
    """``git describe`` of the checkout at ``root`` (a tag, or the commit's short hash, and
    ``-dirty`` with uncommitted changes); None when ``root`` is no checkout's top or git is
    missing."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():  # a file in a worktree, a folder in a clone
        return None
    try:
        described = subprocess.run(  # noqa: S603 (a fixed command, no input of anyone)
            [git, "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = described.stdout.strip()
    return text if described.returncode == 0 and text else None


def commit() -> str | None:
    """The commit this pikdav comes from, if known."""
    found = git_commit(_PACKAGE.parent)
    if found:
        return found
    try:
        return (_PACKAGE / "COMMIT").read_text().strip() or None
    except OSError:
        return None


def version_text() -> str:
    """``pikdav 0.1.0 (commit 2423225abcde)``, or without the commit when it is unknown."""
    found = commit()
    return f"pikdav {__version__}" + (f" (commit {found})" if found else "")
