"""Replaying a client's request sequence against a gateway: each step is what the client
sends (method, path, headers, body) and what it checks in the answer.

A sequence is a list of :class:`Step`; a step may keep something of its answer for later
steps (``keep``: a lock token, a size) and use it in its own path, headers and body as
``{name}``. :func:`replay` sends the steps in order over one keep-alive connection (as the
clients do), with the client's User-Agent and Basic credentials, and fails at the first
answer the client would not accept, naming the step.
"""

from __future__ import annotations

import base64
import http.client
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

DAV = "{DAV:}"


@dataclass
class Answer:
    """One response as the client read it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def props(self) -> dict[str, dict[str, tuple[str, str]]]:
        """A 207's properties: href -> {property (``{ns}name``): (status line, text)}."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        for response in ET.fromstring(self.body).findall(f"{DAV}response"):
            href = response.findtext(f"{DAV}href") or ""
            props = out.setdefault(href, {})
            for propstat in response.findall(f"{DAV}propstat"):
                status = propstat.findtext(f"{DAV}status") or ""
                for prop in propstat.find(f"{DAV}prop") or []:
                    props[prop.tag] = (status, "".join(prop.itertext()))
        return out


Check = Callable[[Answer, dict[str, Any]], None]


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    expect: int | tuple[int, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | Callable[[], Iterable[bytes]] = b""  # a callable: a chunked body
    checks: tuple[Check, ...] = ()
    keep: Mapping[str, Callable[[Answer], Any]] = field(default_factory=dict)
    auth: bool = True


def replay(
    base_url: str,
    user_agent: str,
    credentials: tuple[str, str],
    steps: Iterable[Step],
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send ``steps`` in order; returns what the steps kept (``state``)."""
    state = {} if state is None else state
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    basic = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    try:
        for number, step in enumerate(steps, 1):
            path = quote(step.path.format(**state), safe="/:@!$&'()*+,;=-._~")
            headers = {"User-Agent": user_agent, "Host": parts.netloc}
            if step.auth:
                headers["Authorization"] = basic
            headers |= {k: v.format(url=base_url, **state) for k, v in step.headers.items()}
            what = f"step {number}: {step.method} {step.path}"
            answer = _send(conn, step, path, headers, state)
            expected = step.expect if isinstance(step.expect, tuple) else (step.expect,)
            assert answer.status in expected, f"{what}: {answer.status} {answer.body[:300]!r}"
            for check in step.checks:
                try:
                    check(answer, state)
                except AssertionError as exc:
                    raise AssertionError(f"{what}: {exc}") from None
            for name, take in step.keep.items():
                state[name] = take(answer)
            if answer.header("Connection").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    finally:
        conn.close()
    return state


def _send(
    conn: http.client.HTTPConnection,
    step: Step,
    path: str,
    headers: dict[str, str],
    state: dict[str, Any],
) -> Answer:
    if callable(step.body):
        headers["Transfer-Encoding"] = "chunked"
        conn.request(step.method, path, body=step.body(), headers=headers, encode_chunked=True)
    else:
        body = step.body.format(**state).encode() if isinstance(step.body, str) else step.body
        if body or step.method in ("PUT", "POST", "PROPFIND", "PROPPATCH", "LOCK"):
            headers.setdefault("Content-Length", str(len(body)))
        conn.request(step.method, path, body=body or None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()  # empty for HEAD
    return Answer(resp.status, resp.headers, data)


# ---------------------------------------------------------------------------- common checks
def header_has(name: str, *words: str) -> Check:
    def check(answer: Answer, state: dict[str, Any]) -> None:
        value = answer.header(name)
        for word in words:
            assert word in value, f"{name}: {value!r} lacks {word!r}"

    return check


def header_is(name: str, value: str) -> Check:
    def check(answer: Answer, state: dict[str, Any]) -> None:
        got = answer.header(name)
        assert got == value.format(**state), f"{name}: {got!r}, not {value.format(**state)!r}"

    return check


def body_is(data: bytes) -> Check:
    def check(answer: Answer, state: dict[str, Any]) -> None:
        assert answer.body == data, f"body of {len(answer.body)} B is not the file's"

    return check


def prop_is(href: str, prop: str, value: str | None) -> Check:
    """The 207 shows ``prop`` of ``href`` with 200 and ``value`` (None: any value)."""

    def check(answer: Answer, state: dict[str, Any]) -> None:
        props = answer.props()
        assert href in props, f"{href} not in {sorted(props)}"
        status, text = props[href].get(f"{DAV}{prop}", ("missing", ""))
        assert " 200 " in status, f"{prop} of {href}: {status}"
        if value is not None:
            assert text == value.format(**state), f"{prop} of {href}: {text!r}"

    return check


def size_is(href: str, size: int) -> Check:
    """The 207 gives ``href`` a ``getcontentlength`` of ``size``."""
    return prop_is(href, "getcontentlength", str(size))


def prop_absent(href: str, prop: str) -> Check:
    """The 207 does not report ``prop`` of ``href`` with a value (absent or 404)."""

    def check(answer: Answer, state: dict[str, Any]) -> None:
        status, _ = answer.props().get(href, {}).get(f"{DAV}{prop}", ("absent", ""))
        assert " 200 " not in status, f"{prop} of {href} is reported: {status}"

    return check


def listed(*hrefs: str, exactly: bool = False) -> Check:
    def check(answer: Answer, state: dict[str, Any]) -> None:
        shown = set(answer.props())
        wanted = {h.format(**state) for h in hrefs}
        assert wanted <= shown, f"{sorted(wanted - shown)} not listed in {sorted(shown)}"
        if exactly:
            assert shown == wanted, f"also listed: {sorted(shown - wanted)}"

    return check


def not_listed(*hrefs: str) -> Check:
    def check(answer: Answer, state: dict[str, Any]) -> None:
        shown = set(answer.props())
        assert not shown & set(hrefs), f"listed: {sorted(shown & set(hrefs))}"

    return check


def every_propstat_ok(answer: Answer, state: dict[str, Any]) -> None:
    """A PROPPATCH's 207: every property 200 (Explorer reports an error otherwise)."""
    props = answer.props()
    assert props, "no response in the 207"
    for href, found in props.items():
        for prop, (status, _) in found.items():
            assert " 200 " in status, f"{prop} of {href}: {status}"


def plain_error(answer: Answer, state: dict[str, Any]) -> None:
    """An error answer a user can read: short plain text, never an HTML page or a trace."""
    assert b"<html" not in answer.body.lower() and b"Traceback" not in answer.body, answer.body
