"""Every call of an account to PikPak — sign-in, listing, upload, download — goes through its
proxy: a real HTTP CONNECT proxy or a real SOCKS5 server (microsocks) in front of the
emulator over TLS. The proxies leave from 127.0.0.5, the emulator listens on 127.0.0.3 and
counts calls by the address they came from, so a call that went around the proxy shows up
as one from 127.0.0.1."""

from __future__ import annotations

import os

import pytest
import requests

from pikdav.config import ConfigError, parse_config
from pikdav.dav.auth import hash_password
from pikdav.emulator import Emulator
from tests.support.command import check
from tests.support.connect_proxy import ConnectProxy
from tests.support.gateway import PIKPAK_PASSWORD, PIKPAK_USER, start_gateway
from tests.support.socks_proxy import socks_proxy
from tests.support.tlsca import make_test_ca

EMULATOR_IP = "127.0.0.3"
PROXY_EXIT = "127.0.0.5"  # where proxied calls come from
BODY = os.urandom(300_000)  # new content: PikPak has to receive it through the object store


@pytest.fixture
def ca(tmp_path):
    return make_test_ca(tmp_path / "ca")


@pytest.fixture
def tls_emulator(tmp_path, ca):
    emu = Emulator(
        EMULATOR_IP, 0, tls_cert=ca.server_cert, tls_key=ca.server_key, state_dir=tmp_path / "emu"
    )
    emu.world.add_account(PIKPAK_USER, PIKPAK_PASSWORD)
    with emu:
        yield emu


@pytest.fixture
def connect_proxy(tls_emulator):
    with ConnectProxy(
        (EMULATOR_IP, tls_emulator.port), host_pattern=r"127\.0\.0\.3", source_address=PROXY_EXIT
    ) as proxy:
        yield proxy


def _use_the_mount(gw) -> None:
    """What a user does: upload a file, list the folder, read the file back (proxied)."""
    auth = gw.auth
    put = requests.put(f"{gw.url}/pikpak/film.bin", data=BODY, auth=auth, timeout=60)
    assert put.status_code in (201, 204), put.text
    listing = requests.request(
        "PROPFIND", f"{gw.url}/pikpak/", headers={"Depth": "1"}, auth=auth, timeout=60
    )
    assert listing.status_code == 207 and "film.bin" in listing.text
    gw.mounts[0].tree.forget_everything()  # the listing comes from PikPak again
    got = requests.get(f"{gw.url}/pikpak/film.bin", auth=auth, timeout=60)
    assert got.status_code == 200 and got.content == BODY


def _calls(emulator) -> dict[str, dict[str, int]]:
    return emulator.world.stats.snapshot()["calls_by_ip"]


def _gateway(emulator, tmp_path, ca, **account):
    options = {
        "user_api": emulator.base_url,
        "drive_api": emulator.base_url,
        "ca_cert": str(ca.ca_cert),
        **account,
    }
    return start_gateway(emulator, tmp_path / "gw", download="proxy", account_options=options)


def _assert_all_through_proxy(emulator) -> None:
    calls = _calls(emulator)
    assert set(calls) == {PROXY_EXIT}, (
        f"calls came from {calls} (the proxy leaves from {PROXY_EXIT})"
    )
    for area in ("user", "drive", "objstore", "cdn"):
        assert calls[PROXY_EXIT].get(area, 0) > 0, f"no {area} call went through the proxy: {calls}"


@pytest.mark.parametrize("kind", ["connect", "socks5-login", "socks5h"])
def test_every_call_of_the_account_goes_through_its_proxy(
    kind, tls_emulator, connect_proxy, ca, tmp_path
):
    if kind == "connect":
        gw = _gateway(tls_emulator, tmp_path, ca, proxy=connect_proxy.url)
        try:
            _use_the_mount(gw)
        finally:
            gw.stop()
        assert connect_proxy.stats()["tunnels"] > 0
    else:
        login = {"user": "pik", "password": "s3cret:pw"} if kind == "socks5-login" else {}
        scheme = "socks5" if kind == "socks5-login" else "socks5h"
        with socks_proxy(bind=PROXY_EXIT, **login) as socks:
            gw = _gateway(tls_emulator, tmp_path, ca, proxy=socks.url(scheme))
            try:
                _use_the_mount(gw)
            finally:
                gw.stop()
    _assert_all_through_proxy(tls_emulator)


def test_without_a_proxy_setting_the_environment_proxy_is_used(
    tls_emulator, connect_proxy, ca, tmp_path, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    gw = _gateway(tls_emulator, tmp_path, ca)
    try:
        _use_the_mount(gw)
    finally:
        gw.stop()
    _assert_all_through_proxy(tls_emulator)


@pytest.mark.parametrize("how", ["proxy: none", "NO_PROXY"])
def test_proxy_none_and_no_proxy_go_straight_to_pikpak(
    how, tls_emulator, connect_proxy, ca, tmp_path, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    account = {}
    if how == "NO_PROXY":
        monkeypatch.setenv("NO_PROXY", f"localhost,{EMULATOR_IP}")
    else:
        account = {"proxy": "none"}
    gw = _gateway(tls_emulator, tmp_path, ca, **account)
    try:
        _use_the_mount(gw)
    finally:
        gw.stop()
    assert set(_calls(tls_emulator)) == {"127.0.0.1"}
    assert connect_proxy.stats()["tunnels"] == 0


def test_check_says_which_proxy_and_that_pikpak_answered_through_it(tls_emulator, ca, tmp_path):
    with socks_proxy(bind=PROXY_EXIT, user="pik", password="hush-hush") as socks:
        config = {
            "server": {"host": "127.0.0.1", "port": 0},
            "state_dir": str(tmp_path / "state"),
            "accounts": {
                "main": {
                    "username": PIKPAK_USER,
                    "password": PIKPAK_PASSWORD,
                    "user_api": tls_emulator.base_url,
                    "drive_api": tls_emulator.base_url,
                    "ca_cert": str(ca.ca_cert),
                    "proxy": socks.url("socks5h"),
                }
            },
            "mounts": [{"name": "pikpak"}],
            "users": {"alice": {"password_hash": hash_password("wonderland")}},
        }
        done = check(tmp_path, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"proxy: socks5h://***@127.0.0.1:{socks.port}; PikPak" in done.stdout
    assert "answered through it" in done.stdout
    assert "hush-hush" not in done.stdout + done.stderr
    assert set(_calls(tls_emulator)) == {PROXY_EXIT}


@pytest.mark.parametrize(
    "proxy",
    [
        "ftp://user:hush@host:21",
        "socks5://user:hush@host:notaport",
        "http://user:hush@host:80/path",
    ],
)
def test_a_bad_proxy_is_a_config_error_that_does_not_repeat_the_password(proxy):
    data = {
        "accounts": {"main": {"username": "u", "proxy": proxy}},
        "mounts": [{"name": "m"}],
        "server": {"anonymous": True},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "c.yaml")
    assert "accounts.main.proxy" in str(caught.value)
    assert "hush" not in str(caught.value)
