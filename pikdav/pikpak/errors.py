"""PikPak's errors: one hierarchy to catch, and one table that decides what to do about each.

PikPak answers errors as ``{"error": reason, "error_code": n, "error_description": text,
"details": [...]}``; a share answers a refusal in a 200 body's ``share_status``; the object
store (Aliyun OSS spoken to as S3) answers S3 error codes; and the way there can fail
without any answer. Each of these is parsed once, here, into a :class:`PikPakError`
subclass and the :class:`Rule` of its row: the rule's reaction says what the client does
(refresh, renew a captcha, back off, retry, treat it as done, give up), ``final`` whether
any later retry could help, and ``log`` what the user reads. Nothing else in the code base
decides this.
"""

from __future__ import annotations

import enum
import errno
import http.client
import math
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions


class PikPakError(Exception):
    """Anything PikPak (or the way to it) refused. ``str()`` is safe to log and to show.

    ``rule`` is the row of the error table this came from (None for errors raised
    directly); ``reaction`` and ``final`` come from it, so a caller acts on the error
    without deciding again what it means."""

    # Without a rule: True when no retry can fix an error of this class.
    FINAL = False

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        code: int = 0,
        retry_after: float | None = None,
        hint: str = "",
        pause: str = "",
        rule: Rule | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.code = code
        self.retry_after = retry_after
        self.hint = hint
        # Non-empty: met while signing in or refreshing, this failure stops sign-ins for a
        # while (a key of LOGIN_PAUSES); asking again at once cannot help.
        self.pause = pause
        self.rule = rule

    @property
    def reaction(self) -> Reaction:
        return self.rule.reaction if self.rule is not None else Reaction.GIVE_UP

    @property
    def final(self) -> bool:
        """True when no retry, now or later, can fix this (a full drive, a missing item, a
        refused name): a caller that retries in the background stops at once."""
        return self.rule.final if self.rule is not None else type(self).FINAL

    @property
    def problem(self) -> str:
        """What went wrong, in a sentence for a log line or a paused sign-in."""
        return str(self)


class AuthError(PikPakError):
    """The account's credentials or tokens were refused; a person has to act."""


class CaptchaError(PikPakError):
    """A captcha token was refused."""


class HumanCheckRequired(CaptchaError):
    """PikPak wants a person to solve a puzzle at ``url`` before it lets this device in.

    The message never carries the URL (it holds a captcha token): the URL goes to the one
    place that shows it to the person who asked, `pikdav login`'s terminal."""

    def __init__(self, url: str, login: str = "pikdav login") -> None:
        super().__init__(
            "PikPak asks for a human check (a puzzle) before it lets this device sign in. "
            f"Run `{login}`: it prints the page to open; solve the puzzle, then run "
            f"`{login} --captcha-token TOKEN` with the token the page gives you.",
            hint="human check",
            pause="human_check",
        )
        self.url = url

    @property
    def problem(self) -> str:
        return LOGIN_PAUSES["human_check"].short


class LoginPaused(AuthError):
    """Signing in failed for a reason that asking again cannot fix, so pikdav does not ask
    PikPak again until ``until`` (Unix time); every call that needs a login fails at once.

    ``problem`` says what is wrong and ``remedy`` what a person should do; both are safe to
    show to anyone (no token, no password, no URL)."""

    def __init__(self, kind: str, problem: str, until: float, login: str = "pikdav login") -> None:
        pause = LOGIN_PAUSES.get(kind, LOGIN_PAUSES["other"])
        remedy = pause.remedy.format(login=login)
        left = max(1, math.ceil(until - time.time()))
        stamp = time.strftime("%H:%M:%S", time.localtime(until))
        super().__init__(
            f"{problem.rstrip('.')}. pikdav does not sign in to PikPak again before {stamp} "
            f"(in {left} s). To fix it: {remedy}.",
            retry_after=left,
            hint=pause.short,
            pause=kind,
        )
        self.kind = kind
        self.detail = problem
        self.short = pause.short
        self.remedy = remedy
        self.until = until

    @property
    def problem(self) -> str:
        return self.detail

    def seconds_left(self) -> int:
        return max(1, math.ceil(self.until - time.time()))


class RateLimited(PikPakError):
    """429 or "operation too frequent": PikPak wants us to slow down."""


class NotFound(PikPakError):
    FINAL = True


class Conflict(PikPakError):
    """A name clash, or a move/copy onto the folder the item is already in."""


