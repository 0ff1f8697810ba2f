"""What a browser gets at a folder's URL: pikdav's own short words on how to connect.

(WsgiDAV's answer was a 403 naming its own middleware settings. A later issue puts a real
listing here.)
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from .frontdoor import plain_answer

_PAGE = """\
This is pikdav, a WebDAV server for a PikPak drive; {path} is one of its folders.

A browser cannot show folders here. Open the address in a WebDAV client instead:

  rclone         rclone lsd :webdav: --webdav-url {url} --webdav-user USER \\
                   --webdav-pass "$(rclone obscure PASS)"
  macOS Finder   Go > Connect to Server..., then {url}
  Windows        File Explorer > This PC > Map network drive..., then {url}
  Linux desktop  Files > Other Locations > Connect to Server, then {dav_url}
  curl           curl -u USER -X PROPFIND -H "Depth: 1" {url}
"""


def folder_page(environ: dict, start_response: Callable) -> list[bytes]:
    """The plain-text page for a GET of a folder (200)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
    url = f"{scheme}://{host[:255]}{quote(path)}"
    dav_url = ("davs" if scheme == "https" else "dav") + url[len(scheme) :]
    return plain_answer(start_response, 200, _PAGE.format(path=path, url=url, dav_url=dav_url))
