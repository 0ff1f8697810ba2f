"""One session per PikPak account: HTTP, tokens, captcha tokens and the retry policy.

Every upstream call goes through :meth:`Session.call`. The access token is refreshed once
half of its life is gone, or when PikPak refuses it; exactly one refresh runs however many
threads (a lock) or processes (the token store's lock) want one, and the others reuse its
result. A rotated refresh token is saved before the new access token is used, because the
old one is dead the moment PikPak answers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from . import identity
from .errors import (
    AuthError,
    HumanCheckRequired,
    LoginPaused,
    PikPakError,
    RateLimited,
    Reaction,
    Transient,
    error_from_answer,
    unreachable,
)
from .tokenstore import LoginPause, StoredAuth, TokenStore
from .types import Token

log = logging.getLogger(__name__)

USER_API = "https://user.mypikpak.com"
DRIVE_API = "https://api-drive.mypikpak.com"
CAPTCHA_MARGIN = 10.0  # seconds: treat a captcha token as expired this early


@dataclass(frozen=True)
class RetryPolicy:
    """The bound on retries: attempts and seconds, and how long to wait between them."""

    attempts: int = 6
    seconds: float = 90.0
    backoff: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 30.0
    too_frequent_wait: float = 5.0
    # Sign-ins that fail for a reason no retry can fix (wrong password, human check, "too
    # frequent"...) pause all sign-ins: this long at first, twice as long each time after.
    login_pause_first: float = 60.0
    login_pause_max: float = 3600.0

    def login_pause(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to stop signing in after the ``failures``-th such failure in a row (or
        longer, when PikPak's Retry-After says so)."""
        step = min(self.login_pause_max, self.login_pause_first * 2 ** max(0, failures - 1))
        return max(step, retry_after or 0.0)


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str | None = None
    refresh_token: str | None = None  # log in with a refresh token alone
    captcha_token: str | None = None  # a captcha solved by a person, for the next sign-in


class _Again(Exception):
    """Inside the retry loop: try again after ``wait`` seconds (None: the policy decides)."""

    def __init__(self, cause: PikPakError, wait: float | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.wait = wait


@dataclass
class _Captcha:
    token: str = ""
    expires_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached PikPak (safe to repeat any call)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "Connection refused" in text
    )


