"""The WsgiDAV provider: the server root lists the mounts; each mount is a PikPak drive
(an account and a root folder) seen through a cached :class:`DriveTree`.

Resources are built per request from metadata already in memory: a folder's members come
from one cached listing, never from a lookup per child.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    HTTP_SERVICE_UNAVAILABLE,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from pikdav.httpserver import STOPPING
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import (
    AuthError,
    Conflict,
    HumanCheckRequired,
    LinkNotReady,
    LoginPaused,
    NotFound,
    PikPakError,
    QuotaExceeded,
    RateLimited,
    Unreachable,
)
from pikdav.pikpak.types import Quota
from pikdav.vfs.cache import TtlCache
from pikdav.vfs.pending import PENDING, PendingUploads
from pikdav.vfs.tree import HIDDEN_PREFIX, DriveTree, Entry
from pikdav.vfs.writer import NameTaken, TreeWriter

from . import ranges
from .auth import may_access
from .folderpage import folder_page
from .limits import bound_request_body
from .paths import destination_path
from .policy import DownloadPolicy
from .reader import RangeReader
from .sidefiles import SideFile, SideStore, is_finder_metadata
from .spool import SpoolFile, SpoolSettings, size_hint

log = logging.getLogger(__name__)

# What Finder, Explorer and Kodi probe for on every folder; PikPak never has them.
_JUNK = re.compile(
    r"^(\._.*|\.DS_Store|Thumbs\.db|desktop\.ini|\.localized|\.hidden|"
    r"\.metadata_never_index|\.Spotlight-V100|\.Trashes|\.nomedia|"
    r"\.ql_.*)$",
    re.IGNORECASE,
)


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
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    finder_metadata: str = "keep_local"
    side_files: SideStore = field(default_factory=SideStore, repr=False)
    quota_ttl: float = 60.0
    _quota: TtlCache[Quota] = field(default_factory=lambda: TtlCache(1), repr=False)
    _writer: TreeWriter | None = field(default=None, repr=False)
    pending: PendingUploads | None = field(default=None, repr=False)

    @property
    def writer(self) -> TreeWriter:
        if self._writer is None:
            self._writer = TreeWriter(self.drive, self.tree, use_trash=self.use_trash)
        return self._writer

    def quota(self) -> Quota | None:
        try:
            return self._quota.fetch("about", lambda: (self.drive.about(), self.quota_ttl))
        except PikPakError as exc:
            # A pause on sign-ins is logged once when it starts, not with every PROPFIND.
            quiet = isinstance(exc, LoginPaused)
            (log.debug if quiet else log.warning)(
                "mount %s: cannot read the quota: %s", self.name, exc
            )
            return None


def upstream_error(exc: PikPakError, what: str) -> DAVError:
    """A PikPak failure as a clean DAV status with a short reason (never a traceback, a
    token or an upstream URL). What is logged once elsewhere (a paused sign-in) is not
    logged again per request."""
    if isinstance(exc, NotFound):
        return DAVError(HTTP_NOT_FOUND)
    if isinstance(exc, LoginPaused):
        log.debug("%s: %s", what, exc)
        left = exc.seconds_left()
        return _unavailable(
            f"the gateway cannot sign in to PikPak: {exc.short}. To fix it: {exc.remedy}. "
            f"It tries again in {left} s",
            left,
        )
    if isinstance(exc, HumanCheckRequired):
        log.warning("%s: %s", what, exc)
        return _unavailable(f"the gateway cannot reach the drive: {exc}", 60)
    if isinstance(exc, RateLimited):
        log.warning("%s: PikPak asks us to slow down: %s", what, exc)
        return _unavailable("PikPak is rate limiting; try again shortly", exc.retry_after or 30)
    if isinstance(exc, LinkNotReady):
        log.info("%s: %s", what, exc)
        return _unavailable(
            "PikPak is still preparing this file's download link; try again shortly",
            exc.retry_after or 15,
        )
    if isinstance(exc, QuotaExceeded):
        return DAVError(HTTP_INSUFFICIENT_STORAGE, "the PikPak drive is full")
    if isinstance(exc, Conflict):
        return DAVError(HTTP_CONFLICT, "the name is taken")
    if isinstance(exc, AuthError):
        log.error("%s: %s", what, exc)
        return DAVError(HTTP_BAD_GATEWAY, "the gateway cannot log in to PikPak (see its log)")
    if isinstance(exc, Unreachable):
        log.warning("%s: %s", what, exc)
        return DAVError(HTTP_BAD_GATEWAY, "the gateway cannot reach PikPak; try again later")
    log.warning("%s: %s", what, exc)
    return DAVError(HTTP_BAD_GATEWAY, "PikPak did not answer properly; try again")


def _unavailable(reason: str, retry_after: float) -> DAVError:
    return DAVError(
        HTTP_SERVICE_UNAVAILABLE,
        reason,
        add_headers=[("Retry-After", str(max(1, math.ceil(retry_after))))],
    )


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

    # ------------------------------------------------------------------ writing
    def _writable(self, name: str | None = None) -> TreeWriter:
        if self.mount.read_only:
            raise DAVError(HTTP_FORBIDDEN, "this folder is read-only")
        if name is not None and name.startswith(HIDDEN_PREFIX):
            raise DAVError(
                HTTP_FORBIDDEN, f"names starting with {HIDDEN_PREFIX} are the gateway's own"
            )
        self.environ.pop("pikdav.resolved", None)  # what this request resolved may change
        return self.mount.writer

    def _parent(self) -> Entry:
        parent_path = self.path.rstrip("/").rpartition("/")[0]
        parent = self.provider.get_resource_inst(parent_path or "/", self.environ)
        if isinstance(parent, ServerRoot):
            raise DAVError(HTTP_FORBIDDEN, "a mount itself cannot be changed")
        if not isinstance(parent, FolderResource):
            raise DAVError(HTTP_CONFLICT, "the folder no longer exists")
        return parent.entry

    def _destination(self, dest_path: str) -> tuple[Entry, str, Entry | None]:
        mount, rest = self.provider.mount_of(dest_path)
        if mount is not self.mount:
            raise DAVError(
                HTTP_BAD_GATEWAY,
                "moving or copying between mounts is not supported; download and upload instead",
            )
        parent_path, _, name = rest.strip("/").rpartition("/")
        if not name:
            raise DAVError(HTTP_FORBIDDEN, "a mount itself cannot be a Destination")
        if self.path.startswith(self._canonical(dest_path).rstrip("/") + "/"):
            # Overwrite: T would first remove the destination, and the source with it.
            raise DAVError(HTTP_FORBIDDEN, "the destination contains the source")
        if name.startswith(HIDDEN_PREFIX):
            raise DAVError(
                HTTP_FORBIDDEN, f"names starting with {HIDDEN_PREFIX} are the gateway's own"
            )
        try:
            parent = self.mount.tree.resolve(parent_path)
            existing = self.mount.tree.resolve(rest.strip("/"))
        except PikPakError as exc:
            raise upstream_error(exc, f"resolving {dest_path}") from None
        if parent is None or not parent.is_folder or not name:
            raise DAVError(HTTP_CONFLICT, "the destination folder does not exist")
        if existing is not None and existing.id == self.entry.id:
            # The same item under another spelling of its path (mount names ignore case).
            raise DAVError(HTTP_FORBIDDEN, "cannot copy or move an item onto itself")
        if existing is not None and self.environ.get("HTTP_OVERWRITE", "T") == "F":
            raise DAVError(HTTP_PRECONDITION_FAILED, "the destination exists")
        return parent, name, existing

    def handle_delete(self) -> bool:
        writer = self._writable()
        if self.entry.id.startswith(PENDING):
            parent = self._parent()
            self.mount.pending.cancel(parent.id, self.entry.name)
            stored = self.mount.tree.child(parent, self.entry.name, stored_only=True)
            if stored is not None:  # the version it was to replace goes too
                try:
                    writer.delete(stored, parent)
                except PikPakError as exc:
                    raise upstream_error(exc, f"deleting {self.path}") from None
            return True
        # WsgiDAV checks the parent's locks only; with a native DELETE the resource's own
        # (and, for a folder, its members') locks are ours to check: 423 if one is held.
        lm = self.provider.lock_manager
        if lm is not None:
            if "wsgidav.conditions.if" not in self.environ:
                util.parse_if_header_dict(self.environ)
            lm.check_write_permission(
                url=self.get_ref_url(),
                depth="infinity",
                token_list=self.environ["wsgidav.ifLockTokenList"],
                principal=self.environ["wsgidav.user_name"],
            )
        try:
            writer.delete(self.entry, self._parent())
        except PikPakError as exc:
            raise upstream_error(exc, f"deleting {self.path}") from None
        self.mount.side_files.delete(self.path)
        ref = self.get_ref_url()
        if self.provider.prop_manager:
            self.provider.prop_manager.remove_properties(ref)
        if self.provider.lock_manager:
            self.provider.lock_manager.remove_all_locks_from_url(ref, recursive=True)
        return True

    def _not_uploading(self, *entries: Entry | None) -> None:
        if any(e is not None and e.id.startswith(PENDING) for e in entries):
            raise DAVError(
                HTTP_CONFLICT, "the file is still uploading; try again when the upload has finished"
            )

    def handle_move(self, dest_path: str) -> bool:
        writer = self._writable()
        self._not_uploading(self.entry)
        parent, name, existing = self._destination(dest_path)
        self._not_uploading(existing)
        try:
            writer.move(self.entry, self._parent(), parent, name, existing)
        except PikPakError as exc:
            raise upstream_error(exc, f"moving {self.path}") from None
        dest = self._canonical(dest_path)
        self.mount.side_files.move(self.path, dest)
        self._carry_properties(dest, move=True)
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        writer = self._writable()
        self._not_uploading(self.entry)
        parent, name, existing = self._destination(dest_path)
        self._not_uploading(existing)
        try:
            writer.copy(self.entry, parent, name, existing, recursive=depth_infinity)
        except PikPakError as exc:
            raise upstream_error(exc, f"copying {self.path}") from None
        self._carry_properties(self._canonical(dest_path), move=False)
        return True

    def _canonical(self, dest_path: str) -> str:
        """The destination as this gateway spells it (the mount's own name)."""
        _, rest = self.provider.mount_of(dest_path)
        return "/" + "/".join([self.mount.name, *[p for p in rest.split("/") if p]])

    def _carry_properties(self, dest_path: str, *, move: bool) -> None:
        pm = self.provider.prop_manager
        src = self.get_ref_url()
        dest = quote(dest_path.rstrip("/") + ("/" if self.is_collection else ""))
        if pm is not None:
            if move:
                pm.move_properties(src, dest, with_children=True)
            else:
                pm.copy_properties(src, dest)
        if move and self.provider.lock_manager:
            self.provider.lock_manager.remove_all_locks_from_url(src, recursive=True)

    def set_last_modified(self, dest_path: str, time_stamp, *, dry_run: bool) -> bool:
        # PikPak cannot set a file's time; clients that send one (Explorer's
        # Win32LastModifiedTime, X-OC-Mtime) are told it worked, and the drive keeps its own.
        return True


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

    def begin_write(self, *, content_type: str | None = None) -> SpoolFile:
        self._writable(self.entry.name)
        exact = self.environ.get("CONTENT_LENGTH") not in (None, "")
        self._spool = SpoolFile(self.mount.spool, size_hint(self.environ), exact=exact)
        self._started = time.monotonic()
        return self._spool

    def end_write(self, *, with_errors: bool) -> None:
        spool: SpoolFile | None = getattr(self, "_spool", None)
        if spool is None:
            return
        if with_errors:
            spool.discard()  # a failed PUT leaves nothing behind, and the old file intact
            return
        spool.close()
        if not spool.complete:
            spool.discard()
            log.warning(
                "PUT %s: the body ended after %d of %d bytes; nothing stored",
                self.path,
                spool.size,
                spool.expected,
            )
            raise DAVError(HTTP_BAD_REQUEST, "the upload ended before its announced length")
        old = None if self.entry.id == "" else self.entry
        if self.mount.pending is not None:
            self.entry = self.mount.pending.add(
                self._parent(), self.entry.name, spool.path, spool.size, spool.gcid()
            )
            log.info(
                "PUT %s: %d B received in %.1f s; uploading in the background",
                self.path,
                spool.size,
                time.monotonic() - self._started,
            )
            return
        received = time.monotonic()
        try:
            self.entry = self.mount.writer.store(self._parent(), self.entry.name, spool, old)
        except PikPakError as exc:
            raise upstream_error(exc, f"uploading {self.path}") from None
        finally:
            spool.discard()
        log.info(
            "PUT %s: %d B received in %.1f s, stored on PikPak in %.1f s",
            self.path,
            spool.size,
            received - self._started,
            time.monotonic() - received,
        )

    def get_content(self):
        if (
            self.mount.pending is not None
            and (local := self.mount.pending.local_file(self.entry)) is not None
        ):
            return open(local, "rb")  # still uploading: served from the local copy
        if self.entry.size > 0 and not self.entry.id.startswith(PENDING):
            try:
                # The link before the answer starts: a file whose link is not ready yet
                # gets a 503 with Retry-After now, not a stream that stalls (and the
                # reader finds the link cached).
                self.mount.tree.link(self.entry)
            except PikPakError as exc:
                raise upstream_error(exc, f"link for {self.path}") from None
        session = self.mount.drive.session
        return RangeReader(
            self.mount.tree,
            self.entry,
            self.provider.cdn,
            planned=self.environ.get("pikdav.range"),
            verify=session.http.verify,
            user_agent=session.platform.user_agent,
            stop=self.environ.get(STOPPING),
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

    def create_empty_resource(self, name: str) -> FileResource | SideFile:
        writer = self._writable(name)
        path = f"{self.path.rstrip('/')}/{name}"
        if self.mount.finder_metadata == "keep_local" and is_finder_metadata(name):
            return SideFile(path, self.environ, self.mount.side_files)
        if self.environ["REQUEST_METHOD"] == "LOCK":
            # LOCK on an unmapped URL creates an empty file (RFC 4918 §9.10.4).
            try:
                entry = writer.create_empty(self.entry, name)
            except PikPakError as exc:
                raise upstream_error(exc, f"creating {path}") from None
            return FileResource(path, self.environ, self.mount, entry)
        # PUT: nothing exists until the upload is complete (see end_write).
        now = time.time()
        pending = Entry("", name, False, 0, now, now, "", "")
        return FileResource(path, self.environ, self.mount, pending)

    def create_collection(self, name: str) -> FolderResource:
        writer = self._writable(name)
        try:
            entry = writer.mkdir(self.entry, name)
        except NameTaken:
            raise DAVError(HTTP_METHOD_NOT_ALLOWED, "the name is taken") from None
        except PikPakError as exc:
            raise upstream_error(exc, f"creating {self.path}{name}") from None
        return FolderResource(f"{self.path.rstrip('/')}/{name}", self.environ, self.mount, entry)

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

    def prevent_locking(self) -> bool:
        # A lock on / would block every mount, also for users who cannot see them.
        return True

    def set_property_value(self, name: str, value, *, dry_run: bool = False) -> None:
        raise DAVError(HTTP_FORBIDDEN, "the server root has no properties to change")


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
        if any(n in (".", "..") for n in names):
            return None  # never folded into another place (see paths.py)
        # Finder, Explorer and Kodi probe names like ._x and desktop.ini in every folder:
        # answer from the cache alone, so a probe never costs an upstream call (a real file
        # of that name is still served once its folder has been listed).
        clean = "/" + "/".join([mount.name, *names])
        name = names[-1] if names else ""
        if name and mount.finder_metadata == "keep_local" and is_finder_metadata(name):
            if mount.side_files.get(clean) is not None:
                return SideFile(clean, environ, mount.side_files)
        junk = (
            bool(name)
            and is_junk(name)
            and environ["REQUEST_METHOD"] in ("GET", "HEAD", "PROPFIND")
        )
        try:
            entry = mount.tree.resolve("/".join(names), cached_only=junk)
        except PikPakError as exc:
            raise upstream_error(exc, f"resolving {path}") from None
        if entry is None:
            return None
        return self.make(clean, environ, mount, entry)

    # ------------------------------------------------------------------ per request
    def custom_request_handler(
        self, environ: dict, start_response: Callable, default_handler: Callable
    ):
        method = environ["REQUEST_METHOD"]
        bound_request_body(environ)
        if method == "PROPFIND":
            if environ.get("HTTP_DEPTH", "infinity") == "infinity":
                raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
            from .propfind import try_fast_propfind

            answer = try_fast_propfind(self, environ, start_response)
            if answer is not None:
                return answer
        if method in ("MOVE", "COPY"):
            return self._copy_or_move(environ, start_response, default_handler)
        if method in ("GET", "HEAD"):
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(resource, FolderResource | ServerRoot):
                if method == "GET":
                    return folder_page(environ, start_response)
                # Kodi sends HEAD to folders before browsing them; a 403 or 500 there
                # breaks browsing. Say it exists and is a folder.
                start_response(
                    "200 OK", [("Content-Type", "httpd/unix-directory"), ("Content-Length", "0")]
                )
                return [b""]
            if method == "GET" and isinstance(resource, FileResource):
                return self._get_file(resource, environ, start_response, default_handler)
            if resource is not None:
                _plan_range(resource, environ)
        return default_handler(environ, start_response)

    def _copy_or_move(self, environ: dict, start_response: Callable, default_handler: Callable):
        """WsgiDAV answers 204 after a native COPY/MOVE; RFC 4918 wants 201 when the
        destination did not exist before."""
        dest = destination_path(environ)  # a clear 4xx for no place, before WsgiDAV reads it
        existed = self.get_resource_inst(dest.rstrip("/"), environ) is not None
        environ.pop("pikdav.resolved", None)

        def created(status: str, headers: list, exc_info=None):
            if status.startswith("204") and not existed:
                status = "201 Created"
            if exc_info:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return default_handler(environ, created)

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
        if entry.size == 0 or entry.id.startswith(PENDING):
            _plan_range(resource, environ)  # still uploading: served from the local copy
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
        _plan_range(resource, environ)
        return default_handler(environ, start_response)


def _plan_range(resource: DAVNonCollection, environ: dict) -> None:
    """Read Range and If-Range once (see .ranges): WsgiDAV then sees the chosen range written
    plainly, or no Range; a proxied stream asks the CDN for the same bytes
    (``pikdav.range``)."""
    header = environ.pop("HTTP_RANGE", None)
    if_range = environ.pop("HTTP_IF_RANGE", None)
    size = resource.get_content_length()
    if header is None or size is None or not resource.support_ranges():
        return
    etag = resource.get_etag() if resource.support_etag() else None
    if not ranges.if_range_holds(if_range, etag, resource.get_last_modified()):
        return
    answer = ranges.plan(header, size)
    if answer is ranges.UNSATISFIABLE:
        # WsgiDAV answers this one 416 with "Content-Range: bytes */size", after the If-*
        # headers, which RFC 9110 evaluates first.
        environ["HTTP_RANGE"] = f"bytes={size}-"
    elif answer is not None:
        environ["HTTP_RANGE"] = answer.header()
        environ["pikdav.range"] = (answer.start, answer.end)


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
