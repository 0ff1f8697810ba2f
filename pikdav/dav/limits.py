"""How much memory a client's request may make the gateway hold, decided in one place.

WsgiDAV reads an XML body whole and keeps dead properties whole, in memory, without a bound:
four PROPPATCHes of 50 MiB values grew a gateway by 285 MB for good, and a PROPFIND then
answered 52 MB. Every body but a PUT's is XML and small in any real client (a LOCK or a
PROPPATCH of a few properties is under 4 KiB), so it is capped here, as are dead properties
(for every store of them: in memory now, shared ones later).
"""

from __future__ import annotations

import io

from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
)

XML_BODY_MAX = 1 << 20  # bytes: PROPFIND, PROPPATCH, LOCK… (PUT bodies are spooled to disk)
DEAD_PROPERTY_MAX = 64 << 10  # bytes of one dead property (its XML, name included)
DEAD_PROPERTIES_PER_RESOURCE_MAX = 1 << 20  # bytes of all dead properties of one resource
DEAD_PROPERTIES_MAX = 64 << 20  # bytes of all dead properties the gateway holds


def _in_units(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def bound_request_body(environ: dict) -> None:
    """413 for a non-PUT body above :data:`XML_BODY_MAX`, decided from Content-Length before
    a byte is read; a chunked body is read here (up to the cap) and handed on with its
    length, which also lets WsgiDAV parse it (it reads only bodies with a Content-Length)."""
    if environ["REQUEST_METHOD"] == "PUT":
        return
    too_large = DAVError(
        HTTP_REQUEST_ENTITY_TOO_LARGE,
        f"request bodies other than a PUT's are limited to {_in_units(XML_BODY_MAX)}",
        add_headers=[("Connection", "close")],  # the rest of the body is never read
    )
    length = environ.get("CONTENT_LENGTH", "").strip()
    if length:
        if not length.isdigit():
            raise DAVError(HTTP_BAD_REQUEST, "Content-Length is not a number")
        if int(length) > XML_BODY_MAX:
            raise too_large
        return
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    chunks, size = [], 0
    while size <= XML_BODY_MAX:
        chunk = environ["wsgi.input"].read(min(1 << 16, XML_BODY_MAX + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > XML_BODY_MAX:
        raise too_large
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def check_dead_property(size: int, resource_total: int, store_total: int) -> None:
    """507 (RFC 4918 §9.2: no room to record the property) when storing a dead property of
    ``size`` bytes would pass a cap; the totals include it."""
    if size > DEAD_PROPERTY_MAX:
        reason = f"a dead property is limited to {_in_units(DEAD_PROPERTY_MAX)}"
    elif resource_total > DEAD_PROPERTIES_PER_RESOURCE_MAX:
        reason = (
            f"the dead properties of one item are limited to "
            f"{_in_units(DEAD_PROPERTIES_PER_RESOURCE_MAX)} in all"
        )
    elif store_total > DEAD_PROPERTIES_MAX:
        reason = f"the gateway holds at most {_in_units(DEAD_PROPERTIES_MAX)} of dead properties"
    else:
        return
    raise DAVError(HTTP_INSUFFICIENT_STORAGE, reason)
