"""The WsgiDAV provider: the server root lists the mounts; each mount is a PikPak drive
(an account and a root folder) seen through a cached :class:`DriveTree`.

Resources are built per request from metadata already in memory: a folder's members come
from one cached listing, never from a lookup per child.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_NOT_FOUND,
    HTTP_SERVICE_UNAVAILABLE,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import (
    AuthError,
    NotFound,
    PikPakError,
    QuotaExceeded,
    RateLimited,
)
from pikdav.pikpak.types import Quota
from pikdav.vfs.tree import DriveTree, Entry

from .auth import may_access
from .policy import DownloadPolicy
from .reader import RangeReader

log = logging.getLogger(__name__)

# What Finder, Explorer and Kodi probe for on every folder; PikPak never has them.
_JUNK = re.compile(
    r"^(\._.*|\.DS_Store|Thumbs\.db|desktop\.ini|\.localized|\.hidden|"
    r"\.metadata_never_index|\.Spotlight-V100|\.Trashes|\.nomedia|"
    r"\.ql_.*|folder\.jpg|Desktop\.ini)$",
    re.IGNORECASE,
)
_VALID_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*\s*-\s*\d*\s*)(,\s*\d*\s*-\s*\d*\s*)*$")


def is_junk(name: str) -> bool:
    return bool(_JUNK.match(name))


@dataclass
class Mount:
    name: str
    drive: Drive
    tree: DriveTree
    policy: DownloadPolicy
    read_only: bool = True
    use_trash: bool = True
    quota_ttl: float = 60.0
    _quota: tuple[float, Quota] | None = field(default=None, repr=False)
    _quota_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def quota(self) -> Quota | None:
        with self._quota_lock:
            if self._quota is not None and time.monotonic() - self._quota[0] < self.quota_ttl:
                return self._quota[1]
        try:
            quota = self.drive.about()
        except PikPakError as exc:
            log.warning("mount %s: cannot read the quota: %s", self.name, exc)
            return None
        with self._quota_lock:
            self._quota = (time.monotonic(), quota)
        return quota


def upstream_error(exc: PikPakError, what: str) -> DAVError:
    """A PikPak failure as a clean DAV status with a short reason (never a traceback)."""
    if isinstance(exc, NotFound):
        return DAVError(HTTP_NOT_FOUND)
    if isinstance(exc, RateLimited):
        log.warning("%s: PikPak asks us to slow down: %s", what, exc)
        return DAVError(
            HTTP_SERVICE_UNAVAILABLE,
            "PikPak is rate limiting; try again shortly",
            add_headers=[("Retry-After", str(int(exc.retry_after or 30)))],
        )
    if isinstance(exc, QuotaExceeded):
        return DAVError(HTTP_INSUFFICIENT_STORAGE, "the PikPak drive is full")
    if isinstance(exc, AuthError):
        log.error("%s: %s", what, exc)
        return DAVError(HTTP_BAD_GATEWAY, "the gateway cannot log in to PikPak (see its log)")
    log.warning("%s: %s", what, exc)
    return DAVError(HTTP_BAD_GATEWAY, "PikPak did not answer properly; try again")


class _Resource:
    """What both kinds of resource share: their mount, entry and dates."""

    mount: Mount
    entry: Entry

    def get_creation_date(self) -> float | None:
        return self.entry.created or None

    def get_last_modified(self) -> float | None:
        return self.entry.modified or None

    def get_display_name(self) -> str:
        return self.entry.name

    def get_property_value(self, name: str):
        # RFC 4331: only the mount root has a quota; elsewhere the property does not exist
        # (WsgiDAV itself would answer an empty 200).
        if name in _QUOTA_PROPS and not getattr(self, "is_mount_root", False):
            raise DAVError(HTTP_NOT_FOUND)
        return super().get_property_value(name)


_QUOTA_PROPS = ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes")


class FileResource(_Resource, DAVNonCollection):
    def __init__(self, path: str, environ: dict, mount: Mount, entry: Entry) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.mount = mount
        self.entry = entry

    def get_content_length(self) -> int:
        return self.entry.size

    def get_content_type(self) -> str:
        if self.entry.mime_type:
            return self.entry.mime_type
        return mimetypes.guess_type(self.entry.name)[0] or "application/octet-stream"

    def get_etag(self) -> str:
        return self.entry.etag

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> RangeReader:
        session = self.mount.drive.session
        return RangeReader(
            self.mount.tree,
            self.entry,
            self.provider.cdn,
            planned=self.environ.get("pikdav.range"),
            verify=session.http.verify,
            user_agent=session.platform.user_agent,
        )


class FolderResource(_Resource, DAVCollection):
    def __init__(self, path: str, environ: dict, mount: Mount, entry: Entry) -> None:
        DAVCollection.__init__(self, path, environ)
        self.mount = mount
        self.entry = entry
        self.is_mount_root = entry.id == mount.tree.root_id and not entry.name

    def get_display_name(self) -> str:
        return self.mount.name if self.is_mount_root else self.entry.name

    def _children(self) -> tuple[Entry, ...]:
        try:
            return self.mount.tree.children(self.entry)
        except PikPakError as exc:
            raise upstream_error(exc, f"listing {self.path}") from None

    def get_member_names(self) -> list[str]:
        return [e.name for e in self._children()]

    def get_member_list(self) -> list[FileResource | FolderResource]:
        base = self.path.rstrip("/")
        return [
            self.provider.make(f"{base}/{e.name}", self.environ, self.mount, e)
            for e in self._children()
        ]

    def get_member(self, name: str) -> FileResource | FolderResource | None:
        try:
            entry = self.mount.tree.child(self.entry, name)
        except PikPakError as exc:
            raise upstream_error(exc, f"listing {self.path}") from None
        if entry is None:
            return None
        return self.provider.make(
            f"{self.path.rstrip('/')}/{name}", self.environ, self.mount, entry
        )

    def get_used_bytes(self) -> int | None:
        quota = self.mount.quota() if self.is_mount_root else None
        return quota.usage if quota else None

    def get_available_bytes(self) -> int | None:
        quota = self.mount.quota() if self.is_mount_root else None
        return quota.available if quota else None


class ServerRoot(DAVCollection):
    """``/``: one folder per mount the user may open."""

    def __init__(self, path: str, environ: dict) -> None:
        super().__init__(path, environ)

    def _visible(self) -> list[Mount]:
        return [m for m in self.provider.mounts.values() if may_access(self.environ, m.name)]

    def get_member_names(self) -> list[str]:
        return [m.name for m in self._visible()]

    def get_member(self, name: str) -> FolderResource | None:
        mount = self.provider.mounts.get(name)
        if mount is None or not may_access(self.environ, name):
            return None
        return FolderResource(f"/{name}", self.environ, mount, mount.tree.root)

    def get_member_list(self) -> list[FolderResource]:
        return [FolderResource(f"/{m.name}", self.environ, m, m.tree.root) for m in self._visible()]

    def get_last_modified(self) -> float:
        return self.provider.started

    def get_creation_date(self) -> float:
        return self.provider.started


class GatewayProvider(DAVProvider):
    """One provider at ``/`` for every mount, so that mount names keep their case and one
    realm covers them all."""

    def __init__(self, mounts: Iterable[Mount], cdn: requests.Session | None = None) -> None:
        super().__init__()
        self.mounts = {m.name: m for m in mounts}
        self.started = time.time()
        self.cdn = cdn or _cdn_session()

    def is_readonly(self) -> bool:
        return all(m.read_only for m in self.mounts.values())

    def make(self, path: str, environ: dict, mount: Mount, entry: Entry):
        cls = FolderResource if entry.is_folder else FileResource
        return cls(path, environ, mount, entry)

    def mount_of(self, path: str) -> tuple[Mount | None, str]:
        first, _, rest = path.strip("/").partition("/")
        mount = self.mounts.get(first)
        if mount is None:
            mount = next(
                (m for n, m in self.mounts.items() if n.casefold() == first.casefold()), None
            )
        return mount, rest

    def get_resource_inst(self, path: str, environ: dict):
        memo: dict[str, Any] = environ.setdefault("pikdav.resolved", {})
        if path in memo:
            return memo[path]
        memo[path] = resource = self._resolve(path, environ)
        return resource

    def _resolve(self, path: str, environ: dict):
        if path.strip("/") == "":
            return ServerRoot("/", environ)
        mount, rest = self.mount_of(path)
        if mount is None or not may_access(environ, mount.name):
            return None
        names = [p for p in rest.split("/") if p]
        if ".." in names:
            return None
        # Finder, Explorer and Kodi probe names like ._x and desktop.ini in every folder:
        # answer from the cache alone, so a probe never costs an upstream call (a real file
        # of that name is still served once its folder has been listed).
        junk = bool(names) and is_junk(names[-1])
        try:
            entry = mount.tree.resolve("/".join(names), cached_only=junk)
        except PikPakError as exc:
            raise upstream_error(exc, f"resolving {path}") from None
        if entry is None:
            return None
        clean = "/" + "/".join([mount.name, *names])
        return self.make(clean, environ, mount, entry)

    # ------------------------------------------------------------------ per request
    def custom_request_handler(
        self, environ: dict, start_response: Callable, default_handler: Callable
    ):
        method = environ["REQUEST_METHOD"]
        if method == "PROPFIND":
            if environ.get("HTTP_DEPTH", "infinity") == "infinity":
                raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
            from .propfind import try_fast_propfind

            answer = try_fast_propfind(self, environ, start_response)
            if answer is not None:
                return answer
        if (
            method in ("GET", "HEAD")
            and "HTTP_RANGE" in environ
            and not _VALID_RANGE.match(environ["HTTP_RANGE"])
        ):
            # RFC 9110 §14.2: a Range header that does not parse is ignored (200, whole body).
            del environ["HTTP_RANGE"]
        if method in ("GET", "HEAD"):
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if method == "GET" and isinstance(resource, FileResource):
                return self._get_file(resource, environ, start_response, default_handler)
            if method == "HEAD" and isinstance(resource, FolderResource | ServerRoot):
                # Kodi sends HEAD to folders before browsing them; a 403 or 500 there
                # breaks browsing. Say it exists and is a folder.
                start_response(
                    "200 OK", [("Content-Type", "httpd/unix-directory"), ("Content-Length", "0")]
                )
                return [b""]
        return default_handler(environ, start_response)

    def _get_file(
        self,
        resource: FileResource,
        environ: dict,
        start_response: Callable,
        default_handler: Callable,
    ):
        entry, mount = resource.entry, resource.mount
        decision = mount.policy.decide(environ)
        environ["pikdav.delivery"] = decision
        if entry.size == 0:
            return default_handler(environ, start_response)
        if decision.redirect and not _conditional(environ):
            try:
                link = mount.tree.link(entry)
            except PikPakError as exc:
                raise upstream_error(exc, f"link for {resource.path}") from None
            # The URL exactly as PikPak gave it: WsgiDAV's redirect helper would re-quote it.
            start_response(
                "302 Found",
                [("Location", link.url), ("Content-Length", "0"), ("Cache-Control", "no-store")],
            )
            return [b""]
        if "HTTP_RANGE" in environ:
            try:
                ranges, _ = util.obtain_content_ranges(environ["HTTP_RANGE"], entry.size)
                if ranges:
                    environ["pikdav.range"] = (ranges[0][0], ranges[0][1] + 1)
            except DAVError:
                pass  # WsgiDAV answers the 416 itself
        return default_handler(environ, start_response)


def _conditional(environ: dict) -> bool:
    """Conditional GETs (If-None-Match…) are answered here, not by the CDN."""
    return any(
        k in environ
        for k in (
            "HTTP_IF_NONE_MATCH",
            "HTTP_IF_MODIFIED_SINCE",
            "HTTP_IF_MATCH",
            "HTTP_IF_UNMODIFIED_SINCE",
        )
    )


def _cdn_session() -> requests.Session:
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=128, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
