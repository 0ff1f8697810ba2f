"""DAV users: who gets in, who is told no, and who is banned for guessing passwords.

A real WsgiDAV app (FilesystemProvider shares) with our domain controller and LoginThrottle,
served by cheroot on loopback and driven with requests.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from wsgidav.error_printer import ErrorPrinter
from wsgidav.fs_dav_provider import FilesystemProvider
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from pikdav.dav import auth
from pikdav.dav.auth import (
    AuthSettings,
    DavUser,
    FailedLogins,
    LoginFailures,
    LoginThrottle,
    PikdavDomainController,
    hash_password,
    verify_password,
)
from pikdav.dav.policy import parse_networks
from tests.support.netsource import session_from
from tests.support.web import propfind
from tests.support.wsgi_server import serving

ALICE = ("alice", "alice's long passphrase")
BOB = ("bob", "bob's passphrase")  # may see /files only
READER = ("reader", "read but never write")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serve(tmp_path: Path, settings: dict) -> Iterator[str]:
    failed = settings.pop("failed_logins", None)
    for share in ("root", "files", "private"):
        (tmp_path / share).mkdir(exist_ok=True)
    (tmp_path / "files" / "hello.txt").write_text("hello")
    (tmp_path / "private" / "diary.txt").write_text("secret")
    pikdav = {"auth": AuthSettings(**settings)} | ({"failed_logins": failed} if failed else {})
    app = WsgiDAVApp(
        {
            "provider_mapping": {
                "/": FilesystemProvider(str(tmp_path / "root")),
                "/files": FilesystemProvider(str(tmp_path / "files")),
                "/private": FilesystemProvider(str(tmp_path / "private")),
            },
            "http_authenticator": {
                "domain_controller": PikdavDomainController,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "middleware_stack": [ErrorPrinter, LoginThrottle, HTTPAuthenticator, RequestResolver],
            "pikdav": pikdav,
            "dir_browser": {"enable": False},
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(password) for name, password in (ALICE, BOB, READER)}


def settings_for(hashes: dict[str, str], **overrides) -> dict:
    settings = {
        "users": {
            "alice": DavUser("alice", hashes["alice"], ("*",), read_only=False),
            "bob": DavUser("bob", hashes["bob"], ("files",), read_only=False),
            "reader": DavUser("reader", hashes["reader"], ("*",), read_only=True),
        },
        "mounts": ("files", "private"),
        "anonymous": False,
        "login_failures": LoginFailures(max=5, window=300, ban=600),
    }
    if "trusted_proxies" in overrides:
        overrides["trusted_proxies"] = parse_networks(overrides["trusted_proxies"])
    settings.update(overrides)
    return settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def failed(clock) -> FailedLogins:
    return FailedLogins(5, 300, 600, clock=clock)


@pytest.fixture
def dav(tmp_path, hashes, failed) -> Iterator[str]:
    yield from serve(tmp_path, settings_for(hashes, failed_logins=failed))


# --- passwords -------------------------------------------------------------------------------


def test_password_hash_round_trip_and_salting():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse ", stored)
    assert hash_password("correct horse") != stored  # a fresh salt each time


def test_django_pbkdf2_hashes_are_accepted():
    digest = hashlib.pbkdf2_hmac("sha256", b"letmein", b"pepper01", 260000)
    stored = f"pbkdf2_sha256$260000$pepper01${base64.b64encode(digest).decode()}"
    assert verify_password("letmein", stored)
    assert not verify_password("letmeout", stored)


@pytest.mark.parametrize(
    "stored",
    ["", "plain text", "scrypt$16384$8$1$c2FsdA==", "scrypt$3$8$1$AAAAAAAAAAA=$AAAA", "md5$x"],
)
def test_malformed_hashes_never_verify(stored):
    assert not verify_password("anything", stored)


# --- logging in ------------------------------------------------------------------------------


def test_without_credentials_the_client_is_asked_for_basic_auth(dav):
    response = propfind(f"{dav}/files/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="pikdav"'


def test_a_user_with_the_right_password_lists_the_share(dav):
    response = propfind(f"{dav}/files/", auth=ALICE)
    assert response.status_code == 207
    assert "hello.txt" in response.text


def test_a_wrong_password_or_unknown_user_is_refused(dav):
    assert propfind(f"{dav}/files/", auth=("alice", "guess")).status_code == 401
    assert propfind(f"{dav}/files/", auth=("mallory", "guess")).status_code == 401


def test_a_user_sees_only_their_mounts_but_always_the_root(dav):
    assert propfind(f"{dav}/files/", auth=BOB).status_code == 207
    refused = propfind(f"{dav}/private/", auth=BOB)
    assert refused.status_code == 403
    assert "diary" not in refused.text
    assert requests.get(f"{dav}/private/diary.txt", auth=BOB, timeout=10).status_code == 403
    # Mount names are matched as WsgiDAV matches shares: ignoring case.
    assert propfind(f"{dav}/PRIVATE/", auth=BOB).status_code == 403
    assert propfind(f"{dav}/", auth=BOB).status_code == 207


def test_a_read_only_user_reads_but_cannot_write(dav, tmp_path):
    assert requests.get(f"{dav}/files/hello.txt", auth=READER, timeout=10).text == "hello"
    put = requests.put(f"{dav}/files/new.txt", data=b"x", auth=READER, timeout=10)
    assert put.status_code == 403
    assert not (tmp_path / "files" / "new.txt").exists()
    assert requests.delete(f"{dav}/files/hello.txt", auth=READER, timeout=10).status_code == 403
    assert (tmp_path / "files" / "hello.txt").exists()
    # A user with write rights can.
    assert requests.put(f"{dav}/files/new.txt", data=b"x", auth=ALICE, timeout=10).ok


def test_a_verified_password_is_not_hashed_again_on_every_request(dav, monkeypatch):
    calls = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        assert propfind(f"{dav}/files/", auth=ALICE).status_code == 207
    assert len(calls) == 1
    # A wrong password is always checked (and never cached as good).
    assert propfind(f"{dav}/files/", auth=("alice", "guess")).status_code == 401
    assert propfind(f"{dav}/files/", auth=("alice", "guess")).status_code == 401
    assert len(calls) == 3


# --- banning password guessers ---------------------------------------------------------------


def test_five_failures_ban_the_address_even_for_the_right_password(dav, clock):
    for _ in range(5):
        assert propfind(f"{dav}/files/", auth=("alice", "guess")).status_code == 401
    banned = propfind(f"{dav}/files/", auth=ALICE)
    assert banned.status_code == 429
    assert banned.headers["Retry-After"] == "600"
    assert "Too many failed logins" in banned.text
    # Another host is not affected.
    other = session_from("127.0.0.2")
    assert propfind(f"{dav}/files/", auth=ALICE, session=other).status_code == 207
    # The ban runs out.
    clock.now += 590
    assert propfind(f"{dav}/files/", auth=ALICE).headers["Retry-After"] == "10"
    clock.now += 10
    assert propfind(f"{dav}/files/", auth=ALICE).status_code == 207


def test_a_successful_login_clears_the_count_and_old_failures_expire(dav, clock):
    for _ in range(4):
        propfind(f"{dav}/files/", auth=("alice", "guess"))
    assert propfind(f"{dav}/files/", auth=ALICE).status_code == 207
    for _ in range(4):
        propfind(f"{dav}/files/", auth=("alice", "guess"))
    clock.now += 301  # these four fall out of the window
    for _ in range(4):
        assert propfind(f"{dav}/files/", auth=("alice", "guess")).status_code == 401
    assert propfind(f"{dav}/files/", auth=ALICE).status_code == 207


def test_unauthenticated_probes_and_forbidden_mounts_are_not_failures(dav):
    # Kodi asks without credentials first; a user may knock on a mount that is not theirs.
    for _ in range(6):
        assert propfind(f"{dav}/files/").status_code == 401
        assert propfind(f"{dav}/private/", auth=BOB).status_code == 403
    assert propfind(f"{dav}/files/", auth=BOB).status_code == 207


def test_behind_a_trusted_proxy_the_forwarded_client_is_banned_not_the_proxy(
    tmp_path, hashes, caplog
):
    settings = settings_for(hashes, trusted_proxies=["127.0.0.1/32"])
    for base in serve(tmp_path, settings):
        guesser = {"X-Forwarded-For": "198.51.100.66"}
        for _ in range(5):
            assert (
                propfind(f"{base}/files/", auth=("alice", "x"), headers=guesser).status_code == 401
            )
        assert propfind(f"{base}/files/", auth=ALICE, headers=guesser).status_code == 429
        neighbour = {"X-Forwarded-For": "198.51.100.67"}
        assert propfind(f"{base}/files/", auth=ALICE, headers=neighbour).status_code == 207
    assert "banning 198.51.100.66 for 600 s" in caplog.text
    assert "trusted_proxies" not in caplog.text  # a real client's address: no hint


def test_a_ban_of_this_machines_own_address_says_what_it_means(dav, caplog):
    # Behind a reverse proxy on the same machine without server.trusted_proxies, every
    # client is 127.0.0.1: one guesser locks everyone out until the ban ends or a restart.
    for _ in range(5):
        propfind(f"{dav}/files/", auth=("alice", "guess"))
    assert propfind(f"{dav}/files/", auth=ALICE).status_code == 429
    ban = [r.getMessage() for r in caplog.records if "banning 127.0.0.1" in r.getMessage()]
    assert len(ban) == 1 and "an admin can lift it on /_pikdav/" in ban[0]
    assert "set server.trusted_proxies to the proxy's address" in caplog.text


def test_failed_logins_memory_is_bounded():
    failed = FailedLogins(2, 300, 600, max_clients=3)
    for i in range(10):
        failed.record_failure(f"198.51.100.{i}")
    assert len(failed._clients) == 3


# --- anonymous access ------------------------------------------------------------------------


def test_anonymous_mode_lets_reads_through_and_asks_writers_to_log_in(tmp_path, hashes):
    for base in serve(tmp_path, settings_for(hashes, anonymous=True)):
        assert propfind(f"{base}/files/").status_code == 207
        assert requests.get(f"{base}/private/diary.txt", timeout=10).text == "secret"
        anonymous_put = requests.put(f"{base}/files/new.txt", data=b"x", timeout=10)
        assert anonymous_put.status_code == 401
        assert not (tmp_path / "files" / "new.txt").exists()
        # A client that logs in gets that user's rights.
        assert requests.put(f"{base}/files/new.txt", data=b"x", auth=ALICE, timeout=10).ok
        assert propfind(f"{base}/files/", auth=("alice", "guess")).status_code == 401


def test_without_anonymous_mode_reads_need_credentials_too(dav):
    assert requests.get(f"{dav}/files/hello.txt", timeout=10).status_code == 401
