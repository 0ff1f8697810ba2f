"""Fault injection: rules that make matching requests fail the way PikPak or a network can.

A rule matches on a regular expression searched in the path (and optionally the method,
the Host header and the account), may let the first ``skip`` matches through and fires at
most ``times`` times (unlimited when absent), and with ``after`` waits that many seconds
before its action (a slow failure: a gateway timing out upstream). Its action is exactly one
of:

- ``status`` (+ optional ``error`` body fields): answer that status in PikPak's error shape;
- ``delay``: sleep that many seconds, then serve the request normally;
- ``drop_after``: serve the request but cut the connection after that many body bytes;
- ``rate_limit``: ``{"retry_after": S}`` answers 429 with ``Retry-After: S``;
- ``captcha``: ``{"url": U}`` makes captcha init demand a human check at ``U``;
- ``too_frequent``: ``true`` answers "Your operation is too frequent" (4002 on the user
  host, code 10 elsewhere).
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("status", "delay", "drop_after", "rate_limit", "captcha", "too_frequent")


class BadRule(ValueError):
    pass


@dataclass
class Rule:
    id: int
    path: re.Pattern[str]
    action: str
    value: Any
    method: str | None = None
    host: re.Pattern[str] | None = None
    account: str | None = None
    error: dict[str, Any] = field(default_factory=dict)
    skip: int = 0
    times: int | None = None
    after: float = 0.0
    seen: int = 0
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path.pattern,
            "action": self.action,
            "value": self.value,
            "method": self.method,
            "host": self.host.pattern if self.host else None,
            "account": self.account,
            "skip": self.skip,
            "times": self.times,
            "after": self.after,
            "fired": self.fired,
        }


def _compile(pattern: Any, key: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise BadRule(f"'{key}' must be a regular expression string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise BadRule(f"'{key}' is not a valid regular expression: {exc}") from None


class Faults:
    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Rule:
        if not isinstance(spec, dict):
            raise BadRule("a rule is a JSON object")
        actions = [a for a in ACTIONS if a in spec]
        if len(actions) != 1:
            raise BadRule(f"a rule needs exactly one action of {', '.join(ACTIONS)}")
        action = actions[0]
        value = spec[action]
        if action in ("status", "drop_after") and (not isinstance(value, int) or value < 0):
            raise BadRule(f"'{action}' must be a non-negative integer")
        if action == "delay" and (not isinstance(value, int | float) or value < 0):
            raise BadRule("'delay' must be a non-negative number of seconds")
        if action == "rate_limit" and not isinstance(value, dict):
            value = {"retry_after": value if isinstance(value, int) else 1}
        if action == "captcha" and not isinstance(value, dict):
            value = {"url": ""}
        for key in ("skip", "times"):
            if (
                key in spec
                and spec[key] is not None
                and (not isinstance(spec[key], int) or spec[key] < 0)
            ):
                raise BadRule(f"'{key}' must be a non-negative integer")
        after = spec.get("after") or 0
        if not isinstance(after, int | float) or isinstance(after, bool) or after < 0:
            raise BadRule("'after' must be a non-negative number of seconds")
        rule = Rule(
            id=next(self._ids),
            path=_compile(spec.get("path", ".*"), "path"),
            action=action,
            value=value,
            method=(spec.get("method") or None) and str(spec["method"]).upper(),
            host=_compile(spec["host"], "host") if spec.get("host") else None,
            account=spec.get("account") or spec.get("username"),
            error=spec.get("error") or {},
            skip=spec.get("skip") or 0,
            times=spec.get("times"),
            after=float(after),
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self, rule_id: int | None = None) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if rule_id is not None and r.id != rule_id]

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self._rules]

    def match(
        self,
        method: str,
        path: str,
        host: str,
        account: str | None,
        actions: tuple[str, ...] = ACTIONS,
    ) -> Rule | None:
        """The first rule that fires for this request, counting it; None if none does."""
        with self._lock:
            for rule in self._rules:
                if rule.action not in actions:
                    continue
                if rule.method and rule.method != method:
                    continue
                if rule.host and not rule.host.search(host):
                    continue
                if rule.account and rule.account != account:
                    continue
                if not rule.path.search(path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                return rule
        return None
