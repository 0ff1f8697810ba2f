"""PikPak's errors: one hierarchy to catch, and one table that decides what to do about each.

PikPak answers errors as ``{"error": reason, "error_code": n, "error_description": text,
"details": [...]}``. The body is parsed once, here, into a :class:`PikPakError` subclass;
:data:`REACTIONS` says for every known error what the client does and what the user reads
in the log. Nothing else in the code base decides this.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class PikPakError(Exception):
    """Anything PikPak (or the way to it) refused. ``str()`` is safe to log and to show."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        code: int = 0,
        retry_after: float | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.code = code
        self.retry_after = retry_after
        self.hint = hint


class AuthError(PikPakError):
    """The account's credentials or tokens were refused; a person has to act."""


class CaptchaError(PikPakError):
    """A captcha token was refused."""


class HumanCheckRequired(CaptchaError):
    """PikPak wants a person to solve a puzzle at ``url`` before it lets this device in."""

    def __init__(self, url: str) -> None:
        super().__init__(
            "PikPak asks for a human check before signing in. Open the link printed by "
            "`pikdav login`, solve the puzzle, then run `pikdav login --captcha-token TOKEN` "
            "with the token the page gives you.",
            hint="human check",
        )
        self.url = url


class RateLimited(PikPakError):
    """429 or "operation too frequent": PikPak wants us to slow down."""


class NotFound(PikPakError):
    pass


class Conflict(PikPakError):
    """A name clash, or a move/copy onto the folder the item is already in."""


class QuotaExceeded(PikPakError):
    """No space left, or a daily limit reached."""


class Transient(PikPakError):
    """A fault worth retrying: 5xx, a dropped connection, an operation still in progress."""


class Reaction(enum.Enum):
    REFRESH = "refresh the access token, then retry once"
    RELOGIN = "re-read the token store, else sign in again with the stored password"
    RENEW_CAPTCHA = "get a new captcha token, then retry once"
    BACK_OFF = "wait (Retry-After or exponential), then retry within the bound"
    RETRY = "retry with backoff within the bound"
    GIVE_UP = "raise to the caller"


@dataclass(frozen=True)
class Rule:
    reaction: Reaction
    error: type[PikPakError]
    log: str


_TOO_FREQUENT = re.compile(r"too frequent", re.IGNORECASE)

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
    ),
    "invalid_client": Rule(
        Reaction.GIVE_UP,
        AuthError,
        "PikPak does not accept this client id; check the platform setting",
    ),
    "file_not_found": Rule(Reaction.GIVE_UP, NotFound, "not found on PikPak"),
    "not_found": Rule(Reaction.GIVE_UP, NotFound, "not found on PikPak"),
    "task_not_found": Rule(Reaction.GIVE_UP, NotFound, "PikPak task not found"),
    "file_in_recycle_bin": Rule(Reaction.GIVE_UP, NotFound, "the item is in the trash"),
    "file_duplicated_name": Rule(
        Reaction.GIVE_UP, Conflict, "an item with that name already exists"
    ),
    "file_rename_to_same_name": Rule(Reaction.GIVE_UP, Conflict, "the name is unchanged"),
    "file_move_or_copy_to_cur": Rule(
        Reaction.GIVE_UP, Conflict, "the item is already in that folder"
    ),
    "file_name_empty": Rule(Reaction.GIVE_UP, PikPakError, "the name is empty"),
    "file_name_invalid": Rule(Reaction.GIVE_UP, PikPakError, "the name is not allowed"),
    "invalid_argument": Rule(Reaction.GIVE_UP, PikPakError, "PikPak refused the request"),
    "file_rename_uncompleted": Rule(
        Reaction.RETRY, Transient, "PikPak is still processing the item"
    ),
    "file_space_not_enough": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "the PikPak drive is full; free space or upgrade"
    ),
    "task_daily_create_limit_vip": Rule(
        Reaction.GIVE_UP, QuotaExceeded, "PikPak's daily limit of cloud downloads is reached"
    ),
    "too_many_requests": Rule(Reaction.BACK_OFF, RateLimited, "PikPak says too many requests"),
    "aborted": Rule(Reaction.BACK_OFF, RateLimited, "PikPak says the operation is too frequent"),
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
_UNKNOWN = Rule(Reaction.GIVE_UP, PikPakError, "PikPak refused the request")


_ACCESS_PROHIBITED = Rule(
    Reaction.GIVE_UP,
    AuthError,
    "PikPak refuses password sign-in from this network (often a datacenter IP); sign in "
    "from elsewhere and give pikdav the refresh token: pikdav login --refresh-token TOKEN",
)


def rule_for(status: int, reason: str, code: int, description: str) -> Rule:
    """The one place that maps an answer to a reaction."""
    if reason == "invalid_grant" and "AccessProhibited" in description:
        return _ACCESS_PROHIBITED
    if _TOO_FREQUENT.search(description):
        # "Aborted - Your operation is too frequent" comes as captcha_invalid/4002 at sign-in
        # and as code 10 elsewhere: never answer it by asking again at once.
        return _BY_STATUS_TOO_FREQUENT
    if status == 429:
        return REACTIONS["too_many_requests"]
    rule = REACTIONS.get(reason) or _BY_CODE.get(code)
    if rule is not None:
        return rule
    if status == 401:
        return REACTIONS["unauthenticated"]
    if status in (500, 502, 503, 504, 509) or status >= 520:
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
    exc = rule.error(message, status=status, reason=reason, code=code, retry_after=retry_after)
    return exc, rule


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
