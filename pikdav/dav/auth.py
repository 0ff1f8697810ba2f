"""DAV users: password hashes, Basic authentication for WsgiDAV, and a ban on password guessing.

Wiring (the app assembler builds the WsgiDAV config)::

    "http_authenticator": {"domain_controller": PikdavDomainController, "accept_basic": True,
                           "accept_digest": False, "default_to_digest": False},
    "middleware_stack": [ErrorAnswers, LoginThrottle, BasicAuthenticator, RequestResolver],
    "pikdav": {"auth": AuthSettings(...)},

`AuthSettings` holds the users (`DavUser`: password hash, the mounts they may open, read-only or
not), every mount name (a root path that is no mount is open to every user), whether reads need
no credentials, the ban's `LoginFailures` and the trusted proxies whose X-Forwarded-For names the
client. The `FailedLogins` the domain controller and `LoginThrottle` share is made on first use
(or given as ``"failed_logins"`` beside ``"auth"``).

The domain controller decides everything about a user's rights in one place: it answers 401 for
wrong credentials, 403 for a mount the user may not see and for a write by a read-only user, and
leaves `environ["pikdav.mounts"]` for the provider (see `may_access`). The mount's own
`read_only` is the mount's to enforce.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.mw.base_mw import BaseMiddleware

from .frontdoor import plain_answer
from .logtext import client_text
from .policy import IPNetwork, parse_ip, request_client

log = logging.getLogger(__name__)

REALM = "pikdav"
# The one list of methods that change something: DAV's, and POST (the status page's forms).
DAV_WRITE_METHODS = ("PUT", "DELETE", "COPY", "MOVE", "MKCOL", "PROPPATCH", "LOCK", "UNLOCK")
WRITE_METHODS = frozenset({*DAV_WRITE_METHODS, "POST"})
ALL_MOUNTS = "*"


@dataclass(frozen=True)
class LoginFailures:
    """The ban on password guessing: ``max`` failed logins from one address within ``window``
    seconds ban it for ``ban`` seconds; ``max`` 0 never bans."""

    max: int = 5
    window: int = 300
    ban: int = 600


@dataclass(frozen=True)
class DavUser:
    name: str
    password_hash: str = field(repr=False)
    mounts: tuple[str, ...] = (ALL_MOUNTS,)
    read_only: bool = False
    admin: bool = False  # may open the status page and the metrics


@dataclass(frozen=True)
class AuthSettings:
    users: Mapping[str, DavUser]
    mounts: tuple[str, ...]  # every mount's name
    anonymous: bool = False  # reads without credentials
    login_failures: LoginFailures = LoginFailures()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Where `pikdav bans lift` leaves its requests for the running server (state_dir/lift-bans)
    lift_requests: Path | None = None


# --- password hashes ---------------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 2**27  # 128 MiB: room for n*r up to 2**19 (the check below)


@dataclass(frozen=True)
class _Hash:
    scheme: str
    params: tuple[int, ...]
    salt: bytes
    digest: bytes = field(repr=False)

    def derive(self, password: str) -> bytes:
        if self.scheme == "scrypt":
            n, r, p = self.params
            return hashlib.scrypt(
                password.encode(), salt=self.salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM,
                dklen=len(self.digest),
            )  # fmt: skip
        return hashlib.pbkdf2_hmac(
            "sha256", password.encode(), self.salt, self.params[0], len(self.digest)
        )


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: ``scrypt$16384$8$1$<salt b64>$<hash b64>``."""
    salt = secrets.token_bytes(16)
    key_size = bytes(32)  # derive() makes a key as long as the digest it will be compared with
    digest = _Hash("scrypt", (_SCRYPT_N, _SCRYPT_R, _SCRYPT_P), salt, key_size).derive(password)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def _decoy_hash() -> str:
    """A hash of the same cost as `hash_password`'s that no password matches: checking a
    password against it takes as long, and making it takes no scrypt run (a server start
    spent one on it)."""
    digest = secrets.token_bytes(32)
    salt = secrets.token_bytes(16)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (False, too, when `stored` is malformed)."""
    try:
        parsed = parse_password_hash(stored)
    except ValueError:
        return False
    return hmac.compare_digest(parsed.derive(password), parsed.digest)


def parse_password_hash(stored: str) -> _Hash:
    """Parse ``scrypt$N$r$p$salt$hash`` or Django's ``pbkdf2_sha256$iterations$salt$hash``.

    Raises ValueError saying what is wrong (never repeating the hash).
    """
    parts = stored.split("$") if isinstance(stored, str) else []
    if parts[:1] == ["scrypt"]:
        if len(parts) != 6:
            raise ValueError("a scrypt hash has 6 parts: scrypt$N$r$p$salt$hash")
        n, r, p = (_int(v, "scrypt parameters") for v in parts[1:4])
        if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n * r > 2**19:
            raise ValueError("scrypt parameters out of range (N a power of 2, N*r <= 2**19)")
        return _Hash("scrypt", (n, r, p), _unb64(parts[4], "salt"), _unb64(parts[5], "hash"))
    if parts[:1] == ["pbkdf2_sha256"]:
        if len(parts) != 4:
            raise ValueError("a pbkdf2_sha256 hash has 4 parts: pbkdf2_sha256$iterations$salt$hash")
        iterations = _int(parts[1], "iterations")
        if not 1 <= iterations <= 10_000_000:
            raise ValueError("pbkdf2_sha256 iterations out of range (1 to 10000000)")
        return _Hash("pbkdf2_sha256", (iterations,), parts[2].encode(), _unb64(parts[3], "hash"))
    raise ValueError("unknown hash scheme (expected scrypt$... or pbkdf2_sha256$...)")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise ValueError(f"the {what} is not base64") from None
    if len(data) < 8:
        raise ValueError(f"the {what} is too short")
    return data


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} must be integers")
    return int(text)


# --- failed logins -----------------------------------------------------------------------------


@dataclass
class _Client:
    failures: collections.deque[float]
    banned_until: float = 0.0
    banned_at: float = 0.0  # wall clock: a lift request older than the ban is not for it


LIFT_ALL = "*"


def request_lift(requests: Path, addresses: Iterable[str]) -> None:
    """Ask the running server to lift the bans on ``addresses`` (``*``: every ban): a line
    each in ``requests``, which the server reads at the next request of a banned address (or
    the next view of the status page) and then removes. What `pikdav bans lift` does."""
    requests.parent.mkdir(parents=True, exist_ok=True)
    with requests.open("a", encoding="utf-8") as file:
        file.writelines(f"{address}\n" for address in addresses)


class FailedLogins:
    """Failed logins per client IP; `max_failures` within `window` seconds ban the IP for `ban`.

    Thread-safe; remembers at most `max_clients` addresses (the least recently seen go first).
    `max_failures` 0 turns the ban off. A ban ends when its time is up, by `lift` (the status
    page), or by a request of `pikdav bans lift` found in ``lift_requests`` (see
    `request_lift`): an admin whose own address is banned is not locked out of lifting it.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300,
        ban: float = 600,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        lift_requests: Path | None = None,
        behind_proxy: bool = False,
    ) -> None:
        self.max_failures, self.window, self.ban = max_failures, window, ban
        self.lift_requests = lift_requests
        self.behind_proxy = behind_proxy  # trusted_proxies is set: a ban names the client
        self._max_clients = max_clients
        self._clock = clock
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: LoginFailures, lift_requests: Path | None = None, behind_proxy: bool = False
    ) -> FailedLogins:
        return cls(
            settings.max,
            settings.window,
            settings.ban,
            lift_requests=lift_requests,
            behind_proxy=behind_proxy,
        )

    def record_failure(self, ip: str) -> bool:
        """Count a failed login; True when it starts a ban."""
        if self.max_failures <= 0:
            return False
        with self._lock:
            now = self._clock()
            client = self._clients.pop(ip, None) or _Client(collections.deque())
            self._clients[ip] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
            while client.failures and client.failures[0] <= now - self.window:
                client.failures.popleft()
            client.failures.append(now)
            if len(client.failures) < self.max_failures:
                return False
            client.failures.clear()
            client.banned_until = now + self.ban
            client.banned_at = time.time()
        self.log_ban(ip)
        return True

    def log_ban(self, ip: str, where: str = "") -> None:
        """Say that ``ip`` is banned, how to lift it, and what a loopback address means."""
        log.warning(
            "banning %s for %d s after %d failed logins%s (an admin can lift it on /_pikdav/ "
            "or with `pikdav bans lift -c CONFIG %s`)",
            client_text(ip),
            self.ban,
            self.max_failures,
            where,
            client_text(ip),
        )
        if _is_loopback(ip) and self.behind_proxy:
            log.warning(
                "the banned address %s is this machine's own, and it is the client's as the "
                "trusted proxy reports it: a client on this machine failed to log in. "
                "Everyone on this machine is banned with it, the admin's browser too: lift it "
                "with `pikdav bans lift -c CONFIG %s`",
                client_text(ip),
                client_text(ip),
            )
        elif _is_loopback(ip):
            log.warning(
                "the banned address %s is this machine's own: behind a reverse proxy on this "
                "machine every client shares it, so the ban locks out everyone; set "
                "server.trusted_proxies to the proxy's address so that bans fall on the real "
                "client (X-Forwarded-For). Lift it now with `pikdav bans lift -c CONFIG %s`",
                client_text(ip),
                client_text(ip),
            )

    def record_success(self, ip: str) -> None:
        with self._lock:
            self._clients.pop(ip, None)

    def banned(self) -> list[tuple[str, int]]:
        """The addresses banned now, each with its seconds left (for the status page)."""
        self.take_lift_requests()
        with self._lock:
            now = self._clock()
            found = [(ip, c.banned_until - now) for ip, c in self._clients.items()]
        return sorted((ip, math.ceil(left)) for ip, left in found if left > 0)

    def lift(self, ip: str) -> bool:
        """End the ban on ``ip`` now (and forget its failures); False when it was not banned."""
        with self._lock:
            client = self._clients.get(ip)
            if client is None or client.banned_until <= self._clock():
                return False
            del self._clients[ip]
        log.info("the ban on %s was lifted by an admin", client_text(ip))
        return True

    def retry_after(self, ip: str) -> int:
        """Seconds left of the IP's ban; 0 when it is not banned."""
        left = self._left(ip)
        if left > 0 and self.take_lift_requests():
            left = self._left(ip)
        return math.ceil(left) if left > 0 else 0

    def _left(self, ip: str) -> float:
        with self._lock:
            client = self._clients.get(ip)
            return client.banned_until - self._clock() if client else 0.0

    def take_lift_requests(self) -> bool:
        """Lift the bans that `pikdav bans lift` asked for since they began; True when a
        request was found (one stat of a file that is usually absent, else nothing)."""
        if self.lift_requests is None:
            return False
        taken = self.lift_requests.with_name(f"{self.lift_requests.name}.{os.getpid()}")
        try:
            os.replace(self.lift_requests, taken)  # a request written meanwhile starts anew
        except OSError:
            return False
        try:
            asked_at = taken.stat().st_mtime
            addresses = {line.strip() for line in taken.read_text("utf-8").splitlines()}
            taken.unlink()
        except (OSError, UnicodeDecodeError):
            return False
        for ip in self._lift_asked(addresses, asked_at + 1):  # the file's time is coarse
            log.info("the ban on %s was lifted by `pikdav bans lift`", client_text(ip))
        return True

    def _lift_asked(self, addresses: set[str], asked_at: float) -> list[str]:
        """Lift the bans on ``addresses`` (``*``: all) that began before ``asked_at`` (wall
        clock); the addresses lifted."""
        with self._lock:
            now = self._clock()
            lifted = [
                ip
                for ip, client in self._clients.items()
                if client.banned_until > now
                and client.banned_at <= asked_at
                and (ip in addresses or LIFT_ALL in addresses)
            ]
            for ip in lifted:
                del self._clients[ip]
        return lifted


