"""PikPak by its real host names: the emulator over TLS for every ``*.mypikpak.com|net`` name,
reached through a CONNECT proxy (the account's proxy) that tunnels those names to it, and a
gateway whose account names no API URL (the hosts come from ``api_domain``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests

from pikdav.emulator import Emulator

from .connect_proxy import ConnectProxy
from .gateway import PIKPAK_PASSWORD, PIKPAK_USER, Gateway, start_gateway
from .tlsca import TestCA


def named_emulator(state_dir: Path, ca: TestCA) -> Emulator:
    """An emulator (not started yet) on 127.0.0.1 with TLS for PikPak's names, and alice."""
    emu = Emulator(
        "127.0.0.1", 0, tls_cert=ca.server_cert, tls_key=ca.server_key, state_dir=state_dir
    )
    emu.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
    return emu


def control(emulator: Emulator, ca: TestCA, name: str, body: dict[str, Any]) -> Any:
    resp = requests.post(
        f"{emulator.base_url}/__emulator__/{name}", json=body, verify=str(ca.ca_cert), timeout=30
    )
    assert resp.status_code < 300, resp.text
    return resp.json()


def add_files(emulator: Emulator, ca: TestCA, tree: dict[str, bytes]) -> None:
    for path, data in tree.items():
        content = base64.b64encode(data).decode()
        control(emulator, ca, "files", {"username": PIKPAK_USER, "path": path, "content": content})


def tunnel_to(emulator: Emulator, pattern: str | None = None) -> ConnectProxy:
    """A CONNECT proxy (not started) tunnelling PikPak's names (or ``pattern``) to it."""
    upstream = ("127.0.0.1", emulator.port)
    return ConnectProxy(upstream, pattern) if pattern else ConnectProxy(upstream)


def named_gateway(
    emulator: Emulator,
    ca: TestCA,
    state_dir: Path,
    proxy: ConnectProxy,
    download: str = "proxy",
    api_domain: str | None = None,
    **mount: Any,
) -> Gateway:
    account = {
        "user_api": None,  # left out: the hosts come from api_domain
        "drive_api": None,
        "ca_cert": str(ca.ca_cert),
        "proxy": proxy.url,
        "api_domain": api_domain,
    }
    return start_gateway(emulator, state_dir, download=download, account_options=account, **mount)