class QuotaExceeded(PikPakError):
    """No space left, or a daily limit reached."""

    FINAL = True


class Stopped(PikPakError):
    """An upload given up on the way because nobody wants it any more (the file was deleted,
    or a newer PUT of the same name replaced it); what it had made is deleted."""

    FINAL = True


class Transient(PikPakError):
    """A fault worth retrying: 5xx, a dropped connection, an operation still in progress."""


class StoreUnreachable(Transient):
    """The shared token store (Redis) does not answer. Without its lock no refresh is made:
    a second refresh elsewhere would kill the first one's single-use refresh token."""


LINK_RETRY_AFTER = 15  # seconds; PikPak's links appear within about a minute of an upload


class StreamGone(Transient):
    """The download server did not deliver the rest of the file; ``delivered`` bytes went
    out before."""

    def __init__(self, message: str, delivered: int) -> None:
        super().__init__(message)
        self.delivered = delivered


class LinkNotReady(Transient):
    """PikPak has the file but no download link for it yet (for a while after an upload)."""


class Unreachable(Transient):
    """No answer from PikPak at all: refused, name not resolved, TLS, timeout."""


class ShareError(PikPakError):
    """A shared link cannot be read; the message says why and what to do."""

    FINAL = True


class ShareNotFound(ShareError, NotFound):
    """The share does not exist, or its owner deleted it or its files."""


class ShareExpired(ShareError, NotFound):
    """The share's owner set an expiry, and it has passed."""


class ShareBlocked(ShareError):
    """PikPak blocked the share (``SENSITIVE_RESOURCE``)."""


class ShareRegionBlocked(ShareError):
    """PikPak does not offer shares to the network pikdav runs in."""


class SharePassCodeRefused(ShareError, AuthError):
    """The share needs a pass code, and the one configured is missing or wrong."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests wraps urllib3, which wraps the socket's error."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        todo += [reason] if isinstance(reason, BaseException) else []
        todo += [a for a in current.args if isinstance(a, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def cause_in_words(exc: BaseException, timeout: tuple[float, float] | None = None) -> str:
    """What went wrong on the way to a server, in words (never a URL)."""
    causes = list(_causes(exc))

    def found(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in causes)

    connect, read = timeout or (None, None)
    # Order matters: urllib3's NewConnectionError is itself a ConnectTimeoutError.
    if found(ConnectionRefusedError):
        return "connection refused"
    if found(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return "the host name could not be resolved (DNS)"
    if found(ssl.SSLCertVerificationError):
        return (
            "its TLS certificate is not trusted (behind a TLS-intercepting proxy, set the "
            "account's ca_cert)"
        )
    if found(ssl.SSLError, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    if found(requests.exceptions.ProxyError, urllib3.exceptions.ProxyError):
        return "the proxy refused the connection"
    if found(requests.ConnectTimeout):
        return "timed out while connecting" + (f" ({connect:g} s)" if connect else "")
    if found(requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for an answer" + (f" ({read:g} s)" if read else "")
    for cause in causes:
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "no route to the host (network unreachable)"
    if found(ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
        return "the connection was closed before an answer came"
    if found(urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError):
        return "the connection broke in the middle of the answer"
    if found(TimeoutError, urllib3.exceptions.TimeoutError):
        return "timed out"
    return f"network error ({type(exc).__name__})"


def unreachable(
    exc: BaseException, url: str, timeout: tuple[float, float] | None = None
) -> Unreachable:
    """A network failure as a sentence: which host:port, and what went wrong in words.

    Never the URL itself: its path and query may carry ids or signatures."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    where = f"{parts.hostname or '?'}:{port}"
    return Unreachable(f"cannot reach PikPak at {where}: {cause_in_words(exc, timeout)}")


class Reaction(enum.Enum):
    REFRESH = "refresh the access token, then retry once"
    RELOGIN = "re-read the token store, else sign in again with the stored password"
    RENEW_CAPTCHA = "get a new captcha token, then retry once"
    RENEW_PASS_CODE = "get a new pass-code token for the share, then retry once"  # noqa: S105
    BACK_OFF = "wait (Retry-After or exponential), then retry within the bound"
    RETRY = "retry with backoff within the bound"
    ALREADY_DONE = "the call had taken effect already (a repeated call): success"
    GIVE_UP = "raise to the caller"


