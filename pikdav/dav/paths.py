"""What a valid DAV path is, decided in one place for the request path and for every header
that carries a path (``Destination``, the resource tags of ``If``) or a lock token.

WsgiDAV folds ``.`` and ``..`` segments away (``/a/b/.`` becomes ``/a/b``), so a Destination
ending in ``/.`` named the source's own folder, and COPY or MOVE with ``Overwrite: T`` removed
that folder to make way. Such a path is refused here instead, as are names no item can have
(control characters, more than PikPak's 255 characters) and bytes that are not UTF-8.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes, urlsplit, urlunsplit

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_REQUEST_URI_TOO_LONG,
    DAVError,
)

from pikdav.vfs.names import MAX_NAME, unfit_character

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
    """Every resource tag of an ``If`` header is a path (rewritten to the quoted path form
    WsgiDAV compares with a resource's URL) and every state token is free of control
    characters; DAVError 400 otherwise."""
    header = environ.get("HTTP_IF")
    if header is None:
        return
    out, depth, pos = [], 0, 0
    while pos < len(header):
        char = header[pos]
        if char == "<":
            end = header.find(">", pos)
            if end < 0:
                raise DAVError(HTTP_BAD_REQUEST, "the If header has an unclosed '<'")
            inner = header[pos + 1 : end]
            if depth == 0:  # a resource tag: a URL
                inner = quote(_url_path(inner)[2])
            else:
                check_lock_token(inner)
            out.append(f"<{inner}>")
            pos = end + 1
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        out.append(char)
        pos += 1
    environ["HTTP_IF"] = "".join(out)


def check_lock_token(token: str) -> None:
    """A lock token as a client sends it back (``Lock-Token`` or in ``If``)."""
    if len(token) > _MAX_TOKEN or unfit_character(token) is not None:
        raise DAVError(HTTP_BAD_REQUEST, "the lock token is not one this server gives")


def check_request(environ: dict) -> None:
    """The request path and every path-carrying header of one request; DAVError if one is
    not a valid path."""
    dav_path(environ.get("PATH_INFO", ""))
    if environ.get("REQUEST_METHOD") in ("COPY", "MOVE"):
        destination_path(environ)
    check_if_header(environ)
    if "HTTP_LOCK_TOKEN" in environ:
        check_lock_token(environ["HTTP_LOCK_TOKEN"].strip().strip("<>"))
