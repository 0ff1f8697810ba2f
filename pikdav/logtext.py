"""What a client sent, made safe for a log line.

A path, a user name or a User-Agent can carry CR/LF (a forged second log line), ESC (terminal
control sequences in whoever reads the log), U+2028 (a line break to many log viewers), U+202E
(it shows the rest of the line right to left: ``txt.exe`` as ``exe.txt``) and any length (a
75 KB user name). Every string that comes from a request, and every name (a client's, or one
PikPak holds), goes through :func:`client_text` before it is logged, in every layer.
"""

from __future__ import annotations

import re

LIMIT = 200  # characters kept of one value

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional
# controls (marks, embeddings, overrides, isolates), lone surrogates (bytes that were not
# UTF-8, see pikdav.dav.logtext.wsgi_text); the backslash too, so that an escape in the log
# cannot be mistaken for one the client wrote.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff\\]"
)


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