@dataclass(frozen=True)
class Rule:
    reaction: Reaction
    error: type[PikPakError]
    log: str
    pause: str = ""  # at sign-in or refresh: stop signing in for a while (LOGIN_PAUSES)
    # No retry, now or later, can fix it; None: as the error class says (FINAL).
    final: bool | None = None
    # PikPak says nothing happened, so even a call that is not idempotent may be repeated.
    unchanged: bool = False

    def __post_init__(self) -> None:
        if self.final is None:
            object.__setattr__(self, "final", self.error.FINAL)


@dataclass(frozen=True)
class Pause:
    """What a person reads while sign-ins are paused: ``short`` for DAV clients, ``remedy``
    (with ``{login}``, the `pikdav login -c …` command for the config in use) for everyone."""

    short: str
    remedy: str


# Why sign-ins stop for a while, and what a person does about each. The pause lasts
# retry.SIGN_IN_PAUSE; a `pikdav login` (a new login in the token store) ends it.
LOGIN_PAUSES: dict[str, Pause] = {
    "password_refused": Pause(
        "PikPak refused the configured username or password",
        "put the right password in the config, then run `{login}` once",
    ),
    "access_prohibited": Pause(
        "PikPak refuses password sign-in from this network",
        "sign in from another network and give pikdav the refresh token: "
        "`{login} --refresh-token TOKEN`",
    ),
    "human_check": Pause(
        "PikPak wants a human check (a puzzle) before it lets this device sign in",
        "run `{login}`: it prints the page to open; solve the puzzle, then run "
        "`{login} --captcha-token TOKEN` with the token the page gives you",
    ),
    "too_frequent": Pause(
        "PikPak says sign-ins from here are too frequent",
        "wait: pikdav tries again by itself when the pause ends (restarting does not help; "
        "it would ask again), or sign in later with `{login}`",
    ),
    "no_password": Pause(
        "the gateway has no working PikPak login and no password to sign in with",
        "run `{login}` to sign in (or set the account's password in the config so pikdav "
        "can sign in by itself)",
    ),
    "client_refused": Pause(
        "PikPak does not accept the configured client identity",
        "check the account's platform setting, then run `{login}`",
    ),
    "other": Pause("PikPak refused the sign-in", "see pikdav's log, then run `{login}`"),
}


_TOO_FREQUENT = re.compile(r"too frequent", re.IGNORECASE)
# Shares refused to some networks (mainland China among them) say so in words only.
_REGION_BLOCKED = re.compile(r"not available in the current region", re.IGNORECASE)

