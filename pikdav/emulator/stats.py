"""Counters the control API reports, overall and per account."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

COUNTERS = (
    "signin",  # every sign-in request, refused ones included
    "signin_rejected",  # ... of which refused for a wrong username or password
    "refresh",
    "refresh_rejected",
    "captcha_init",
    "list",
    "file_get",
    "link_issued",
    "download_requests",
    "download_bytes",
    "download_forbidden",
    "download_not_found",
    "downloads_active",
    "downloads_closed",
    "download_refused_busy",  # 503: the link's or the account's connections were all in use
    "download_peak_link_conns",  # the most concurrent connections seen on one signed link
    "download_peak_account_conns",  # ... and for one account
    "upload_tickets",
    "instant_uploads",
    "objstore_requests",
    "objstore_bytes",
    "objstore_rejected",
    "mutations",
    "tasks_created",
    "unauthenticated",
    "captcha_rejected",
    "links_without_captcha",
    "faults_fired",
    "share_links",  # links handed out through a share (counted for the share's owner)
    "share_restores",  # shares restored into a drive (counted for the restoring account)
    "share_play_limit_refused",  # ranges beyond a shared file's play limit
)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total: Counter[str] = Counter()
        self._accounts: dict[str, Counter[str]] = defaultdict(Counter)
        self._download_ips: Counter[str] = Counter()
        self._calls: dict[str, Counter[str]] = defaultdict(Counter)  # by client IP, by area

    def add(self, name: str, account: str | None = None, amount: int = 1) -> None:
        with self._lock:
            self._total[name] += amount
            if account:
                self._accounts[account][name] += amount

    def peak(self, name: str, account: str | None, value: int) -> None:
        """Keep the highest ``value`` seen for ``name`` (overall and for ``account``)."""
        with self._lock:
            self._total[name] = max(self._total[name], value)
            if account:
                self._accounts[account][name] = max(self._accounts[account][name], value)

    def download_from(self, ip: str) -> None:
        with self._lock:
            self._download_ips[ip] += 1

    def call_from(self, ip: str, area: str) -> None:
        """A call of ``area`` (user, drive, cdn, objstore, other) from ``ip``."""
        with self._lock:
            self._calls[ip][area] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:

            def full(counter: Counter[str]) -> dict[str, int]:
                return {name: counter.get(name, 0) for name in COUNTERS} | dict(counter)

            return {
                "total": full(self._total),
                "accounts": {name: full(c) for name, c in self._accounts.items()},
                "downloads_by_ip": dict(self._download_ips),
                "calls_by_ip": {ip: dict(areas) for ip, areas in self._calls.items()},
            }

    def reset(self) -> None:
        with self._lock:
            self._total.clear()
            self._accounts.clear()
            self._download_ips.clear()
            self._calls.clear()
