"""The one retry policy: how long to wait between attempts, and when to stop.

Every retry in pikdav asks a :class:`RetryPolicy`: PikPak calls (:meth:`RetryPolicy.run`),
the object store's parts, polls that wait for PikPak to finish something
(:meth:`RetryPolicy.poll`), and the callers that schedule their own retries (resumed
streams, background uploads: :meth:`RetryPolicy.delay` and :meth:`RetryPolicy.exhausted`).
*What* is worth retrying is the error table's decision (:mod:`pikdav.pikpak.errors`);
this module only says when and how often.
"""

from __future__ import annotations

import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from .errors import PikPakError, Reaction

T = TypeVar("T")


def pause_for(seconds: float, cancel: threading.Event | None = None) -> bool:
    """The one place pikdav waits out time (a test holds every other module to it): ``seconds``,
    cut short when ``cancel`` is set. True when the wait was cut short."""
    seconds = max(0.0, seconds)
    if cancel is not None:
        return cancel.wait(seconds)
    time.sleep(seconds)
    return False


_watching = threading.local()


@contextmanager
def failures_shown_to(seen: Callable[[BaseException | None], object]) -> Iterator[None]:
    """Within the block, on this thread, every attempt of :meth:`RetryPolicy.run` that
    failed and is to be tried again is shown to ``seen`` (its cause) before the wait, and an
    attempt that succeeds after such a failure as None: a caller with another answer at hand
    (a listing on disk) can give it at the first failure instead of after all the retries,
    which go on. Only the outermost run reports: a policy inside an attempt (a token renewed
    within a call) speaks through the attempt's own outcome."""
    before = getattr(_watching, "seen", None)
    _watching.seen = seen
    try:
        yield
    finally:
        _watching.seen = before


#: An attempt count that never runs out (a bound in time, or none, decides instead).
UNBOUNDED = sys.maxsize