# Keyed by PikPak's reason string ("error"); codes are checked where one reason has several.
REACTIONS: dict[str, Rule] = {
    "unauthenticated": Rule(Reaction.REFRESH, AuthError, "PikPak refused the access token"),
    "invalid_grant": Rule(
        Reaction.RELOGIN,
        AuthError,
        "PikPak refused the refresh token (it was used already or expired)",
    ),
    "captcha_invalid": Rule(
        Reaction.RENEW_CAPTCHA, CaptchaError, "PikPak refused the captcha token"
    ),
    "captcha_required": Rule(Reaction.RENEW_CAPTCHA, CaptchaError, "PikPak wants a captcha token"),
    "invalid_account_or_password": Rule(
        Reaction.GIVE_UP,
        AuthError,
        "PikPak refused the username or password (accounts made with Google/Facebook need a "
        "password set in the PikPak app)",
        pause="password_refused",
    ),
    "invalid_client": Rule(
        Reaction.GIVE_UP,
        AuthError,
        "PikPak does not accept this client id; check the platform setting",
        pause="client_refused",
    ),
    "file_not_found": Rule(Reaction.GIVE_UP, NotFound, "not found on PikPak"),
    "not_found": Rule(Reaction.GIVE_UP, NotFound, "not found on PikPak"),
    "task_not_found": Rule(Reaction.GIVE_UP, NotFound, "PikPak task not found"),
    "file_in_recycle_bin": Rule(Reaction.GIVE_UP, NotFound, "the item is in the trash"),
    "file_duplicated_name": Rule(
        Reaction.GIVE_UP, Conflict, "an item with that name already exists"
    ),
    # A rename to the name the item has: what was asked is already so. This is also how
    # PikPak answers a rename repeated after its first answer was lost.
    "file_rename_to_same_name": Rule(Reaction.ALREADY_DONE, Conflict, "the name is unchanged"),
    "file_move_or_copy_to_cur": Rule(
        Reaction.GIVE_UP, Conflict, "the item is already in that folder"
    ),
    "file_name_empty": Rule(Reaction.GIVE_UP, PikPakError, "the name is empty", final=True),
    "file_name_invalid": Rule(Reaction.GIVE_UP, PikPakError, "the name is not allowed", final=True),
    "invalid_argument": Rule(Reaction.GIVE_UP, PikPakError, "PikPak refused the request"),
    "file_rename_uncompleted": Rule(
        Reaction.RETRY, Transient, "PikPak is still processing the item", unchanged=True
    ),
    "file_space_not_enough": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "the PikPak drive is full; free space or upgrade"
    ),
    "task_daily_create_limit_vip": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "PikPak's daily limit of cloud downloads is reached"
    ),
    "too_many_requests": Rule(
        Reaction.BACK_OFF, RateLimited, "PikPak says too many requests", pause="too_frequent"
    ),
    "aborted": Rule(
        Reaction.BACK_OFF,
        RateLimited,
        "PikPak says the operation is too frequent",
        pause="too_frequent",
    ),
    # A share's file asked for with a pass-code token PikPak no longer accepts.
    "share_pass_code_invalid": Rule(
        Reaction.RENEW_PASS_CODE,
        SharePassCodeRefused,
        "PikPak refused the share's pass code; set the share's pass code in the config",
    ),
}
_BY_CODE: dict[int, Rule] = {
    16: REACTIONS["unauthenticated"],
    4126: REACTIONS["invalid_grant"],
    4022: REACTIONS["invalid_account_or_password"],
    4121: REACTIONS["unauthenticated"],
    4122: REACTIONS["unauthenticated"],
    10: REACTIONS["aborted"],
    11: REACTIONS["task_daily_create_limit_vip"],
    8: REACTIONS["file_space_not_enough"],
    5: REACTIONS["not_found"],
}
_BY_STATUS_TOO_FREQUENT = REACTIONS["aborted"]
_TRANSIENT = Rule(Reaction.RETRY, Transient, "PikPak had a temporary fault")
# 503: PikPak did not take the call in, so any call may be repeated.
_UNAVAILABLE = Rule(Reaction.RETRY, Transient, "PikPak had a temporary fault", unchanged=True)
_UNKNOWN = Rule(Reaction.GIVE_UP, PikPakError, "PikPak refused the request")
_NOT_JSON = Rule(Reaction.GIVE_UP, Transient, "PikPak answered with a body that is not JSON")


_ACCESS_PROHIBITED = Rule(
    Reaction.GIVE_UP,
    AuthError,
    "PikPak refuses password sign-in from this network (often a datacenter IP); sign in "
    "from elsewhere and give pikdav the refresh token",
    pause="access_prohibited",
)

_SHARE_REGION_BLOCKED = Rule(
    Reaction.GIVE_UP,
    ShareRegionBlocked,
    "PikPak does not offer shares to this network's region; set a proxy in another region "
    "for the share's account",
)

# A share's answer carries its state in ``share_status`` (with HTTP 200).
SHARE_STATUSES: dict[str, Rule] = {
    "PASS_CODE_EMPTY": Rule(
        Reaction.RENEW_PASS_CODE,
        SharePassCodeRefused,
        "the share needs a pass code; set the share's pass code in the config",
    ),
    "PASS_CODE_ERROR": Rule(
        Reaction.RENEW_PASS_CODE,
        SharePassCodeRefused,
        "the share needs the right pass code; check the share's pass code in the config",
    ),
    "NOT_FOUND": Rule(
        Reaction.GIVE_UP,
        ShareNotFound,
        "the share does not exist (its owner may have deleted it); remove it from the config",
    ),
    "DELETED": Rule(
        Reaction.GIVE_UP,
        ShareNotFound,
        "the share's files were deleted by its owner; remove it from the config",
    ),
    "EXPIRED": Rule(
        Reaction.GIVE_UP,
        ShareExpired,
        "the share has expired; ask its owner for a new link",
    ),
    "SENSITIVE_RESOURCE": Rule(
        Reaction.GIVE_UP,
        ShareBlocked,
        "PikPak blocked this share (sensitive content); it cannot be read by anyone",
    ),
}
_SHARE_UNKNOWN = Rule(Reaction.GIVE_UP, ShareError, "the share cannot be opened")

