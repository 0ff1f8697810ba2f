"""What a valid DAV path is, decided in one place for the request path and for every header
that carries a path (``Destination``, the resource tags of ``If``) or a lock token.

WsgiDAV folds ``.`` and ``..`` segments away (``/a/b/.`` becomes ``/a/b``), so a Destination
ending in ``/.`` named the source's own folder, and COPY or MOVE with ``Overwrite: T`` removed
that folder to make way. Such a path is refused here instead, as are names no item can have
(control characters, more than PikPak's 255 characters) and bytes that are not UTF-8.
"""

from __future__ import annotations

import re
from typing import NoReturn
from urllib.parse import quote, unquote_to_bytes, urlsplit, urlunsplit

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_REQUEST_URI_TOO_LONG,
    DAVError,
)

from pikdav.vfs.names import MAX_NAME, refused_name, unfit_character

MAX_PATH = 4096  # characters, mount name included
_MAX_TOKEN = 256  # a lock token is an opaquelocktoken: URI of ~60 characters


def dav_path(raw: str | bytes) -> str:
    """The path a client sent → the path as text, or DAVError 400/414 with the reason.

    ``raw`` has its percent-escapes decoded already: bytes, or a WSGI string (which holds
    the bytes as Latin-1, as PATH_INFO does)."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("latin-1")
        except UnicodeEncodeError:
            raw = raw.encode("utf-8", "surrogatepass")  # text already: checked as such
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DAVError(HTTP_BAD_REQUEST, "the path is not valid UTF-8") from None
    for name in path.split("/"):
        if name in (".", ".."):
            raise DAVError(HTTP_BAD_REQUEST, "a path may not have '.' or '..' segments")
        char = unfit_character(name)
        if char is not None:
            raise DAVError(
                HTTP_BAD_REQUEST, f"names may not contain control characters (U+{ord(char):04X})"
            )
        if len(name) > MAX_NAME:
            raise DAVError(
                HTTP_BAD_REQUEST, f"names are limited to {MAX_NAME} characters (PikPak's limit)"
            )
    if len(path) > MAX_PATH:
        raise DAVError(HTTP_REQUEST_URI_TOO_LONG, f"paths are limited to {MAX_PATH} characters")
    return path


_NAMING = ("PUT", "MKCOL", "LOCK")  # methods that may give a new item its name
_ENCODED_SLASH = re.compile("%2f", re.IGNORECASE)


def _no_encoded_slash(raw: str) -> None:
    """A ``%2F`` in a path as sent: cheroot keeps it as those three characters, so the item
    would get a name with ``%2F`` in it, not the path the client meant."""
    if _ENCODED_SLASH.search(raw):
        raise DAVError(HTTP_BAD_REQUEST, "a path may not carry an encoded slash (%2F)")


def new_name(path: str) -> None:
    """DAVError 400 if the last name of ``path`` (the name a write gives) is one PikPak would
    refuse or change (see :func:`pikdav.vfs.names.refused_name`); the server root and a
    mount's own name are the provider's to refuse."""
    names = path.rstrip("/").split("/")
    if len(names) <= 2:
        return
    name = names[-1]
    reason = refused_name(name)
    if reason is not None:
        raise DAVError(HTTP_BAD_REQUEST, reason)


def _url_path(url: str) -> tuple[str, str, str]:
    """An absolute URL or a path, as a header carries it → (scheme, host, path as text)."""
    # Fragments stay part of the path, as WsgiDAV reads it (a '#' there is a name's).
    parts = urlsplit(url.strip(), allow_fragments=False)
    try:
        quoted = parts.path.encode("latin-1")
    except UnicodeEncodeError:
        quoted = parts.path.encode("utf-8", "surrogatepass")
    return parts.scheme, parts.netloc, dav_path(unquote_to_bytes(quoted))


def destination_path(environ: dict) -> str:
    """The path a COPY or MOVE names in its Destination header (relative to the server).

    The header is rewritten to its canonical spelling (percent-encoded UTF-8), so that
    WsgiDAV reads the same path. 400 when it is missing or not a path, 403 for the server
    root, 502 for another host (RFC 4918 §9.8.5)."""
    header = environ.get("HTTP_DESTINATION")
    if header is None or not header.strip():
        raise DAVError(HTTP_BAD_REQUEST, "COPY and MOVE need a Destination header")
    scheme, host, path = _url_path(header)
    if host and host.lower() not in _own_hosts(environ):
        raise DAVError(HTTP_BAD_GATEWAY, "the Destination is on another host")
    if not path.strip("/"):
        raise DAVError(HTTP_FORBIDDEN, "the server root cannot be a Destination")
    if not path.startswith("/"):
        raise DAVError(HTTP_BAD_REQUEST, "the Destination must be an absolute path or URL")
    environ["HTTP_DESTINATION"] = urlunsplit((scheme, host, quote(path), "", ""))
    return path


def _own_hosts(environ: dict) -> set[str]:
    return {environ.get(key, "").lower() for key in ("HTTP_HOST", "HTTP_X_FORWARDED_HOST")} - {""}


def check_if_header(environ: dict) -> None:
    """The ``If`` header follows RFC 4918 §10.4 (lists of conditions in parentheses, each an
    optional ``Not`` and a state token in ``<>`` or an entity tag in ``[]``, optionally after
    a resource tag); every resource tag is a path (rewritten to the quoted path form WsgiDAV
    compares with a resource's URL) and every state token is free of control characters.
    DAVError 400 otherwise: WsgiDAV reads a malformed header as no condition at all, and the
    write it guards would go ahead."""
    header = environ.get("HTTP_IF")
    if header is None:
        return
    if not header.strip():  # an empty header is no condition, as if none were sent
        del environ["HTTP_IF"]
        return
    out: list[str] = []
    pos, lists = _skip_space(header, 0), 0
    tagged = False
    while pos < len(header):
        char = header[pos]
        if char == "<":  # a resource tag: a URL, followed by one list or more
            inner, pos = _enclosed(header, pos, ">")
            if tagged:
                _bad_if("a resource tag must be followed by a list in parentheses")
            out.append(f"<{quote(_url_path(inner)[2])}>")
            tagged = True
        elif char == "(":
            pos = _if_list(header, pos + 1, out)
            lists += 1
            tagged = False
        else:
            _bad_if("expected '(' or '<'")
        pos = _skip_space(header, pos)
        out.append(" ")
    if not lists or tagged:
        _bad_if("it has no list of conditions in parentheses")
    environ["HTTP_IF"] = "".join(out).strip()


def _if_list(header: str, pos: int, out: list[str]) -> int:
    """One list of conditions, from just after its ``(``; the position after its ``)``."""
    out.append("(")
    conditions = 0
    while True:
        pos = _skip_space(header, pos)
        if pos >= len(header):
            _bad_if("a '(' is not closed")
        char = header[pos]
        if char == ")":
            if not conditions:
                _bad_if("a list in parentheses is empty")
            out.append(")")
            return pos + 1
        if header[pos : pos + 3].lower() == "not":
            out.append("Not ")
            pos = _skip_space(header, pos + 3)
            char = header[pos : pos + 1]
        if char == "<":
            token, pos = _enclosed(header, pos, ">")
            check_lock_token(token)
            out.append(f"<{token}>")
        elif char == "[":
            etag, pos = _enclosed(header, pos, "]")
            if not etag.strip():
                _bad_if("an entity tag in '[]' is empty")
            out.append(f"[{etag}]")
        else:
            _bad_if("a condition is a state token in '<>' or an entity tag in '[]'")
        out.append(" ")
        conditions += 1


def _enclosed(header: str, pos: int, close: str) -> tuple[str, int]:
    """What is between ``header[pos]`` and the next ``close``; the position after it."""
    end = header.find(close, pos + 1)
    if end < 0:
        _bad_if(f"a '{header[pos]}' is not closed")
    return header[pos + 1 : end], end + 1


def _skip_space(header: str, pos: int) -> int:
    while pos < len(header) and header[pos] in " \t":
        pos += 1
    return pos


def _bad_if(problem: str) -> NoReturn:
    raise DAVError(HTTP_BAD_REQUEST, f"the If header is malformed: {problem}")


def check_lock_token(token: str) -> None:
    """A lock token as a client sends it back (``Lock-Token`` or in ``If``)."""
    if len(token) > _MAX_TOKEN or unfit_character(token) is not None:
        raise DAVError(HTTP_BAD_REQUEST, "the lock token is not one this server gives")


def check_request(environ: dict) -> None:
    """The request path and every path-carrying header of one request; DAVError if one is
    not a valid path, or if the name a write gives a new item is one PikPak refuses."""
    _no_encoded_slash(environ.get("REQUEST_URI", "").partition("?")[0])
    path = dav_path(environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD")
    if method in ("COPY", "MOVE"):
        _no_encoded_slash(environ.get("HTTP_DESTINATION") or "")
        new_name(destination_path(environ))
    elif method in _NAMING:
        new_name(path)
    check_if_header(environ)
    if "HTTP_LOCK_TOKEN" in environ:
        check_lock_token(environ["HTTP_LOCK_TOKEN"].strip().strip("<>"))