class Session:
    def __init__(
        self,
        credentials: Credentials,
        store: TokenStore,
        *,
        platform: identity.Platform = identity.WEB,
        user_api: str = USER_API,
        drive_api: str = DRIVE_API,
        pool_size: int = 64,
        ca_cert: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        name: str = "pikpak",
        login: str = "pikdav login",
    ) -> None:
        self.credentials = credentials
        # The command that signs this account in (`pikdav login -c <config>`), for messages.
        self.login_hint = login
        self.store = store
        self.platform = platform
        self.user_api = user_api.rstrip("/")
        self.drive_api = drive_api.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.name = name
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        self.http.trust_env = False
        if ca_cert:
            self.http.verify = ca_cert
        self._refresh_lock = threading.RLock()
        self._auth: StoredAuth | None = None
        self._captcha = _Captcha()
        self._pause_seen = 0.0  # the start of the last sign-in pause this process logged
        self.last_sign_in: float | None = None  # when this session signed in with the password

    # ------------------------------------------------------------------ state
    @property
    def auth(self) -> StoredAuth:
        if self._auth is None:
            with self._refresh_lock:
                if self._auth is None:
                    self._auth = self._load_or_create()
        return self._auth

    def _load_or_create(self) -> StoredAuth:
        with self.store.locked():
            stored = self.store.load()
            if (
                stored is not None
                and stored.token is not None
                and stored.platform != self.platform.name
            ):
                raise AuthError(
                    f"the token store holds a login made with platform '{stored.platform}', "
                    f"but this account is configured for '{self.platform.name}'; a refresh "
                    "token works only with the platform that issued it. Set the platform "
                    f"back, or run `{self.login_hint} --platform {self.platform.name}`."
                )
            if stored is None or not stored.device_id:
                # The device id is made once and kept: PikPak ties logins to it.
                stored = StoredAuth(
                    self.platform.name,
                    identity.new_device_id(),
                    self.credentials.username,
                    stored.token if stored else None,
                )
                if self.credentials.refresh_token and stored.token is None:
                    stored = replace(
                        stored,
                        token=Token(
                            "",
                            self.credentials.refresh_token,
                            0.0,
                            0.0,
                            "",
                            self.platform.client_id,
                        ),
                    )
                self.store.save(stored)
            return stored

    @property
    def device_id(self) -> str:
        return self.auth.device_id

    @property
    def user_id(self) -> str:
        token = self.auth.token
        return token.user_id if token else ""

    # ------------------------------------------------------------------ headers
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "User-Agent": self.platform.user_agent,
            "X-Client-Id": self.platform.client_id,
            "X-Client-Version": self.platform.client_version,
            "X-Device-Id": self.device_id,
        }
        if self.platform.name == "web":
            headers["Referer"] = "https://mypikpak.com/"
        return headers | (extra or {})

    # ------------------------------------------------------------------ tokens
    def token(self) -> Token:
        """A usable access token: the current one while fresh, else after one refresh."""
        current = self.auth.token
        if current is not None and current.fresh():
            return current
        try:
            return self.refresh(rejected=current.access_token if current else None)
        except (Transient, RateLimited, LoginPaused) as exc:
            # A refresh ahead of time that fails is no reason to fail a call while the
            # token still works; the next call tries again.
            if (
                current is not None
                and current.access_token
                and current.expires_at > time.time() + 30
            ):
                if not isinstance(exc, LoginPaused):  # a pause is logged when it starts
                    log.warning(
                        "%s: could not refresh the access token yet (%s); using the current one",
                        self.name,
                        exc,
                    )
                return current
            raise

    def refresh(self, rejected: str | None) -> Token:
        """Replace the access token ``rejected`` (None: ours is old), once for everyone.

        While sign-ins are paused this raises :class:`LoginPaused` at once, without asking
        PikPak; a new login in the token store (`pikdav login`, another process) ends it."""
        base = self.auth  # loaded before the store lock is taken (flock is not re-entrant)
        with self._refresh_lock:
            current = self._auth.token if self._auth else None
            if current is not None and current.access_token != rejected and current.fresh():
                return current  # another thread did it while we waited
            # During a pause every call lands here: a look at the store without its lock
            # answers it, and costs neither a lock nor a PikPak call.
            token = self._settled(self.store.load() or base, rejected)
            if token is not None:
                return token
            with self.store.locked():
                stored = self.store.load() or base
                token = self._settled(stored, rejected)
                if token is not None:
                    return token
                if stored.pause is not None:
                    log.info("%s: the pause on signing in is over; trying again", self.name)
                try:
                    new = self._renew(stored)
                except PikPakError as exc:
                    if not exc.pause:
                        raise
                    raise self._start_pause(stored, exc) from exc
                if stored.pause is not None:
                    log.info("%s: logged in to PikPak again; sign-ins resume", self.name)
                self._pause_seen = 0.0
                self._auth = replace(
                    stored,
                    token=new,
                    username=self.credentials.username or stored.username,
                    pause=None,
                )
                self.store.save(self._auth)  # persisted before anything uses it
                return new

    def _settled(self, stored: StoredAuth, rejected: str | None) -> Token | None:
        """The stored token when it is usable (another process or `pikdav login` wrote
        it); :class:`LoginPaused` while a pause lasts; None when a renewal is due."""
        token = stored.token
        if (
            token is not None
            and token.access_token
            and token.access_token != rejected
            and token.fresh()
        ):
            if self._pause_seen:
                log.info(
                    "%s: the token store holds a new login; sign-ins are no longer paused",
                    self.name,
                )
                self._pause_seen = 0.0
            else:
                log.debug("%s: adopted the token another process refreshed", self.name)
            self._auth = stored
            return token
        pause = stored.pause
        if pause is None or not pause.active():
            return None
        paused = self._paused(pause)
        if self._pause_seen != pause.since:  # recorded by another process: say it once
            self._pause_seen = pause.since
            log.warning("%s: %s", self.name, paused)
        raise paused

    def paused(self) -> LoginPaused | None:
        """The pause on sign-ins that the token store holds now (any process's), if any."""
        stored = self.store.load()
        pause = stored.pause if stored is not None else None
        return self._paused(pause) if pause is not None and pause.active() else None

    def _paused(self, pause: LoginPause) -> LoginPaused:
        return LoginPaused(pause.kind, pause.problem, pause.until, self.login_hint)

    def _start_pause(self, stored: StoredAuth, exc: PikPakError) -> LoginPaused:
        """Record in the store that sign-ins stop for a while, log it once, and say so."""
        failures = stored.pause.failures + 1 if stored.pause is not None else 1
        now = time.time()
        wait = self.retry.login_pause(failures, exc.retry_after)
        pause = LoginPause(exc.pause, exc.problem, now, now + wait, failures)
        self._auth = replace(stored, pause=pause)
        self.store.save(self._auth)
        self._pause_seen = now
        paused = self._paused(pause)
        # A human check's page carries the captcha token the puzzle validates: it is shown
        # only where a person asked for it (`pikdav login`'s terminal), never in the log.
        log.warning("%s: %s", self.name, paused)
        return paused

    def login(self) -> Token:
        """Sign in now (``pikdav login``), replacing whatever login the store held.

        With a refresh token in the credentials, that token is redeemed instead."""
        with self._refresh_lock, self.store.locked():
            stored = self.store.load()
            device = stored.device_id if stored and stored.device_id else identity.new_device_id()
            # A new login, and no pause: whatever the store held is replaced.
            self._auth = StoredAuth(self.platform.name, device, self.credentials.username)
            self._pause_seen = 0.0
            if self.credentials.refresh_token:
                new = self._refresh_request(self.credentials.refresh_token)
            else:
                new = self._sign_in()
            self._auth = replace(self._auth, token=new)
            self.store.save(self._auth)
            return new

    def _renew(self, stored: StoredAuth) -> Token:
        """Refresh with the stored refresh token; sign in again when PikPak refuses it.
        Runs with the store locked."""
        token = stored.token
        if token is not None and token.refresh_token:
            try:
                new = self._refresh_request(token.refresh_token)
                log.info("%s: refreshed the access token (valid %d s)", self.name, new.lifetime)
                return new
            except AuthError as exc:
                if exc.pause or (exc.reason != "invalid_grant" and exc.code != 4126):
                    raise
                log.warning("%s: %s", self.name, exc)
        return self._sign_in(after_rejection=token is not None)

    def _refresh_request(self, refresh_token: str) -> Token:
        body = self._auth_post(
            "/v1/auth/token",
            {
                "client_id": self.platform.client_id,
                "client_secret": self.platform.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        token = Token.from_wire(body, self.platform.client_id)
        if not token.refresh_token:  # not rotated this time: the old one stays valid
            token = replace(token, refresh_token=refresh_token)
        return token

    def _sign_in(self, after_rejection: bool = False) -> Token:
        creds = self.credentials
        if not creds.password or not creds.username:
            hint = (
                "PikPak refused the stored refresh token"
                if after_rejection
                else "there is no stored login"
            )
            # What to do comes with the pause this starts (LOGIN_PAUSES["no_password"]).
            raise AuthError(
                f"{hint}, and no password is configured for {creds.username or 'this account'}",
                pause="no_password",
            )
        captcha = creds.captcha_token or self._signin_captcha()
        for attempt in range(2):
            try:
                body = self._auth_post(
                    "/v1/auth/signin",
                    {
                        "client_id": self.platform.client_id,
                        "client_secret": self.platform.client_secret,
                        "username": creds.username,
                        "password": creds.password,
                        "captcha_token": captcha,
                    },
                    captcha=captcha,
                )
                break
            except PikPakError as exc:
                if (
                    exc.reason in ("captcha_invalid", "captcha_required")
                    and attempt == 0
                    and not isinstance(exc, RateLimited)
                ):
                    captcha = self._signin_captcha()
                    continue
                raise
        self.credentials = replace(creds, captcha_token=None)
        token = Token.from_wire(body, self.platform.client_id)
        self.last_sign_in = time.time()
        log.info("%s: signed in as %s", self.name, creds.username)
        return token

    def _signin_captcha(self) -> str:
        login = self.credentials.username
        if "@" in login:
            meta = {"email": login}
        elif login.lstrip("+").isdigit() and 11 <= len(login.lstrip("+")) <= 18:
            meta = {"phone_number": login}
        else:
            meta = {"username": login}
        return self._captcha_init("POST:/v1/auth/signin", meta)

    def _captcha_init(self, action: str, meta: dict[str, str]) -> str:
        body = self._auth_post(
            "/v1/shield/captcha/init",
            {
                "action": action,
                "client_id": self.platform.client_id,
                "device_id": self.device_id,
                "meta": meta,
            },
        )
        if body.get("url"):
            raise HumanCheckRequired(str(body["url"]), self.login_hint)
        return str(body.get("captcha_token", ""))

    def _sign_meta(self) -> dict[str, str]:
        timestamp = str(int(time.time() * 1000))
        return {
            "captcha_sign": identity.sign_for(self.platform, self.device_id, timestamp),
            "client_version": self.platform.client_version,
            "package_name": self.platform.package_name,
            "timestamp": timestamp,
            "user_id": self.user_id,
        }

    def captcha_token(self, action: str = "GET:/drive/v1/files") -> str:
        """The captcha token drive calls carry; one serves every action until it expires."""
        state = self._captcha
        with state.lock:
            if state.token and time.time() + CAPTCHA_MARGIN < state.expires_at:
                return state.token
            body = self._auth_post(
                "/v1/shield/captcha/init",
                {
                    "action": action,
                    "client_id": self.platform.client_id,
                    "device_id": self.device_id,
                    "meta": self._sign_meta(),
                },
                signing_in=False,
            )
            if body.get("url"):
                raise HumanCheckRequired(str(body["url"]), self.login_hint)
            state.token = str(body.get("captcha_token", ""))
            state.expires_at = time.time() + float(body.get("expires_in") or 300)
            return state.token

    def _forget_captcha(self, token: str) -> None:
        with self._captcha.lock:
            if self._captcha.token == token:
                self._captcha.token, self._captcha.expires_at = "", 0.0

    def _auth_post(
        self, path: str, body: dict[str, Any], captcha: str = "", *, signing_in: bool = True
    ) -> dict[str, Any]:
        """A call to the user host (no access token). Retries only what is safe; while
        ``signing_in``, a failure that pauses sign-ins is not retried at all."""
        extra = {"X-Captcha-Token": captcha} if captcha else {}

        def once() -> dict[str, Any]:
            return self._send(
                "POST",
                self.user_api + path,
                json=body,
                headers=self._headers(extra),
                idempotent=False,
                signing_in=signing_in,
            )

        return self._with_retries(once)

    # ------------------------------------------------------------------ calls
    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        base: str | None = None,
    ) -> dict[str, Any]:
        """One drive call with the whole policy: tokens, captcha, retries, typed errors."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE", "PUT")
        url = (base or self.drive_api) + path
        # Refresh again only if a *new* token is refused (the token may expire again
        # during a long call); the same token refused twice is a real auth problem.
        refused_tokens: set[str] = set()
        renewed = {"captcha": False}

        def once() -> dict[str, Any]:
            token = self.token()
            captcha = self.captcha_token()
            headers = self._headers(
                {"Authorization": f"Bearer {token.access_token}", "X-Captcha-Token": captcha}
            )
            try:
                return self._send(
                    method, url, params=params, json=json, headers=headers, idempotent=idempotent
                )
            except _Refused as refused:
                exc, rule = refused.exc, refused.rule
                renews_token = rule.reaction in (Reaction.REFRESH, Reaction.RELOGIN)
                if renews_token and token.access_token not in refused_tokens:
                    # refresh() re-reads the store, refreshes, or signs in again.
                    refused_tokens.add(token.access_token)
                    log.info("%s: %s; renewing the login", self.name, rule.log)
                    self.refresh(rejected=token.access_token)
                    raise _Again(exc, 0) from None
                if rule.reaction is Reaction.RENEW_CAPTCHA and not renewed["captcha"]:
                    renewed["captcha"] = True
                    self._forget_captcha(captcha)
                    raise _Again(exc, 0) from None
                raise exc from None

        return self._with_retries(once)

    def _send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        signing_in: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            resp = self.http.request(method, url, timeout=self.timeout, **kwargs)
            log.debug(
                "%s: %s %s -> %d (%.0f ms)",
                self.name,
                method,
                urlsplit(url).path,
                resp.status_code,
                (time.perf_counter() - started) * 1000,
            )
        except requests.RequestException as exc:
            cause = unreachable(exc, url, self.timeout)
            if idempotent or _not_sent(exc):
                raise _Again(cause) from None
            raise cause from None
        if resp.status_code < 400:
            try:
                return resp.json() if resp.content else {}
            except ValueError:
                raise Transient(
                    f"PikPak answered {resp.status_code} with a body that is not JSON"
                ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        exc, rule = error_from_answer(resp.status_code, body, retry_after)
        if signing_in and rule.pause:
            raise exc  # asking again cannot help: the caller pauses sign-ins instead
        if rule.reaction is Reaction.BACK_OFF:
            log.warning("%s: %s; backing off", self.name, rule.log)
            wait = retry_after if retry_after is not None else self.retry.too_frequent_wait
            raise _Again(exc, min(wait, self.retry.retry_after_max))
        if rule.reaction is Reaction.RETRY:
            # 503 and "still processing" answers mean nothing happened: safe for any call.
            if idempotent or resp.status_code == 503 or exc.reason == "file_rename_uncompleted":
                log.info("%s: %s (HTTP %d); retrying", self.name, rule.log, resp.status_code)
                raise _Again(exc)
            raise exc
        raise _Refused(exc, rule)

    def _with_retries(self, once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        policy = self.retry

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Again) and exc.wait is not None:
                return exc.wait
            step = min(policy.backoff_max, policy.backoff * 2 ** (state.attempt_number - 1))
            return step * (0.5 + random.random() / 2)

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.seconds),
            wait=wait,
            retry=retry_if_exception_type(_Again),
            reraise=True,
        )
        try:
            return retrying(once)
        except _Again as final:
            raise final.cause from None
        except _Refused as refused:
            raise refused.exc from None


class _Refused(Exception):
    """An error answer whose reaction the caller decides (refresh, captcha, give up)."""

    def __init__(self, exc: PikPakError, rule) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.rule = rule


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
