"""What a client sent, made safe for a log line: see :mod:`pikdav.logtext` (one escape for
every layer); here also the reading of WSGI strings."""

from __future__ import annotations

from pikdav.logtext import LIMIT, client_text

__all__ = ["LIMIT", "client_text", "wsgi_text"]


def wsgi_text(value: str) -> str:
    """A WSGI string (the request's bytes as Latin-1) as the UTF-8 text the client meant; bytes
    that are not UTF-8 come out of :func:`client_text` as ``\\xff``."""
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value  # not a WSGI string: already text
