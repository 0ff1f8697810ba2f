"""A fast path for the PROPFIND every client sends most: Depth 1 of a folder, asking for
all properties or for standard ones.

WsgiDAV builds an element tree and calls each getter several times per member; for a
folder of 10,000 files that costs about a second. Here the answer is rendered as text
straight from the cached listing, in the same shape WsgiDAV would send. Anything this path
does not know to answer exactly like WsgiDAV (dead properties, locks, If headers,
``propname``, unknown properties, the server root) falls back to WsgiDAV.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

from wsgidav import util, xml_tools
from wsgidav.dav_provider import DAVProvider

from pikdav.vfs.mount import Mount
from pikdav.vfs.tree import Entry

from . import clients

_D = "{DAV:}"
_SAFE = "/!*'(),$-_|."
LIVE = (
    "resourcetype",
    "creationdate",
    "getcontentlength",
    "getcontenttype",
    "getlastmodified",
    "displayname",
    "getetag",
    "lockdiscovery",
    "supportedlock",
    "quota-used-bytes",
    "quota-available-bytes",
)
_SUPPORTED_LOCK = (
    "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype>"
    "<D:write/></D:locktype></D:lockentry><D:lockentry><D:lockscope><D:shared/>"
    "</D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>"
)


def _props(
    entry: Entry, *, name: str, quota: tuple[int, int] | None, locking: bool = True
) -> dict[str, str]:
    """The live properties of one entry, in WsgiDAV's allprop order, rendered."""
    props: dict[str, str] = {}
    props["resourcetype"] = (
        "<D:resourcetype><D:collection/></D:resourcetype>"
        if entry.is_folder
        else "<D:resourcetype/>"
    )
    if entry.created:
        props["creationdate"] = (
            f"<D:creationdate>{util.get_rfc3339_time(entry.created)}</D:creationdate>"
        )
    if not entry.is_folder:
        props["getcontentlength"] = f"<D:getcontentlength>{entry.size}</D:getcontentlength>"
        props["getcontenttype"] = (
            f"<D:getcontenttype>{escape(entry.content_type)}</D:getcontenttype>"
        )
    if quota is not None:
        props["quota-used-bytes"] = f"<D:quota-used-bytes>{quota[0]}</D:quota-used-bytes>"
        props["quota-available-bytes"] = (
            f"<D:quota-available-bytes>{quota[1]}</D:quota-available-bytes>"
        )
    if entry.modified:
        props["getlastmodified"] = (
            f"<D:getlastmodified>{util.get_rfc1123_time(entry.modified)}</D:getlastmodified>"
        )
    props["displayname"] = f"<D:displayname>{escape(name)}</D:displayname>"
    if not entry.is_folder:
        props["getetag"] = f"<D:getetag>{escape(entry.etag)}</D:getetag>"
    if locking:  # where nothing can be locked (a share), WsgiDAV shows no lock properties
        props["lockdiscovery"] = "<D:lockdiscovery/>"
        props["supportedlock"] = _SUPPORTED_LOCK
    return props


