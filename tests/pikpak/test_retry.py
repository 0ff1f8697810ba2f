"""The one retry policy: its bounds in attempts and time, its waits, and Retry-After."""

from __future__ import annotations

import time

import pytest

from pikdav.pikpak import retry
from pikdav.pikpak.errors import Transient
from pikdav.pikpak.retry import Again, RetryPolicy


class Clock:
    """time.monotonic and time.sleep together: a sleep moves the clock on, at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    monkeypatch.setattr(time, "sleep", fake.sleep)
    return fake


def failing(times: int, wait: float | None = None, result: str = "done"):
    """An attempt that asks for another try ``times`` times, then returns ``result``."""
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Again(Transient(f"fault {len(calls)}"), wait)
        return result

    return attempt, calls


def test_a_fault_that_clears_is_outlasted(clock):
    attempt, calls = failing(2)
    assert RetryPolicy(attempts=3).run(attempt) == "done"
    assert len(calls) == 3 and len(clock.slept) == 2


def test_the_attempt_bound_ends_in_the_last_cause(clock):
    attempt, calls = failing(100)
    with pytest.raises(Transient, match="fault 4"):
        RetryPolicy(attempts=4, seconds=1e9).run(attempt)
    assert len(calls) == 4 and len(clock.slept) == 3


def test_a_watcher_sees_each_failure_that_is_tried_again_on_its_thread_only(clock):
    seen: list[str] = []
    attempt, calls = failing(100)
    with retry.failures_shown_to(lambda exc: seen.append(str(exc))):
        with pytest.raises(Transient, match="fault 3"):
            RetryPolicy(attempts=3, seconds=1e9).run(attempt)
    # The last failure goes to the caller, not to the watcher; after the block, no watcher.
    assert seen == ["fault 1", "fault 2"]
    attempt, calls = failing(1)
    assert RetryPolicy(attempts=3).run(attempt) == "done"
    assert seen == ["fault 1", "fault 2"] and len(calls) == 2


def test_a_watcher_hears_of_the_outermost_run_only_and_of_its_answer_after_a_failure(clock):
    """A failed token renewal inside a call is the call's business (the call may go on with
    the token it has): the watcher hears of the call's own failures, and of its answer."""
    seen: list[str | None] = []
    inner, inner_calls = failing(100)

    def outer() -> str:
        try:
            RetryPolicy(attempts=3, seconds=1e9).run(inner)
        except Transient:
            pass  # the renewal failed; the call goes on
        return "answered"

    with retry.failures_shown_to(lambda exc: seen.append(None if exc is None else str(exc))):
        assert RetryPolicy(attempts=3).run(outer) == "answered"
        assert seen == [] and len(inner_calls) == 3  # nothing heard of the inner failures
        attempt, _ = failing(1)
        assert RetryPolicy(attempts=3).run(attempt) == "done"
    assert seen == ["fault 1", None]


def test_the_time_bound_ends_it_before_the_attempts_run_out(clock):
    attempt, calls = failing(100, wait=10)
    policy = RetryPolicy(attempts=100, seconds=35, retry_after_max=60)
    with pytest.raises(Transient):
        policy.run(attempt)
    # Attempts at 0, 10, 20 and 30 s; a fifth would start at 40 s, past the bound.
    assert len(calls) == 4 and clock.slept == [10, 10, 10]


def test_what_is_not_again_goes_to_the_caller_at_once(clock):
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise KeyError("not a retry")

    with pytest.raises(KeyError):
        RetryPolicy().run(attempt)
    assert calls == [1] and clock.slept == []


def test_retry_after_is_waited_exactly_and_capped(clock):
    attempt, _ = failing(1, wait=7)
    RetryPolicy(retry_after_max=30).run(attempt)
    attempt, _ = failing(1, wait=600)
    RetryPolicy(retry_after_max=30).run(attempt)
    attempt, _ = failing(1, wait=0)  # after a renewed token: at once
    RetryPolicy().run(attempt)
    assert clock.slept == [7, 30, 0]


def test_the_backoff_doubles_to_its_bound_with_jitter_below_each_step():
    policy = RetryPolicy(backoff=0.5, backoff_max=8.0, jitter=0.5)
    for attempt, step in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert all(step / 2 <= w <= step for w in waits), (attempt, min(waits), max(waits))
        assert len(set(waits)) > 1  # callers failing together do not come back together


def test_retry_after_lengthens_a_wait_but_never_shortens_it():
    steady = RetryPolicy(backoff=60, backoff_max=3600, retry_after_max=7200, jitter=0)
    assert steady.delay(1, retry_after=600) == 600
    assert steady.delay(4, retry_after=1) == 480  # the step is longer than Retry-After
    assert steady.delay(1, retry_after=10**6) == 7200
    assert steady.back_off(None) == steady.slow_down and steady.back_off(10**6) == 7200


def test_callers_that_schedule_their_own_retries_ask_exhausted():
    policy = RetryPolicy(attempts=5, seconds=100)
    assert not policy.exhausted(4, 99)
    assert policy.exhausted(5, 0) and policy.exhausted(1, 100)


def test_a_poll_returns_what_it_waited_for(clock):
    answers = iter([None, None, "link"])
    policy = RetryPolicy(attempts=retry.UNBOUNDED, backoff=0.5, backoff_max=5, jitter=0)
    assert policy.poll(lambda: next(answers), timeout=10) == "link"
    assert clock.slept == [0.5, 1.0]


def test_a_poll_never_sleeps_past_its_timeout(clock):
    calls = []
    policy = RetryPolicy(attempts=retry.UNBOUNDED, backoff=0.5, backoff_max=5, jitter=0)
    assert policy.poll(lambda: calls.append(1), timeout=3) is None
    # 0.5 + 1 = 1.5 s of waits; the next (2 s) would end at 3.5 s, past the 3 s allowed.
    assert clock.slept == [0.5, 1.0] and len(calls) == 3


def test_each_use_has_todays_numbers():
    session = retry.SESSION
    assert (session.attempts, session.seconds, session.backoff, session.backoff_max) == (
        6,
        20,
        0.5,
        8,
    )
    assert (retry.CHECK.attempts, retry.CHECK.seconds) == (2, 5)
    background = retry.BACKGROUND_UPLOADS
    assert [background.delay(n) for n in range(1, 8)] == [5, 10, 20, 40, 80, 160, 300]
    assert not background.exhausted(4, 10**6) and background.exhausted(5, 0)
    pause = retry.SIGN_IN_PAUSE
    assert [pause.delay(n) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]
    assert pause.delay(1, retry_after=600) == 600
    resumes = retry.STREAM_RESUMES
    assert not resumes.exhausted(5, 10**6) and resumes.exhausted(6, 0)  # 5 resumes
    assert resumes.delay(3) == 0
    assert retry.OBJECT_STORE.attempts == 3