def failed_logins(config: dict[str, Any]) -> FailedLogins:
    """The `FailedLogins` shared by the domain controller and `LoginThrottle` of one app."""
    settings = config["pikdav"]
    if "failed_logins" not in settings:
        auth: AuthSettings = settings["auth"]
        settings["failed_logins"] = FailedLogins.from_settings(
            auth.login_failures, auth.lift_requests, bool(auth.trusted_proxies)
        )
    return settings["failed_logins"]


def _is_loopback(ip: str) -> bool:
    address = parse_ip(ip)
    return address is not None and address.is_loopback


# --- the domain controller ---------------------------------------------------------------------


class _RecentLogins:
    """Credentials verified in the last `ttl` seconds, so that clients which authenticate every
    request (Kodi, Explorer) do not pay for scrypt each time. Keys are HMACs under a per-process
    key: a memory dump does not give an attacker a fast hash of a password."""

    def __init__(self, ttl: float = 60, size: int = 1024) -> None:
        self._ttl, self._size = ttl, size
        self._key = secrets.token_bytes(32)
        self._expiry: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._verifying: dict[bytes, list] = {}  # digest -> [its lock, requests waiting]

    def _digest(self, user: str, password: str, stored: str) -> bytes:
        message = "\0".join((user, password, stored)).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __contains__(self, credentials: tuple[str, str, str]) -> bool:
        key = self._digest(*credentials)
        with self._lock:
            expiry = self._expiry.get(key)
            if expiry is None or expiry < time.monotonic():
                self._expiry.pop(key, None)
                return False
            self._expiry.move_to_end(key)
            return True

    def verify(self, credentials: tuple[str, str, str], check: Callable[[], bool]) -> bool:
        """Whether `credentials` are good: at once when recently verified, else by `check()`,
        run once at a time for the same credentials (a burst of 160 requests from one client
        paid scrypt 160 times: seconds of both cores, and every other user waited)."""
        key = self._digest(*credentials)
        with self._lock:
            entry = self._verifying.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                if credentials in self:
                    return True
                if not check():
                    return False
                self.add(credentials)
                return True
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._verifying[key]

    def add(self, credentials: tuple[str, str, str]) -> None:
        key = self._digest(*credentials)
        with self._lock:
            self._expiry[key] = time.monotonic() + self._ttl
            self._expiry.move_to_end(key)
            while len(self._expiry) > self._size:
                self._expiry.popitem(last=False)


