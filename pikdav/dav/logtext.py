"""What a client sent, made safe for a log line.

A path, a user name or a User-Agent can carry CR/LF (a forged second log line), ESC (terminal
control sequences in whoever reads the log) and any length (a 75 KB user name). Every string
that comes from a request goes through :func:`client_text` before it is logged.
"""

from __future__ import annotations

import re

LIMIT = 200  # characters kept of one value

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, lone surrogates (bytes
# that were not UTF-8, see wsgi_text); the backslash too, so that an escape in the log cannot
# be mistaken for one the client wrote.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\\]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def client_text(value: object, limit: int = LIMIT) -> str:
    """`value` with control characters escaped (``\\x0d``…) and cut to `limit` characters,
    saying how much was cut."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    text = _UNSAFE.sub(_escape, text)
    return f"{text}…(+{cut} chars)" if cut > 0 else text


def wsgi_text(value: str) -> str:
    """A WSGI string (the request's bytes as Latin-1) as the UTF-8 text the client meant; bytes
    that are not UTF-8 come out of :func:`client_text` as ``\\xff``."""
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value  # not a WSGI string: already text
