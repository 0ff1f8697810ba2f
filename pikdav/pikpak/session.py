"""One session per PikPak account: tokens, captcha tokens, and every call to PikPak's API.

Every upstream call goes through :meth:`Session.call` (signed in, or anonymous for shares):
the error table (:mod:`pikdav.pikpak.errors`) says what each failure means and the retry
policy (:mod:`pikdav.pikpak.retry`) how often and how long to try again; the session acts
on the table's reaction and decides nothing else. The access token is refreshed once half
of its life is gone, or when PikPak refuses it; exactly one refresh runs however many
threads (a lock) or processes (the token store's lock) want one, and the others reuse its
result. A rotated refresh token is saved before the new access token is used, because the
old one is dead the moment PikPak answers.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests

from . import identity
from .errors import (
    AuthError,
    HumanCheckRequired,
    LoginPaused,
    PikPakError,
    RateLimited,
    Reaction,
    StoreUnreachable,
    Transient,
    cause_in_words,
    error_from_answer,
    not_json,
    transport_failure,
)
from .http import DRIVE_API, POOL_SIZE, USER_API, Connection, api_session, host_of, other_domain
from .retry import SESSION, SIGN_IN_PAUSE, Again, RetryPolicy
from .tokenstore import LoginPause, StoredAuth, TokenStore
from .types import CaptchaAnswer, Token

__all__ = ["DRIVE_API", "USER_API", "Credentials", "RetryPolicy", "Session"]

log = logging.getLogger(__name__)

CAPTCHA_MARGIN = 10.0  # seconds: treat a captcha token as expired this early
DRIVE_ACTION = "GET:/drive/v1/files"  # one captcha token serves every signed-in drive call
SIGN_IN_ACTION = "POST:/v1/auth/signin"
DAY = 86_400.0  # seconds: the window of the refresh and sign-in counts a status page shows


@dataclass(frozen=True)
class AccountHealth:
    """What a person needs to know about an account's login, with no secret in it: read by
    the status page (:meth:`Session.health`)."""

    name: str
    platform: str
    signed_in: bool  # an access token that is still valid, and no pause on sign-ins
    token_valid_until: float | None  # Unix time; None without a token
    token_refused: bool  # PikPak refused the access token before it was due to expire
    last_refresh: float | None  # Unix time of the last refresh or sign-in this process tried
    last_outcome: str  # what that attempt gave, in words ("" before the first)
    refreshes_24h: int
    sign_ins_24h: int
    refreshes: int  # since this process started
    sign_ins: int
    pauses: int
    back_offs: int  # waits PikPak asked for (rate limits) since this process started
    paused: LoginPaused | None  # the current failure: its problem, remedy and end
    failed_24h: int = 0  # sign-ins and refreshes that failed for good (each paused sign-ins)


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str | None = None
    refresh_token: str | None = None  # log in with a refresh token alone
    captcha_token: str | None = None  # a captcha solved by a person, for the next sign-in


class _CaptchaSlot:
    """One captcha token, kept until shortly before it expires or until PikPak refuses it,
    and where the next one comes from."""

    def __init__(
        self, fetch: Callable[[], CaptchaAnswer], token: str = "", expires_at: float = 0.0
    ) -> None:
        self._fetch = fetch
        self._token = token
        self._expires_at = expires_at
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if not self._token or time.time() + CAPTCHA_MARGIN >= self._expires_at:
                answer = self._fetch()
                self._token, self._expires_at = answer.token, answer.expires_at
            return self._token

    def forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token, self._expires_at = "", 0.0


class Session:
    def __init__(
        self,
        credentials: Credentials,
        store: TokenStore,
        *,
        platform: identity.Platform = identity.WEB,
        connection: Connection | None = None,
        user_api: str = USER_API,
        drive_api: str = DRIVE_API,
        pool_size: int = POOL_SIZE,
        ca_cert: str | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        login_pause: RetryPolicy | None = None,
        name: str = "pikpak",
        login: str = "pikdav login",
    ) -> None:
        """``connection`` says how to reach PikPak; without it, one is made from
        ``user_api``, ``drive_api``, ``pool_size``, ``ca_cert``, ``timeout`` and the
        platform's User-Agent. ``retry`` bounds every call, ``login_pause`` says how long
        sign-ins stop after a failure no retry can fix."""
        self.credentials = credentials
        # The command that signs this account in (`pikdav login -c <config>`), for messages.
        self.login_hint = login
        self.store = store
        self.platform = platform
        self.connection = connection or Connection(
            user_api=user_api,
            drive_api=drive_api,
            user_agent=platform.user_agent,
            ca_cert=ca_cert,
            pool_size=pool_size,
            timeout=timeout,
        )
        self.retry = retry or SESSION
        self.login_pause = login_pause or SIGN_IN_PAUSE
        self.name = name
        self.http = api_session(self.connection)
        self._refresh_lock = threading.RLock()
        self._auth: StoredAuth | None = None
        self._captcha = _CaptchaSlot(self._drive_captcha)
        self._anonymous: dict[str, _CaptchaSlot] = {}  # by action
        self._anonymous_lock = threading.Lock()
        self._pause_seen = 0.0  # the start of the last sign-in pause this process logged
        self.last_sign_in: float | None = None  # when this session signed in with the password
        # What the status page and the metrics read (see health()); times are Unix seconds.
        self._history: collections.deque[tuple[float, str]] = collections.deque(maxlen=10_000)
        self._counts = {"refresh": 0, "sign_in": 0, "pause": 0, "back_off": 0}
        # Told of every exchange with PikPak: (method, url path, outcome, seconds); outcome is
        # "ok", the HTTP status, or "transport" (the metrics set it).
        self.on_exchange: Callable[[str, str, str, float], None] | None = None
        # Told when a pause on sign-ins starts ("pause_started": kind, message) and when it
        # ends ("pause_ended"), for notifications (assembly sets it).
        self.on_event: Callable[..., None] | None = None
        self._last_attempt: tuple[float, str] | None = None
        self._refused = ""  # the last access token PikPak refused
        # PikPak's API answers on two domains (.com and .net); when the one configured does
        # not connect (a DNS block, say), calls go to the other until that fails in turn.
        self._other_domain = False
        self._revoked = ""  # the last one a call was refused with: dead until renewed

    @property
    def user_api(self) -> str:
        return self.connection.user_api

    @property
    def drive_api(self) -> str:
        return self.connection.drive_api

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

    # ------------------------------------------------------------------ tokens
    def token(self) -> Token:
        """A usable access token: the current one while fresh, else after one refresh."""
        current = self.auth.token
        # A token PikPak refused is dead whatever its expiry says: while its renewal waits
        # (a pause on sign-ins), no call goes out with it (refresh() raises the pause).
        refused = (
            current is not None
            and bool(current.access_token)
            and (current.access_token == self._revoked)
        )
        if current is not None and current.fresh() and not refused:
            return current
        try:
            return self.refresh(rejected=current.access_token if current else None)
        except (Transient, RateLimited, LoginPaused) as exc:
            # A refresh ahead of time that fails is no reason to fail a call while the
            # token still works; the next call tries again.
            if (
                not refused
                and current is not None
                and current.access_token
                and current.expires_at > time.time() + 30
            ):
                # A pause is logged when it starts, a shared store that does not answer by
                # the instance's shared state when it goes away: not with every call.
                if not isinstance(exc, LoginPaused | StoreUnreachable):
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
        if rejected:
            self._refused = rejected
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
                        self._last_attempt = (time.time(), f"failed: {exc.problem}")
                        raise
                    raise self._start_pause(stored, exc) from exc
                if stored.pause is not None:
                    log.info("%s: logged in to PikPak again; sign-ins resume", self.name)
                    self._emit("pause_ended")
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
                self._emit("pause_ended")
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
        wait = self.login_pause.delay(failures, exc.retry_after)
        pause = LoginPause(exc.pause, exc.problem, now, now + wait, failures)
        self._auth = replace(stored, pause=pause)
        self.store.save(self._auth)
        self._pause_seen = now
        paused = self._paused(pause)
        self._record("pause", paused.problem)
        self._emit("pause_started", kind=pause.kind, message=str(paused))
        # A human check's page carries the captcha token the puzzle validates: it is shown
        # only where a person asked for it (`pikdav login`'s terminal), never in the log.
        log.warning("%s: %s", self.name, paused)
        return paused

    def login(self) -> Token:
        """Sign in now (``pikdav login``), replacing whatever login the store held.

        With a refresh token in the credentials, that token is redeemed instead."""
        with self._refresh_lock, self.store.locked():
            stored = self.store.load()
            paused = stored is not None and stored.pause is not None
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
            if paused:
                log.info("%s: signed in again; sign-ins are no longer paused", self.name)
                self._emit("pause_ended")
            return new

    def sign_in_with_captcha(self, captcha_token: str) -> Token:
        """Sign in now with a captcha token a person solved (the status page's form), as
        ``pikdav login --captcha-token`` does; a pause on sign-ins ends with it."""
        self.credentials = replace(self.credentials, captcha_token=captcha_token.strip())
        return self.login()

    # ------------------------------------------------------------------ what a person sees
    def _emit(self, event: str, **fields: Any) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event, **fields)
        except Exception:  # a notification must never break a sign-in
            log.exception("%s: telling of %s failed", self.name, event)

    def _record(self, kind: str, outcome: str) -> None:
        now = time.time()
        self._counts[kind] += 1
        self._history.append((now, kind))
        self._last_attempt = (now, outcome)

    def health(self) -> AccountHealth:
        """The login's state now, from the token store and this process's history."""
        stored = self.store.load() or self._auth
        token = stored.token if stored is not None else None
        pause = stored.pause if stored is not None else None
        paused = self._paused(pause) if pause is not None and pause.active() else None
        now = time.time()
        valid_until = token.expires_at if token is not None and token.access_token else None
        recent = [kind for at, kind in self._history if at > now - DAY]
        last = self._last_attempt
        return AccountHealth(
            name=self.name,
            platform=self.platform.name,
            signed_in=paused is None
            and valid_until is not None
            and valid_until > now
            and not (token is not None and token.access_token == self._refused),
            token_valid_until=valid_until,
            token_refused=bool(
                token and token.access_token and token.access_token == self._refused
            ),
            last_refresh=last[0] if last else None,
            last_outcome=last[1] if last else "",
            refreshes_24h=recent.count("refresh"),
            sign_ins_24h=recent.count("sign_in"),
            refreshes=self._counts["refresh"],
            sign_ins=self._counts["sign_in"],
            pauses=self._counts["pause"],
            back_offs=self._counts["back_off"],
            paused=paused,
            failed_24h=recent.count("pause"),
        )

    def _renew(self, stored: StoredAuth) -> Token:
        """Refresh with the stored refresh token; sign in again when PikPak refuses it.
        Runs with the store locked."""
        token = stored.token
        if token is not None and token.refresh_token:
            try:
                new = self._refresh_request(token.refresh_token)
                log.info("%s: refreshed the access token (valid %d s)", self.name, new.lifetime)
                self._record("refresh", "refreshed")
                return new
            except AuthError as exc:
                if exc.pause or exc.reaction is not Reaction.RELOGIN:
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
        # A token a person solved goes first; a refused one is renewed like a drive call's.
        captcha = _CaptchaSlot(
            self._sign_in_captcha,
            creds.captcha_token or "",
            math.inf if creds.captcha_token else 0.0,
        )
        body = self._request(
            "POST",
            self.user_api + "/v1/auth/signin",
            json={
                "client_id": self.platform.client_id,
                "client_secret": self.platform.client_secret,
                "username": creds.username,
                "password": creds.password,
            },
            idempotent=False,
            captcha=captcha,
            captcha_field="captcha_token",
            signing_in=True,
        )
        self.credentials = replace(creds, captcha_token=None)
        token = Token.from_wire(body, self.platform.client_id)
        self.last_sign_in = time.time()
        log.info("%s: signed in as %s", self.name, creds.username)
        self._record("sign_in", "signed in with the password")
        return token

    # ------------------------------------------------------------------ captcha tokens
    def _sign_in_captcha(self) -> CaptchaAnswer:
        login = self.credentials.username
        if "@" in login:
            meta = {"email": login}
        elif login.lstrip("+").isdigit() and 11 <= len(login.lstrip("+")) <= 18:
            meta = {"phone_number": login}
        else:
            meta = {"username": login}
        return self._captcha_init(SIGN_IN_ACTION, meta, signing_in=True)

    def _drive_captcha(self) -> CaptchaAnswer:
        return self._captcha_init(DRIVE_ACTION, self._sign_meta(self.user_id), signing_in=False)

    def _anonymous_captcha(self, action: str) -> _CaptchaSlot:
        with self._anonymous_lock:
            slot = self._anonymous.get(action)
            if slot is None:
                # Anonymous: the sign's meta carries no user id, whoever this session is.
                slot = _CaptchaSlot(
                    lambda: self._captcha_init(action, self._sign_meta(""), signing_in=False)
                )
                self._anonymous[action] = slot
            return slot

    def _captcha_init(
        self, action: str, meta: dict[str, str], *, signing_in: bool
    ) -> CaptchaAnswer:
        answer = CaptchaAnswer.from_wire(
            self._auth_post(
                "/v1/shield/captcha/init",
                {
                    "action": action,
                    "client_id": self.platform.client_id,
                    "device_id": self.device_id,
                    "meta": meta,
                },
                signing_in=signing_in,
            )
        )
        if answer.human_check:
            raise HumanCheckRequired(answer.url, self.login_hint)
        return answer

    def _sign_meta(self, user_id: str) -> dict[str, str]:
        timestamp = str(int(time.time() * 1000))
        return {
            "captcha_sign": identity.sign_for(self.platform, self.device_id, timestamp),
            "client_version": self.platform.client_version,
            "package_name": self.platform.package_name,
            "timestamp": timestamp,
            "user_id": user_id,
        }

    def _auth_post(
        self, path: str, body: dict[str, Any], *, signing_in: bool = True
    ) -> dict[str, Any]:
        """A call to the user host (no access token). Retries only what is safe; while
        ``signing_in``, a failure that pauses sign-ins is not retried at all."""
        return self._request(
            "POST", self.user_api + path, json=body, idempotent=False, signing_in=signing_in
        )

    # ------------------------------------------------------------------ calls
    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        signed_in: bool = True,
        captcha_action: str | None = None,
    ) -> dict[str, Any]:
        """One call to the drive host with the whole policy: tokens, captcha, retries,
        typed errors. The answer is PikPak's JSON object (for :mod:`.types` to read); a
        call that had taken effect already (PikPak says so: ``ALREADY_DONE``) answers ``{}``.

        ``signed_in=False`` calls anonymously, as a share's reader does: the platform's
        headers and a captcha token for ``captcha_action``, never an access token, a
        refresh or a sign-in. Signed in, one captcha token serves every action."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE", "PUT")
        captcha = (
            self._captcha if signed_in else self._anonymous_captcha(captcha_action or DRIVE_ACTION)
        )
        return self._request(
            method,
            self.drive_api + path,
            params=params,
            json=json,
            idempotent=idempotent,
            signed_in=signed_in,
            captcha=captcha,
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        params: dict[str, Any] | None = None,
        json: Any = None,
        signed_in: bool = False,
        captcha: _CaptchaSlot | None = None,
        captcha_field: str = "",
        signing_in: bool = False,
    ) -> dict[str, Any]:
        """One request within the retry policy, acting on the error table's reactions.

        ``captcha`` supplies the X-Captcha-Token (and ``captcha_field`` of the JSON body,
        at sign-in); while ``signing_in`` a failure that pauses sign-ins is raised at once."""
        # Refresh again only if a *new* token is refused (the token may expire again
        # during a long call); the same token refused twice is a real auth problem.
        refused_tokens: set[str] = set()
        renewed_captcha = False

        def attempt() -> dict[str, Any]:
            nonlocal renewed_captcha
            headers = self._identity_headers()
            token = self.token() if signed_in else None
            if token is not None:
                headers["Authorization"] = f"Bearer {token.access_token}"
            shown = captcha.get() if captcha is not None else ""
            if shown:
                headers["X-Captcha-Token"] = shown
            body = json | {captcha_field: shown} if captcha_field else json
            try:
                return self._exchange(method, url, headers, params, body)
            except PikPakError as exc:
                rule = exc.rule
                if rule is None or (signing_in and rule.pause):
                    raise  # asking again cannot help: the caller pauses sign-ins instead
                reaction = rule.reaction
                if reaction is Reaction.ALREADY_DONE:
                    log.debug("%s: %s; that is what was asked", self.name, rule.log)
                    return {}
                if reaction in (Reaction.REFRESH, Reaction.RELOGIN) and token is not None:
                    if token.access_token not in refused_tokens:
                        # refresh() re-reads the store, refreshes, or signs in again.
                        refused_tokens.add(token.access_token)
                        self._revoked = token.access_token
                        log.info("%s: %s; renewing the login", self.name, rule.log)
                        self.refresh(rejected=token.access_token)
                        raise Again(exc, 0) from None
                if reaction is Reaction.RENEW_CAPTCHA and captcha is not None:
                    if not renewed_captcha:
                        renewed_captcha = True
                        captcha.forget(shown)
                        raise Again(exc, 0) from None
                again = self.retry.again_for(exc, idempotent=idempotent)
                if again is None:
                    raise
                if reaction is Reaction.BACK_OFF:
                    self._counts["back_off"] += 1
                    log.warning("%s: %s; backing off", self.name, rule.log)
                elif exc.status:
                    log.info("%s: %s (HTTP %d); retrying", self.name, rule.log, exc.status)
                raise again from None

        return self.retry.run(attempt)

    def _identity_headers(self) -> dict[str, str]:
        """Who is calling: the platform's client and this session's device."""
        headers = {
            "X-Client-Id": self.platform.client_id,
            "X-Client-Version": self.platform.client_version,
            "X-Device-Id": self.device_id,
        }
        if self.platform.name == "web":
            headers["Referer"] = "https://mypikpak.com/"
        return headers

    def _exchanged(self, method: str, url: str, outcome: str, started: float) -> None:
        if self.on_exchange is not None:
            self.on_exchange(method, urlsplit(url).path, outcome, time.perf_counter() - started)

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, Any] | None,
        json: Any,
    ) -> dict[str, Any]:
        """One HTTP exchange: PikPak's JSON answer, or the error table's exception."""
        started = time.perf_counter()
        timeout = self.connection.timeout
        swapped = other_domain(url) if self._other_domain else None
        try:
            try:
                resp = self.http.request(
                    method,
                    swapped or url,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=timeout,
                )
            except requests.ConnectionError as exc:
                other = url if swapped else other_domain(url)
                # Only a request that surely never reached PikPak is sent elsewhere (the
                # error table's word): a call that may have taken effect is not repeated.
                if other is None or not transport_failure(exc, url)[1].unchanged:
                    raise
                resp = self.http.request(
                    method, other, params=params, json=json, headers=headers, timeout=timeout
                )
                self._other_domain = not self._other_domain
                log.warning(
                    "%s: PikPak's API at %s did not connect (%s); calling %s from now on",
                    self.name,
                    host_of(swapped or url),
                    cause_in_words(exc),
                    host_of(other),
                )
        except requests.RequestException as exc:
            self._exchanged(method, url, "transport", started)
            raise transport_failure(exc, url, timeout)[0] from None
        self._exchanged(
            method, url, "ok" if resp.status_code < 400 else str(resp.status_code), started
        )
        log.debug(
            "%s: %s %s -> %d (%.0f ms)",
            self.name,
            method,
            urlsplit(url).path,
            resp.status_code,
            (time.perf_counter() - started) * 1000,
        )
        if resp.status_code < 400:
            try:
                return resp.json() if resp.content else {}
            except ValueError:
                raise not_json(resp.status_code)[0] from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        raise error_from_answer(resp.status_code, body, retry_after)[0]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