@dataclass(frozen=True)
class _User:
    password_hash: str = field(repr=False)
    mounts: frozenset[str]
    read_only: bool


def may_access(environ: Mapping[str, Any], mount: str) -> bool:
    """Whether the request's user may see `mount` (for the root listing)."""
    mounts = environ.get("pikdav.mounts", frozenset())
    return ALL_MOUNTS in mounts or mount.casefold() in mounts


class PikdavDomainController(BaseDomainController):
    """Basic authentication against `config["pikdav"]["auth"]` (see the module docstring).

    One realm for the whole server: every mount takes the same credentials, and a client that
    logged in at `/` must not be asked again when it opens a mount.
    """

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        settings: AuthSettings = config["pikdav"]["auth"]
        self._users = {
            name: _User(
                user.password_hash,
                frozenset(m.casefold() for m in user.mounts),
                user.read_only,
            )
            for name, user in settings.users.items()
        }
        self._mounts = frozenset(m.casefold() for m in settings.mounts)
        self._anonymous = settings.anonymous
        self._trusted_proxies = settings.trusted_proxies
        self._failed = failed_logins(config)
        self._recent = _RecentLogins()
        # Unknown users are checked against this, so that they take as long as known ones.
        self._decoy_hash = _decoy_hash()

    def __str__(self) -> str:
        return f"{type(self).__name__}({len(self._users)} users, anonymous={self._anonymous})"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return REALM

    def supports_http_digest_auth(self) -> bool:
        return False

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        if not self._anonymous:
            return True
        if environ is None:
            return False
        # A client that sends credentials, or wants to write, gets a user's rights (the 401 makes
        # it log in); anyone else reads anonymously.
        if environ.get("HTTP_AUTHORIZATION") or environ["REQUEST_METHOD"] in WRITE_METHODS:
            return True
        self._grant(environ, read_only=True, mounts=frozenset({ALL_MOUNTS}))
        return False

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        ip = request_client(environ, self._trusted_proxies)
        user = self._users.get(user_name)
        if not self._check(user_name, password, user):
            log.warning(
                "login failed for user '%s' from %s", client_text(user_name), client_text(ip)
            )
            self._failed.record_failure(ip)
            return False
        assert user is not None
        self._failed.record_success(ip)

        mount = self._mount_of(environ)
        if mount is not None and ALL_MOUNTS not in user.mounts and mount not in user.mounts:
            log.info(
                "user '%s' from %s may not open mount %s",
                client_text(user_name),
                client_text(ip),
                mount,
            )
            raise DAVError(HTTP_FORBIDDEN, f"user {user_name!r} may not open this folder")
        if user.read_only and environ["REQUEST_METHOD"] in WRITE_METHODS:
            raise DAVError(HTTP_FORBIDDEN, f"user {user_name!r} is read-only")
        self._grant(environ, read_only=user.read_only, mounts=user.mounts)
        return True

    def _check(self, user_name: str, password: str, user: _User | None) -> bool:
        if user is None:
            verify_password(password, self._decoy_hash)
            return False
        credentials = (user_name, password, user.password_hash)
        return self._recent.verify(
            credentials, lambda: verify_password(password, user.password_hash)
        )

    def _mount_of(self, environ: dict[str, Any]) -> str | None:
        """The mount a request is for; None for the root and for paths that are no mount."""
        provider = environ.get("wsgidav.provider")
        share = provider.share_path if provider is not None else ""
        path = share if share not in ("", "/") else environ.get("PATH_INFO", "")
        name = path.strip("/").partition("/")[0].casefold()
        return name if name in self._mounts else None

    @staticmethod
    def _grant(environ: dict[str, Any], *, read_only: bool, mounts: frozenset[str]) -> None:
        environ["pikdav.mounts"] = mounts
        environ["wsgidav.auth.roles"] = ("reader",) if read_only else ("editor",)


