"""What a client is told when PikPak or the mount refuses: one mapping of failures to DAV
statuses with a short reason (never a traceback, a token or an upstream URL).

Resources wrap every call into the mount in :func:`answering`, which names what was being done
for the log. What is logged once elsewhere (a paused sign-in, at its start) is not logged again
per request.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_LOCKED,
    HTTP_NOT_FOUND,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    HTTP_SERVICE_UNAVAILABLE,
    DAVError,
)

from pikdav.pikpak.errors import (
    AuthError,
    Conflict,
    HumanCheckRequired,
    LinkNotReady,
    LoginPaused,
    NotFound,
    PikPakError,
    QuotaExceeded,
    RateLimited,
    ShareBlocked,
    ShareError,
    SharePassCodeRefused,
    ShareRegionBlocked,
    StoreUnreachable,
    StreamGone,
    Unreachable,
)
from pikdav.vfs.cluster import ClusterDown
from pikdav.vfs.errors import (
    BodyCut,
    FromCache,
    LinkRefused,
    LinksTooFast,
    MountError,
    NoRoom,
    NotAllowed,
    ReadOnly,
    StillUploading,
    TooLarge,
    UploadingElsewhere,
)

from .logtext import client_text

log = logging.getLogger(__name__)

HTTP_TOO_MANY_REQUESTS = 429

_MOUNT_STATUSES: tuple[tuple[type[MountError], int], ...] = (
    (ReadOnly, HTTP_FORBIDDEN),
    (NotAllowed, HTTP_FORBIDDEN),
    (StillUploading, HTTP_CONFLICT),
    (LinkRefused, HTTP_CONFLICT),
    (UploadingElsewhere, HTTP_LOCKED),
    (TooLarge, HTTP_REQUEST_ENTITY_TOO_LARGE),
    (NoRoom, HTTP_INSUFFICIENT_STORAGE),
    (BodyCut, HTTP_BAD_REQUEST),
)


def dav_error(exc: PikPakError | MountError, what: str) -> DAVError:
    """``exc`` met while ``what`` (e.g. "listing /pikpak/Films") as a DAV status."""
    if isinstance(exc, ClusterDown):
        return _unavailable(str(exc), 5)
    if isinstance(exc, FromCache):
        log.info("%s: %s", client_text(what), exc)
        return _unavailable(str(exc), exc.retry_after)
    if isinstance(exc, MountError):
        status = next((s for kind, s in _MOUNT_STATUSES if isinstance(exc, kind)), HTTP_FORBIDDEN)
        if isinstance(exc, BodyCut):
            log.warning("%s: %s; nothing stored", client_text(what), exc)
        if isinstance(exc, LinksTooFast):
            return DAVError(
                HTTP_TOO_MANY_REQUESTS,
                str(exc),
                add_headers=[("Retry-After", str(exc.retry_after))],
            )
        return DAVError(status, str(exc))
    return _upstream(exc, client_text(what))


HTTP_UNAVAILABLE_FOR_LEGAL_REASONS = 451

# A share's refusal is logged once by its source, when the share's state changes; the client
# is told the reason and what to do about it (the error table's words, never a token).
_SHARE_STATUSES: tuple[tuple[type[ShareError], int], ...] = (
    (SharePassCodeRefused, HTTP_FORBIDDEN),
    (ShareBlocked, HTTP_UNAVAILABLE_FOR_LEGAL_REASONS),
    (ShareRegionBlocked, HTTP_SERVICE_UNAVAILABLE),
    (NotFound, HTTP_NOT_FOUND),  # NOT_FOUND, DELETED, EXPIRED
)


def _share_refused(exc: ShareError) -> DAVError:
    status = next((s for kind, s in _SHARE_STATUSES if isinstance(exc, kind)), HTTP_BAD_GATEWAY)
    reason = exc.rule.log if exc.rule is not None else "the share cannot be opened"
    return DAVError(status, f"share: {reason}")


def _upstream(exc: PikPakError, what: str) -> DAVError:
    if isinstance(exc, ShareError):
        return _share_refused(exc)
    if isinstance(exc, NotFound):
        return DAVError(HTTP_NOT_FOUND)
    if isinstance(exc, LoginPaused):
        log.debug("%s: %s", what, exc)
        left = exc.seconds_left()
        return _unavailable(
            f"the gateway cannot sign in to PikPak: {exc.short}. To fix it: {exc.remedy}. "
            f"It tries again in {left} s",
            left,
        )
    if isinstance(exc, StoreUnreachable):
        log.debug("%s: %s", what, exc)  # the shared state logs once that Redis is down
        return _unavailable(
            "the gateway's shared state (Redis) is unreachable and its PikPak login needs "
            "renewing; try again shortly",
            5,
        )
    if isinstance(exc, HumanCheckRequired):
        log.warning("%s: %s", what, exc)
        return _unavailable(f"the gateway cannot reach the drive: {exc}", 60)
    if isinstance(exc, RateLimited):
        log.warning("%s: PikPak asks us to slow down: %s", what, exc)
        wait = max(1, math.ceil(exc.retry_after or 30))
        return _unavailable(
            f"PikPak asks the gateway to wait {wait} s before its next request (rate limit); "
            "try again then",
            wait,
        )
    if isinstance(exc, LinkNotReady):
        log.info("%s: %s", what, exc)
        return _unavailable(
            "PikPak is still preparing this file's download link; try again shortly",
            exc.retry_after or 15,
        )
    if isinstance(exc, QuotaExceeded):
        return DAVError(HTTP_INSUFFICIENT_STORAGE, "the PikPak drive is full")
    if isinstance(exc, Conflict):
        return DAVError(HTTP_CONFLICT, "the name is taken")
    if isinstance(exc, AuthError):
        log.error("%s: %s", what, exc)
        return DAVError(HTTP_BAD_GATEWAY, "the gateway cannot log in to PikPak (see its log)")
    if isinstance(exc, Unreachable):
        log.warning("%s: %s", what, exc)
        return DAVError(HTTP_BAD_GATEWAY, "the gateway cannot reach PikPak; try again later")
    if isinstance(exc, StreamGone):
        log.warning("%s: %s", what, exc)
        return DAVError(
            HTTP_BAD_GATEWAY, "PikPak's download server did not deliver the file; try again"
        )
    log.warning("%s: %s", what, exc)
    return DAVError(HTTP_BAD_GATEWAY, "PikPak did not answer properly; try again")


def _unavailable(reason: str, retry_after: float) -> DAVError:
    return DAVError(
        HTTP_SERVICE_UNAVAILABLE,
        reason,
        add_headers=[("Retry-After", str(max(1, math.ceil(retry_after))))],
    )


@contextlib.contextmanager
def answering(what: str) -> Iterator[None]:
    """Turn a refusal by PikPak or the mount inside the block into its DAV status."""
    try:
        yield
    except (PikPakError, MountError) as exc:
        raise dav_error(exc, what) from None