# The object store's S3 error codes (botocore's ``Error.Code``). Credentials come with the
# upload ticket: when they fail, only a new upload (a new ticket) can help.
OBJECT_STORE: dict[str, Rule] = {
    "ExpiredToken": Rule(Reaction.GIVE_UP, Transient, "the upload credentials expired"),
    "InvalidAccessKeyId": Rule(
        Reaction.GIVE_UP, Transient, "the store refused the upload credentials"
    ),
    "InvalidToken": Rule(Reaction.GIVE_UP, Transient, "the store refused the upload credentials"),
    "SignatureDoesNotMatch": Rule(
        Reaction.GIVE_UP, Transient, "the store refused the upload's signature"
    ),
    "AccessDenied": Rule(Reaction.GIVE_UP, Transient, "the store refused the upload"),
    "NoSuchUpload": Rule(
        Reaction.GIVE_UP, Transient, "the store no longer knows this multipart upload"
    ),
    "CallbackFailed": Rule(
        Reaction.GIVE_UP,
        Transient,
        "PikPak refused the uploaded content (size or hash mismatch)",
    ),
    "EntityTooLarge": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "PikPak's store refused the size of this file"
    ),
    "QuotaExceeded": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "PikPak's store refused the size of this file"
    ),
    "SlowDown": Rule(Reaction.BACK_OFF, RateLimited, "the store asks to slow down"),
    "RequestTimeout": Rule(Reaction.RETRY, Transient, "the store timed out"),
}
_STORE_FAULT = Rule(Reaction.RETRY, Transient, "the store had a temporary fault")
_STORE_REFUSED = Rule(Reaction.GIVE_UP, Transient, "the store refused the upload")
# Anything else that breaks an upload (the spool cannot be read, the store's library fails in
# a way of its own): the upload is given up and cleaned up; the client may send it again.
_UPLOAD_BROKE = Rule(Reaction.GIVE_UP, Transient, "the upload to PikPak's store failed")

# No answer at all. A request that surely never left (refused, name not resolved, connect
# timeout) may be repeated whatever it was; one lost on the way back only if idempotent.
_NOT_SENT = Rule(Reaction.RETRY, Unreachable, "cannot reach PikPak", unchanged=True)
_LOST = Rule(Reaction.RETRY, Unreachable, "the connection to PikPak broke")


def rule_for(status: int, reason: str, code: int, description: str) -> Rule:
    """The one place that maps an answer to a reaction."""
    if reason == "invalid_grant" and "AccessProhibited" in description:
        return _ACCESS_PROHIBITED
    if _TOO_FREQUENT.search(description):
        # "Aborted - Your operation is too frequent" comes as captcha_invalid/4002 at sign-in
        # and as code 10 elsewhere: never answer it by asking again at once.
        return _BY_STATUS_TOO_FREQUENT
    if _REGION_BLOCKED.search(description):
        return _SHARE_REGION_BLOCKED
    if status == 429:
        return REACTIONS["too_many_requests"]
    rule = REACTIONS.get(reason) or _BY_CODE.get(code)
    if rule is not None:
        return rule
    if status == 401:
        return REACTIONS["unauthenticated"]
    if status == 503:
        return _UNAVAILABLE
    if status in (500, 502, 504, 509) or status >= 520:
        return _TRANSIENT
    if status == 404:
        return REACTIONS["not_found"]
    return _UNKNOWN


def error_from_answer(
    status: int,
    body: Any,
    retry_after: float | None = None,
) -> tuple[PikPakError, Rule]:
    """Parse an error answer (JSON body or not) into an exception and its rule.

    The description is kept out of the message when it may carry a token: PikPak's
    invalid_grant description echoes the refused refresh token."""
    body = body if isinstance(body, dict) else {}
    reason = str(body.get("error") or "")
    try:
        code = int(body.get("error_code") or 0)
    except (TypeError, ValueError):
        code = 0
    description = str(body.get("error_description") or "")
    rule = rule_for(status, reason, code, description)
    shown = redact(description)[:200] if description else f"HTTP {status}"
    message = (
        f"{rule.log} ({reason or 'HTTP ' + str(status)}"
        + (f" {code}" if code else "")
        + f": {shown})"
    )
    exc = rule.error(
        message,
        status=status,
        reason=reason,
        code=code,
        retry_after=retry_after,
        pause=rule.pause,
        rule=rule,
    )
    return exc, rule


def not_json(status: int) -> tuple[PikPakError, Rule]:
    """A success status whose body is not JSON (a proxy's page, a cut answer)."""
    exc = Transient(f"PikPak answered {status} with a body that is not JSON", rule=_NOT_JSON)
    return exc, _NOT_JSON


