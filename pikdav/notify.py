"""Notifications: a small JSON object POSTed to a webhook (``notify: {webhook: URL}``) when a
person should act before their player stops — ntfy, Gotify, Home Assistant or a chat webhook
take it from there.

Events, each sent once when it happens (see README "Notifications"):

- ``human_check``: PikPak asks for a human check before the account can sign in again;
- ``login_lost``: the refresh token died and no password can sign in again;
- ``sign_in_paused``: sign-ins stopped for another reason (a refused password, "too frequent"…);
- ``sign_in_resumed``: the account is signed in again after one of the three above;
- ``upload_failed``: a background upload failed for the last time.

Posts go out from one thread of their own, so that PikPak calls and uploads never wait for the
webhook; a post that fails is tried twice more, then given up with one log line. The webhook's
address is never logged (ntfy topics and Gotify tokens live in it), and no event carries a
secret: its words are the ones pikdav's log and status page show.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests

from .pikpak.retry import RetryPolicy

log = logging.getLogger(__name__)

PAUSE_EVENTS = {"human_check": "human_check", "no_password": "login_lost"}  # else sign_in_paused
ATTEMPTS = 3
TIMEOUT = 10.0  # seconds per post


def pause_event(kind: str) -> str:
    """The event a pause on sign-ins of this kind (a key of LOGIN_PAUSES) starts."""
    return PAUSE_EVENTS.get(kind, "sign_in_paused")


class Webhook:
    """Sends events to ``url``; :meth:`send` never blocks."""

    def __init__(self, url: str, *, backoff: float = 1.0) -> None:
        self.url = url
        self._retries = RetryPolicy(
            attempts=ATTEMPTS, seconds=math.inf, backoff=backoff, backoff_max=60.0, jitter=0.0
        )
        self._http = requests.Session()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="pikdav-notify", daemon=True)
        self._thread.start()

    def send(self, event: str, **fields: Any) -> None:
        body = {"event": event, "time": _now(), **fields}
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            log.warning("notification %s dropped: the webhook is not keeping up", event)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self._post(body)

    def _post(self, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._retries.pause(attempt)
            try:
                answer = self._http.post(
                    self.url,
                    data=data,
                    headers={"Content-Type": "application/json", "User-Agent": "pikdav"},
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                problem = type(exc).__name__
                continue
            if answer.status_code < 300:
                log.debug("notification %s sent", body["event"])
                return
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the webhook refuses it: asking again cannot help
        log.warning(
            "notification %s could not be sent to the webhook (%s); given up",
            body["event"],
            problem,
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
