"""The habits of the clients pikdav serves, in one place: who is asking (User-Agent
families), what they probe for (Finder's hint files) and the answers their quirks need.

Each quirk says where it was read. Nothing here changes what a client that is not named
gets: the rules are narrow on purpose.

User-Agent families (case-sensitive prefixes or substrings, as the clients send them):

- Finder: ``WebDAVFS/`` (the mount agent, every request after OPTIONS) and ``WebDAVLib/``
  (its first OPTIONS), followed by ``Darwin/<version>``.
- Windows Explorer: ``Microsoft-WebDAV-MiniRedir/``.
- rclone: ``rclone/``; davfs2: ``davfs2/``; cadaver and other neon clients: ``neon/``;
  ffmpeg and mpv: ``Lavf/``; Infuse: ``Infuse``; Kodi: ``Kodi/``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Mapping
from typing import Any

from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError
from wsgidav.dav_provider import DAVNonCollection

FINDER = "finder"
EXPLORER = "explorer"
RCLONE = "rclone"
DAVFS2 = "davfs2"
NEON = "neon"
LAVF = "lavf"
INFUSE = "infuse"
KODI = "kodi"

# First match wins; each is how the client names itself in User-Agent.
_FAMILIES = (
    (FINDER, re.compile(r"^WebDAV(FS|Lib)/")),
    (EXPLORER, re.compile(r"Microsoft-WebDAV-MiniRedir/")),
    (RCLONE, re.compile(r"^rclone/")),
    (DAVFS2, re.compile(r"^davfs2/")),
    (NEON, re.compile(r"neon/")),
    (LAVF, re.compile(r"Lavf/")),
    (INFUSE, re.compile(r"Infuse", re.IGNORECASE)),
    (KODI, re.compile(r"^Kodi/")),
)
_DARWIN = re.compile(r"Darwin/(\d+)\.(\d+)")


def family(environ: Mapping[str, Any]) -> str | None:
    """The client family of this request's User-Agent, or None for any other client."""
    agent = environ.get("HTTP_USER_AGENT", "")
    return next((name for name, pattern in _FAMILIES if pattern.search(agent)), None)


def darwin(environ: Mapping[str, Any]) -> tuple[int, int] | None:
    """The Darwin (kernel) version Finder names in its User-Agent: 24.4 is macOS 15.4."""
    found = _DARWIN.search(environ.get("HTTP_USER_AGENT", ""))
    return (int(found.group(1)), int(found.group(2))) if found else None


# ---------------------------------------------------------------------------- downloads
# Proxied whatever a mount's download mode says (the default of force_proxy_user_agents):
# - Explorer's mini-redirector and Finder handle a 302 to another host badly (pikdav's rule
#   since its first download policy; RFC 4918 §12 warns that clients may mishandle 3xx);
# - neon (cadaver, davfs2) does not follow a 302 on GET at all;
# - ffmpeg and ffplay ("Lavf/") ask the first URL again for every seek after a 302, without
#   credentials, and give up at the 401 (pikdav 680d79a).
FORCE_PROXY = ("Microsoft-WebDAV-MiniRedir", "WebDAVFS", "neon/", "Lavf/")


# ---------------------------------------------------------------------------- quota
def hides_quota(environ: Mapping[str, Any]) -> bool:
    """Whether this client is answered without RFC 4331 quota properties.

    Finder on macOS 15.4 and later waits about 90 s before it finishes mounting a server
    whose folder reports ``quota-available-bytes`` and ``quota-used-bytes``
    (cryptomator/webdav-nio-adapter#107; its fix, cryptomator/webdav-nio-adapter-servlet
    2a64656, stops reporting exactly these two properties on macOS 15.4; the same wait on
    macOS 26.2 in 9001/copyparty#1242). The two properties are left out for Finder on
    Darwin 24.4 (macOS 15.4) and later, and for a Finder that names no Darwin version;
    every other client (rclone ``about``, davfs2 ``df``, Explorer) still gets them.
    """
    if family(environ) != FINDER:
        return False
    version = darwin(environ)
    return version is None or version >= (24, 4)


# ---------------------------------------------------------------------------- hint files
# Zero-size files Finder looks for at the root of a volume: ``.metadata_never_index`` keeps
# Spotlight from indexing it, ``.ql_disablethumbnails`` keeps QuickLook from downloading every
# image and video to draw thumbnails, ``.ql_disablecache`` keeps QuickLook from caching
# (messense/dav-server-rs doc/APPLE-Finder-hints.md; aliyundrive-webdav answers them so).
HINT_FILES = (".metadata_never_index", ".ql_disablethumbnails", ".ql_disablecache")
_HINTS_SINCE = time.time()  # their date: when pikdav started (one date, for If-Modified-Since)


def is_hint_file(name: str) -> bool:
    return name in HINT_FILES


class HintFile(DAVNonCollection):
    """One of Finder's hint files at a mount's root: an empty file that exists, is never
    listed, and cannot be written, moved, locked or deleted."""

    def get_content_length(self) -> int:
        return 0

    def get_content_type(self) -> str:
        return "application/octet-stream"

    def get_etag(self) -> str:
        return "finder-hint"

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_last_modified(self) -> float:
        return _HINTS_SINCE

    def get_creation_date(self) -> float:
        return _HINTS_SINCE

    def get_content(self) -> io.BytesIO:
        return io.BytesIO(b"")

    def prevent_locking(self) -> bool:
        return True

    def _refuse(self, *args, **kwargs):
        raise DAVError(HTTP_FORBIDDEN, "a Finder hint file of pikdav's own; it cannot be changed")

    begin_write = _refuse
    delete = _refuse
    copy_move_single = _refuse
    move_recursive = _refuse
    set_property_value = _refuse

    def handle_delete(self):
        self._refuse()

    def handle_move(self, dest_path: str):
        self._refuse()

    def support_recursive_move(self, dest_path: str) -> bool:
        return False