# --- Basic authentication ----------------------------------------------------------------------

MAX_AUTHORIZATION = 4096  # characters; a real Basic header is well under 1 KB


def parse_basic(header: str) -> tuple[str, str] | None:
    """User name and password of a ``Basic`` Authorization header; None when it is malformed
    (not base64, not UTF-8, no colon)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return None
    user_name, colon, password = decoded.partition(":")
    return (user_name, password) if colon else None


class BasicAuthenticator(HTTPAuthenticator):
    """WsgiDAV's authenticator, reading the Basic header itself: a malformed one is a 401 and
    an oversized one a 400, not a 500 with a Python exception; and WsgiDAV's own log line of
    a failed login (the user name whole, 75 KB of it if so sent) is replaced by the domain
    controller's, escaped and cut."""

    def handle_basic_auth_request(self, environ: dict[str, Any], start_response: Callable):
        header = environ["HTTP_AUTHORIZATION"]
        if len(header) > MAX_AUTHORIZATION:
            environ["wsgidav.some_input_read"] = environ["wsgidav.all_input_read"] = 1
            return plain_answer(
                start_response,
                400,
                "the Authorization header is too long",
                [("Connection", "close")],
            )
        credentials = parse_basic(header)
        if credentials is None:
            log.info(
                "malformed Basic credentials from %s",
                client_text(request_client(environ)),
            )
            return self.send_basic_auth_response(environ, start_response)
        user_name, password = credentials
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        if self.domain_controller.basic_auth_user(realm, user_name, password, environ):
            environ["wsgidav.auth.realm"] = realm
            environ["wsgidav.auth.user_name"] = user_name
            return self.next_app(environ, start_response)
        return self.send_basic_auth_response(environ, start_response)

    def send_basic_auth_response(self, environ: dict[str, Any], start_response: Callable):
        """401 with the Basic challenge and a short plain reason (WsgiDAV's is an HTML page).
        Explorer and Finder ask for the password again on a 401; a 403 they show as "access
        denied" without asking (sabre.io/dav/clients/windows)."""
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        return plain_answer(
            start_response,
            401,
            "log in with the user name and password of a pikdav user",
            [("WWW-Authenticate", f'Basic realm="{realm}"')],
        )


# --- the ban -----------------------------------------------------------------------------------


class LoginThrottle(BaseMiddleware):
    """Answers 429 to a client IP banned for failed logins. Goes right before HTTPAuthenticator
    in WsgiDAV's `middleware_stack`; shares its `FailedLogins` with the domain controller."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.failed = failed_logins(config)
        self._trusted_proxies = config["pikdav"]["auth"].trusted_proxies

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        retry_after = self.failed.retry_after(request_client(environ, self._trusted_proxies))
        if not retry_after:
            return self.next_app(environ, start_response)
        # Do not read a banned client's upload: answer at once and close the connection.
        environ["wsgidav.some_input_read"] = environ["wsgidav.all_input_read"] = 1
        return plain_answer(
            start_response,
            429,
            f"Too many failed logins from your address; try again in {retry_after} s.",
            [("Retry-After", str(retry_after)), ("Connection", "close")],
        )
