"""What a browser gets at a folder's URL: a readable listing (names, sizes, dates, links that
download), and a few words on how to open the folder in a WebDAV client.

(WsgiDAV's own answer was a 403 naming its middleware settings.) DAV clients list folders with
PROPFIND and never see this page.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from .frontdoor import html_answer

_templates = Environment(
    loader=PackageLoader("pikdav.dav", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Row:
    """One item of the listing."""

    name: str
    is_folder: bool
    size: int | None = None
    modified: float | None = None


def folder_page(environ: dict, start_response: Callable, rows: Iterable[Row] = ()) -> list[bytes]:
    """The HTML page for a GET of a folder (200): its ``rows``, folders first."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
    if not path.endswith("/"):
        path += "/"
    url = f"{scheme}://{host[:255]}{quote(path)}"
    dav_url = ("davs" if scheme == "https" else "dav") + url[len(scheme) :]
    items = [
        {
            "name": row.name + ("/" if row.is_folder else ""),
            "href": quote(path + row.name) + ("/" if row.is_folder else ""),
            "size": "" if row.is_folder or row.size is None else _size(row.size),
            "bytes": "" if row.is_folder or row.size is None else str(row.size),
            "modified": _date(row.modified),
        }
        for row in sorted(rows, key=lambda r: (not r.is_folder, r.name.casefold()))
    ]
    body = (
        _templates.get_template("folder.html")
        .render(
            path=path,
            parent=quote(path.rstrip("/").rpartition("/")[0] + "/") if path != "/" else "",
            items=items,
            url=url,
            dav_url=dav_url,
            plain_http=scheme == "http",  # Windows needs BasicAuthLevel 2 for Basic over HTTP
        )
        .encode()
    )
    return html_answer(start_response, body)


def _date(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at else ""


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
