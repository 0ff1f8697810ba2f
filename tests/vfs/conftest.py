from __future__ import annotations

import pytest

from pikdav.pikpak import http
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from pikdav.vfs.mount import Mount
from pikdav.vfs.parts import Reading, Writing
from pikdav.vfs.source import DriveSource

USER, PASSWORD = "alice@example.com", "correct horse"


@pytest.fixture
def session(emulator) -> Session:
    return Session(
        Credentials(USER, PASSWORD),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )


@pytest.fixture
def make_mount(session):
    """``make_mount(**options)``: a vfs mount over alice's drive on the emulator, writable
    (``writing=Writing()`` unless the options say otherwise)."""

    def make(**options) -> Mount:
        options.setdefault("listing_ttl", 60.0)
        options.setdefault("writing", Writing())
        return Mount(
            "pikpak",
            DriveSource(Drive(session)),
            reading=Reading(http.cdn_session(session.connection)),
            **options,
        )

    return make