def _response(href: str, props: dict[str, str], wanted: list[str] | None) -> str:
    if wanted is None:
        found, missing = list(props.values()), []
    else:
        found = [props[n] for n in wanted if n in props]
        missing = [f"<D:{n}/>" for n in wanted if n not in props]
    out = [f"<D:response><D:href>{escape(href)}</D:href>"]
    if found:
        out.append(
            f"<D:propstat><D:prop>{''.join(found)}</D:prop>"
            "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        )
    if missing:
        out.append(
            f"<D:propstat><D:prop>{''.join(missing)}</D:prop>"
            "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
        )
    out.append("</D:response>")
    return "".join(out)


def _wanted(body: bytes) -> list[str] | bool | None:
    """None for allprop, the list of standard names asked for, or False: not for us."""
    if not body.strip():
        return None
    try:
        root = xml_tools.etree.fromstring(body)
    except Exception:
        return False
    if root.tag != f"{_D}propfind" or len(root) != 1:
        return False
    child = root[0]
    if child.tag == f"{_D}allprop" and len(child) == 0:
        return None
    if child.tag != f"{_D}prop":
        return False
    names = []
    for prop in child:
        if not isinstance(prop.tag, str) or not prop.tag.startswith(_D):
            return False
        name = prop.tag[len(_D) :]
        if name not in LIVE:
            return False
        names.append(name)
    return names


class Folder(Protocol):
    """A mount folder's resource (see the provider), as this path reads it."""

    mount: Mount
    entry: Entry

    def children(self) -> tuple[Entry, ...]: ...

    def prevent_locking(self) -> bool: ...

    def get_href(self) -> str: ...

    def get_ref_url(self) -> str: ...

    def get_display_name(self) -> str: ...


def try_fast_propfind(
    provider: DAVProvider, resource: Folder, environ: dict, start_response: Callable
) -> list[bytes] | None:
    """The 207 answer for a plain Depth 0/1 PROPFIND of the mount folder ``resource``, or
    None to let WsgiDAV answer (the request body is put back for it)."""
    depth = environ.get("HTTP_DEPTH")
    if depth not in ("0", "1") or "HTTP_IF" in environ:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)  # WsgiDAV may still need to read it
    wanted = _wanted(body)
    if wanted is False:
        return None
    mount = resource.mount
    children = resource.children() if depth == "1" else ()
    folder_href = resource.get_href()
    if not folder_href.endswith("/"):
        folder_href += "/"
    if _has_locks_or_dead_props(provider, resource, children, allprop=wanted is None):
        return None
    q = None if clients.hides_quota(environ) else mount.quota_at(resource.entry)
    quota = (q.usage, q.available) if q is not None else None
    locking = not resource.prevent_locking()
    answer = _Pieces()
    answer.add('<?xml version="1.0" encoding="utf-8" ?><D:multistatus xmlns:D="DAV:">')
    answer.add(
        _response(
            folder_href,
            _props(resource.entry, name=resource.get_display_name(), quota=quota, locking=locking),
            wanted,
        )
    )
    for entry in children:
        href = folder_href + quote(entry.name, safe=_SAFE) + ("/" if entry.is_folder else "")
        answer.add(
            _response(href, _props(entry, name=entry.name, quota=None, locking=locking), wanted)
        )
    answer.add("</D:multistatus>")
    pieces = answer.done()
    environ["wsgidav.all_input_read"] = 1
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
            ("Content-Length", str(sum(len(piece) for piece in pieces))),
        ],
    )
    return pieces


class _Pieces:
    """An answer kept as encoded pieces of about :data:`PIECE` bytes: a folder of 10,000
    entries is held once, as UTF-8, never also as one string (which a single name outside
    ASCII makes two or four bytes a character) and as its encoding."""

    PIECE = 64 * 1024

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._filling = bytearray()

    def add(self, text: str) -> None:
        self._filling += text.encode()
        if len(self._filling) >= self.PIECE:
            self._pieces.append(bytes(self._filling))
            self._filling.clear()

    def done(self) -> list[bytes]:
        if self._filling:
            self._pieces.append(bytes(self._filling))
            self._filling = bytearray()
        return self._pieces


def _has_locks_or_dead_props(
    provider: DAVProvider, resource: Folder, children: tuple[Entry, ...], *, allprop: bool
) -> bool:
    base = resource.get_ref_url()
    lm = provider.lock_manager
    if lm is not None and lm.storage.get_lock_list(
        base.rstrip("/") or "/", include_root=True, include_children=True, token_only=True
    ):
        return True
    pm = provider.prop_manager
    if not allprop or pm is None:
        return False
    urls = [base] + [
        base + quote(e.name, safe=_SAFE) + ("/" if e.is_folder else "") for e in children
    ]
    return pm.any_properties(urls)
