"""The one reading of a GET's ``Range`` and ``If-Range`` headers (RFC 9110 §13.1.5, §14).

The provider asks :func:`plan` once per GET or HEAD of a file; WsgiDAV then only ever sees the
chosen range, written plainly, or no Range at all, and the proxied stream asks the CDN for the
same bytes.

- A header that does not parse, or that holds an invalid range (``bytes=100-5``), is ignored:
  the answer is the whole file (200).
- Of several ranges, the first that can be satisfied is answered alone (206 with its
  Content-Range; RFC 9110 lets a server do so, and a client must read Content-Range); more
  than :data:`MAX_RANGES` ranges are ignored like an invalid header.
- No satisfiable range (``bytes=-0``, a start beyond the end) → 416 with ``bytes */size``.
- An empty file is answered whole, as WsgiDAV does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

MAX_RANGES = 16
_SPEC = re.compile(r"(\d*)-(\d*)")
_HUGE = 19  # digits: more than any file size (2**63 has 19)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def header(self) -> str:
        """As a Range header WsgiDAV reads exactly as meant."""
        return f"bytes={self.start}-{self.end - 1}"


class _Unsatisfiable:
    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE = _Unsatisfiable()  # answer 416


def plan(header: str | None, size: int) -> ByteRange | _Unsatisfiable | None:
    """What to answer for `header` on a file of `size` bytes: a range, ``UNSATISFIABLE``, or
    None for the whole file."""
    if not header or size <= 0:
        return None
    unit, sep, spec_list = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec_list.split(",")]
    specs = [s for s in specs if s]  # a list may have empty elements (RFC 9110 §5.6.1)
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges = []
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None or match.group() == "-":
            return None
        first, last = match.groups()
        if first and last and _compare(first, last) > 0:
            return None  # invalid (last before first): the header is ignored
        ranges.append(_satisfied(first, last, size))
    return next((r for r in ranges if r is not None), UNSATISFIABLE)


def _satisfied(first: str, last: str, size: int) -> ByteRange | None:
    if not first:  # the last `last` bytes
        suffix = _number(last, size)
        return ByteRange(size - min(suffix, size), size) if suffix > 0 else None
    start = _number(first, size)
    if start >= size:
        return None
    end = size if not last else min(_number(last, size) + 1, size)
    return ByteRange(start, end)


def _number(digits: str, size: int) -> int:
    """The value of `digits`, or `size` when it is larger (Python refuses ints of more than
    4300 digits, and no file is that large anyway)."""
    digits = digits.lstrip("0") or "0"
    return size if len(digits) >= _HUGE else min(int(digits), size)


def _compare(a: str, b: str) -> int:
    a, b = a.lstrip("0") or "0", b.lstrip("0") or "0"
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


def if_range_holds(header: str | None, etag: str | None, last_modified: float | None) -> bool:
    """Whether a Range may be honoured under `If-Range` (RFC 9110 §13.1.5): no If-Range, a
    strong entity tag equal to the file's, or a date equal to its Last-Modified."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith('"'):
        return etag is not None and value == f'"{etag}"'
    if value.startswith("W/"):
        return False  # a weak tag never matches here
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return last_modified is not None and int(date.timestamp()) == int(last_modified)
