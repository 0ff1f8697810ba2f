from __future__ import annotations

import compileall
import dataclasses
from pathlib import Path

import pytest

import pikdav
from pikdav.emulator import Emulator
from pikdav.pikpak import retry, session
from tests.support.gateway import start_gateway
from tests.support.pikpak_raw import RawSession
from tests.support.redis_server import redis_server


def pytest_configure(config):
    """Compile pikdav's modules once, before the tests start ``pikdav`` processes: with
    PYTHONDONTWRITEBYTECODE set (as on the development machines) no process keeps what it
    compiled, and each start compiled every module again (a third of a start's time). The
    cached files are checked against their sources, so an edit is never missed."""
    for package in (Path(pikdav.__file__).parent, Path(__file__).parent / "support"):
        compileall.compile_dir(package, quiet=1)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_shell(monkeypatch):
    """pikdav honours HTTPS_PROXY & co.; a developer's own must not come between a test and
    its loopback servers (a test that wants one sets it)."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def quick_retries(monkeypatch):
    """PikPak's API calls made after this keep their six attempts within 20 s, with a tenth
    of the wait between them (1.5 s instead of 15 s in all): for a test about what follows
    the last attempt, not about the backoff. Ask for it before the gateway or session."""
    quick = dataclasses.replace(retry.SESSION, backoff=0.05, backoff_max=0.8)
    monkeypatch.setattr(session, "SESSION", quick)


@pytest.fixture
def emulator(tmp_path):
    emu = Emulator("127.0.0.1", 0, state_dir=tmp_path / "emulator")
    emu.world.add_account("alice@example.com", "correct horse")
    with emu:
        yield emu


@pytest.fixture
def alice(emulator) -> RawSession:
    session = RawSession(emulator.base_url, "alice@example.com", "correct horse")
    assert session.signin().status_code == 200
    return session


@pytest.fixture
def make_gateway(emulator, tmp_path):
    """``make_gateway(**mount)`` starts a gateway on the emulator (stopped after the test)."""
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
def redis_url(tmp_path):
    """A real redis-server of the test's own, on a free port."""
    with redis_server(tmp_path) as url:
        yield url
