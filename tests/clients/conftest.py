from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.davclients import netrc_home


@pytest.fixture
def home(tmp_path) -> Path:
    """cadaver's HOME (and working directory), with the gateway's credentials in ``.netrc``."""
    return netrc_home(tmp_path / "home")
