from __future__ import annotations

import pytest

from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER


@pytest.fixture
def pikpak_user():
    return PIKPAK_USER, PIKPAK_PASSWORD
