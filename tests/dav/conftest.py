from __future__ import annotations

import pytest

from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER, start_gateway


@pytest.fixture
def make_gateway(emulator, tmp_path):
    started = []

    def make(**mount):
        gw = start_gateway(emulator, tmp_path / f"state{len(started)}", **mount)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway(download="proxy")


@pytest.fixture
def pikpak_user():
    return PIKPAK_USER, PIKPAK_PASSWORD
