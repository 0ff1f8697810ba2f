"""Small HTTP helpers every kind of test uses: a free loopback port, and a PROPFIND sent to a
gateway (as its user) or to any URL."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

if TYPE_CHECKING:
    from .gateway import Gateway

AS_ITS_USER: Any = object()  # propfind's default auth: a gateway's user, no login for a URL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def propfind(
    where: Gateway | str,
    path: str = "",
    depth: str = "1",
    body: bytes | None = None,
    *,
    auth: Any = AS_ITS_USER,
    headers: dict[str, str] | None = None,
    session: requests.Session | None = None,
    timeout: float = 60,
) -> requests.Response:
    """A PROPFIND of ``path`` (quoted here) on a gateway, as its user unless ``auth`` says
    otherwise (None: no login), or of ``where + path`` when ``where`` is a URL."""
    if isinstance(where, str):
        url, user = where, None
    else:
        url, user = where.url, where.auth
    return (session or requests).request(
        "PROPFIND",
        url + quote(path),
        data=body,
        headers={"Depth": depth, **(headers or {})},
        auth=user if auth is AS_ITS_USER else auth,
        timeout=timeout,
    )