class Again(Exception):
    """Raised by an attempt inside :meth:`RetryPolicy.run`: try again after ``wait``
    seconds (None: the policy's backoff; 0: at once, e.g. after renewing a token), or,
    when the bound is reached, fail with ``cause``."""

    def __init__(self, cause: BaseException, wait: float | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.wait = wait


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and seconds that bound a retry, and the wait between attempts.

    The wait before attempt ``n + 1`` is ``backoff * 2**(n - 1)``, at most ``backoff_max``,
    of which up to ``jitter`` (a fraction) is taken off at random so that many callers
    failing together do not come back together. A server's Retry-After is honoured up to
    ``retry_after_max``."""

    attempts: int = 6
    seconds: float = 90.0
    backoff: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 30.0
    jitter: float = 0.5
    # "Slow down" without a Retry-After ("Your operation is too frequent"): wait this long.
    slow_down: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failure (counted from 1): the backoff
        step, or longer when the server's ``retry_after`` asks for it."""
        step = min(self.backoff_max, self.backoff * 2 ** max(0, attempt - 1))
        step *= 1 - self.jitter * random.random()
        if retry_after is not None:
            step = max(step, min(retry_after, self.retry_after_max))
        return step

    def pause(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Wait :meth:`delay` after the ``attempt``-th failure, for the callers that run their
        own loop; True when ``cancel`` cut the wait short."""
        return pause_for(self.delay(attempt, retry_after), cancel)

    def back_off(self, retry_after: float | None) -> float:
        """Seconds to wait when the server asks us to slow down."""
        wait = self.slow_down if retry_after is None else retry_after
        return min(wait, self.retry_after_max)

    def again_for(self, exc: PikPakError, *, idempotent: bool) -> Again | None:
        """What the error table's rule says for a retry: :class:`Again` (with the wait)
        when the failure is worth another attempt, None when it goes to the caller.
        A plain retry needs a call that is safe to repeat, or PikPak's word that nothing
        happened."""
        rule = exc.rule
        if rule is None:
            return None
        if rule.reaction is Reaction.BACK_OFF:
            return Again(exc, self.back_off(exc.retry_after))
        if rule.reaction is Reaction.RETRY and (idempotent or rule.unchanged):
            return Again(exc)
        return None

    def exhausted(self, attempts: int, elapsed: float) -> bool:
        """True when no further attempt may start: ``attempts`` were made, or the next one
        would start ``elapsed`` seconds after the first."""
        return attempts >= self.attempts or elapsed >= self.seconds

    def run(self, attempt: Callable[[], T], *, sleep: Callable[[float], object] | None = None) -> T:
        """Call ``attempt`` until it returns; again each time it raises :class:`Again`,
        within the bounds; then raise the last :attr:`Again.cause`. Anything else it raises
        goes to the caller at once. ``sleep`` waits between attempts (an event's ``wait``
        lets a caller cut the wait short; the next attempt then sees why)."""
        started = time.monotonic()
        number = 0
        seen = getattr(_watching, "seen", None)
        _watching.seen = None  # policies inside an attempt report nothing
        try:
            while True:
                number += 1
                try:
                    result = attempt()
                except Again as again:
                    if again.wait is None:
                        wait = self.delay(number)
                    else:
                        wait = min(max(0.0, again.wait), self.retry_after_max)
                    if self.exhausted(number, time.monotonic() - started + wait):
                        raise again.cause from None
                    if seen is not None:
                        seen(again.cause)
                    (pause_for if sleep is None else sleep)(wait)
                else:
                    if seen is not None and number > 1:
                        seen(None)  # answered after all
                    return result
        finally:
            _watching.seen = seen

    def poll(self, check: Callable[[], T | None], *, timeout: float | None = None) -> T | None:
        """Call ``check`` until it returns something other than None, waiting the backoff
        between calls; None when ``timeout`` (default: the policy's seconds) or the attempts
        run out first. No wait goes past the timeout."""
        seconds = self.seconds if timeout is None else timeout
        started = time.monotonic()
        number = 0
        while True:
            number += 1
            found = check()
            if found is not None:
                return found
            wait = self.delay(number)
            elapsed = time.monotonic() - started + wait
            if number >= self.attempts or elapsed > seconds:
                return None
            pause_for(wait)


#: Every call to PikPak's API (Session.call): 6 attempts within 20 s, 0.5 s doubling to 8 s.
#: A DAV client waits for most of these calls, and its own timeout is shorter than a
#: minute: a Retry-After that would end past the 20 s gives up at once, and the client is
#: told how long PikPak asks to wait.
SESSION = RetryPolicy(seconds=20.0)

#: `pikdav check`: a person waits at a terminal, so a refused connection fails within seconds.
CHECK = RetryPolicy(attempts=2, seconds=5.0)

#: One request to the object store (a part, a small file, starting or completing a
#: multipart upload); botocore's own retries are off, so this is the only bound.
OBJECT_STORE = RetryPolicy(attempts=3, seconds=600.0, backoff=1.0, backoff_max=20.0)

#: A proxied stream that breaks: up to 5 resumes (6 reads) from the byte reached, at once.
STREAM_RESUMES = RetryPolicy(
    attempts=6, seconds=math.inf, backoff=0.0, backoff_max=0.0, retry_after_max=0.0, jitter=0.0
)

#: Background uploads (vfs.pending): 5 attempts, 5 s doubling to 300 s between them.
BACKGROUND_UPLOADS = RetryPolicy(
    attempts=5, seconds=math.inf, backoff=5.0, backoff_max=300.0, jitter=0.0
)

#: Sign-ins stopped after a failure no retry can fix: 60 s at first, doubling to 1 h, or
#: as long as PikPak's Retry-After says. Only :meth:`RetryPolicy.delay` is used: a pause
#: never gives up.
SIGN_IN_PAUSE = RetryPolicy(
    attempts=UNBOUNDED,
    seconds=math.inf,
    backoff=60.0,
    backoff_max=3600.0,
    retry_after_max=math.inf,
    jitter=0.0,
)

#: A rotated refresh token saved to Redis: every 0.5 s, for as long as the store allows.
STORE_SAVE = RetryPolicy(
    attempts=UNBOUNDED, seconds=30.0, backoff=0.5, backoff_max=0.5, retry_after_max=0.5, jitter=0.0
)

#: The CDN counts more connections than the budget thought (503): ask again every 0.2 s for
#: a minute, then the segment gives up.
CDN_BUSY = RetryPolicy(attempts=UNBOUNDED, seconds=60.0, backoff=0.2, backoff_max=0.2, jitter=0.0)

#: Temporaries an earlier run left that PikPak could not be asked about at the start: 5 more
#: tries, 30 s doubling to 8 min between them.
LEFTOVER_SWEEP = RetryPolicy(
    attempts=6, seconds=math.inf, backoff=30.0, backoff_max=480.0, jitter=0.0
)

#: Waiting for a download link PikPak holds back after an upload: 0.5 s doubling to 5 s.
LINK_POLL = RetryPolicy(attempts=UNBOUNDED, seconds=3.0, backoff=0.5, backoff_max=5.0, jitter=0.0)

#: Waiting for a batch task (move, trash, delete): 0.2 s doubling to 2 s, for a minute.
TASK_POLL = RetryPolicy(attempts=UNBOUNDED, seconds=60.0, backoff=0.2, backoff_max=2.0, jitter=0.0)

#: A token renewed once (a share's pass-code token): two attempts, the second at once.
RENEW_ONCE = RetryPolicy(
    attempts=2, seconds=math.inf, backoff=0.0, backoff_max=0.0, retry_after_max=0.0, jitter=0.0
)