def share_refusal(status: str, text: str) -> tuple[PikPakError, Rule] | None:
    """A share answer's ``share_status`` (None when it is ``OK``) as an error and its rule."""
    if not status or status == "OK":
        return None
    rule = SHARE_STATUSES.get(status, _SHARE_UNKNOWN)
    if _REGION_BLOCKED.search(text):
        rule = _SHARE_REGION_BLOCKED
    shown = redact(text)[:200] if text and text != status else ""
    message = f"{rule.log} ({status}" + (f": {shown})" if shown else ")")
    return rule.error(message, reason=status, rule=rule), rule


def _not_sent(exc: BaseException) -> bool:
    """True when the request surely never reached the server (safe to repeat any call)."""
    return any(
        isinstance(
            c,
            (
                requests.ConnectTimeout,
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ConnectTimeoutError,
                # The proxy could not open the tunnel: nothing reached PikPak.
                urllib3.exceptions.ProxyError,
                ConnectionRefusedError,
            ),
        )
        for c in _causes(exc)
    )


def transport_failure(
    exc: BaseException, url: str, timeout: tuple[float, float] | None = None
) -> tuple[Unreachable, Rule]:
    """A request that got no answer, as an exception (where, and why in words) and its rule."""
    rule = _NOT_SENT if _not_sent(exc) else _LOST
    failure = unreachable(exc, url, timeout)
    failure.rule = rule
    return failure, rule


class CdnAnswer(enum.Enum):
    """How a download server's answer to a ranged read is taken (:func:`cdn_answer`)."""

    BYTES = "bytes"  # the bytes asked for
    STALE_LINK = "stale link"  # expired, or issued to another address: a fresh link, once
    BUSY = "busy"  # more connections than PikPak allows: fewer connections, then again
    FAILED = "failed"  # anything else: the stream resumes elsewhere or ends


def cdn_answer(status: int, *, whole_file: bool = False) -> CdnAnswer:
    """The one table for the CDN's answers (the API's is :func:`rule_for`). ``whole_file``:
    the read starts at byte 0, where a 200 with the whole file is the bytes asked for too."""
    if status == 206 or (status == 200 and whole_file):
        return CdnAnswer.BYTES
    if status in (403, 404, 410):
        return CdnAnswer.STALE_LINK
    if status == 503:
        return CdnAnswer.BUSY
    return CdnAnswer.FAILED


def upload_failure(exc: Exception) -> PikPakError:
    """What broke an upload, as the error table says it: PikPak's own errors as they are,
    anything else as a failed upload (its type named, never its text: it may hold a URL)."""
    if isinstance(exc, PikPakError):
        return exc
    return _UPLOAD_BROKE.error(f"{_UPLOAD_BROKE.log}: {type(exc).__name__}", rule=_UPLOAD_BROKE)


def object_store_error(exc: BaseException, endpoint: str) -> tuple[PikPakError, Rule]:
    """A failure of a call to the object store (botocore's exception) as an exception and
    its rule. It only reads the exception: building a log line with it never raises."""
    if isinstance(exc, PikPakError):
        return exc, exc.rule or _STORE_REFUSED
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return transport_failure(exc, endpoint)
    error = response.get("Error") if isinstance(response.get("Error"), dict) else {}
    code = str(error.get("Code") or "")
    meta = response.get("ResponseMetadata")
    status = meta.get("HTTPStatusCode", 0) if isinstance(meta, dict) else 0
    status = status if isinstance(status, int) else 0
    rule = OBJECT_STORE.get(code)
    if rule is None:
        if status == 429 or status == 503:
            rule = OBJECT_STORE["SlowDown"]
        elif status >= 500:
            rule = _STORE_FAULT
        else:
            rule = _STORE_REFUSED
    shown = code or (f"HTTP {status}" if status else type(exc).__name__)
    return (
        rule.error(
            f"the upload to PikPak's store failed: {rule.log} ({shown})",
            status=status,
            reason=code,
            rule=rule,
        ),
        rule,
    )


_SECRET_PATTERNS = (
    re.compile(r"(RefreshToken\s+)\S+"),
    re.compile(r"os\.[A-Za-z0-9_\-]{10,}"),
    re.compile(r"ck0\.[A-Za-z0-9_\-]{10,}"),
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
    re.compile(r"([?&](sig|signature|token|Signature|X-Amz-Signature)=)[^&\s]+"),
)


def redact(text: str) -> str:
    """Remove tokens and URL signatures from a text before it reaches a log or a user."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text
