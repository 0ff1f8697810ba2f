"""The WsgiDAV provider: a thin translation of DAV onto vfs mounts.

The server root lists the mounts a user may open; below it each path is resolved by its mount
(:class:`pikdav.vfs.mount.Mount`), and resources are built per request from what the mount
already holds: a folder's members come from one cached listing, never from a lookup per child.
What a write means (background or direct upload, what a DELETE of a file still uploading does,
which names are the gateway's own) is the mount's decision; here it becomes statuses, locks and
dead properties. GET is the delivery step's (:mod:`.delivery`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from pikdav.httpserver import STOPPING
from pikdav.pikpak.errors import PikPakError
from pikdav.vfs.errors import MountError, NameTaken
from pikdav.vfs.mount import Mount
from pikdav.vfs.names import stored_name
from pikdav.vfs.spool import SpoolFile
from pikdav.vfs.tree import Entry

from . import clients, propfind
from .auth import WRITE_METHODS, may_access
from .delivery import ProxiedBody, content_disposition, get_file, plan_range
from .errors import answering, dav_error
from .folderpage import Row, folder_page
from .limits import bound_request_body
from .logtext import client_text
from .paths import destination_path
from .policy import DownloadPolicy, request_client
from .ranges import ByteRange
from .sidefiles import SideFile
from .transfers import PUT, RECEIVING, UPLOADING, Transfer, Transfers

log = logging.getLogger(__name__)

_RESOLVED = "pikdav.resolved"  # environ key: this request's path → resource memo
_REFUSED = "pikdav.refused"  # environ key: why a native COPY or MOVE was refused
_CAUGHT_UP = "pikdav.caught_up"  # environ key: the mounts this request has caught up on
TRANSFERS = "pikdav.transfers"  # environ key: the registry of transfers in progress
_ROOT_UNCHANGEABLE = ("DELETE", "MOVE", "COPY", "PUT", "MKCOL")  # the root lists the mounts
_QUOTA_PROPS = ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes")


def _size_hint(environ: dict) -> int | None:
    """The announced body size: Content-Length, or Finder's X-Expected-Entity-Length when it
    sends a chunked body."""
    for key in ("CONTENT_LENGTH", "HTTP_X_EXPECTED_ENTITY_LENGTH"):
        value = environ.get(key)
        if value not in (None, ""):
            try:
                return max(0, int(value))
            except ValueError:
                continue
    return None


class _Resource:
    """What both kinds of resource share: their mount, entry, dates and the write verbs."""

    mount: Mount
    entry: Entry
    path: str
    environ: dict
    provider: GatewayProvider

    def get_creation_date(self) -> float | None:
        return self.entry.created or None

    def get_last_modified(self) -> float | None:
        return self.entry.modified or None

    def get_display_name(self) -> str:
        return self.entry.name

    def get_property_value(self, name: str):
        # RFC 4331: only the mount root has a quota, and only a source with one (not a
        # share); elsewhere the property does not exist (WsgiDAV would answer an empty 200).
        if name in _QUOTA_PROPS and self._quota() is None:
            raise DAVError(HTTP_NOT_FOUND)
        return super().get_property_value(name)

    def _quota(self):
        """The mount's quota here (see :meth:`Mount.quota_at`), unless this client is
        answered without it (see :func:`.clients.hides_quota`)."""
        if clients.hides_quota(self.environ):
            return None
        return self.mount.quota_at(self.entry)

    # ------------------------------------------------------------------ writing
    def set_property_value(self, name: str, value, *, dry_run: bool = False) -> None:
        # A share is someone else's: not even a dead property of ours is written onto it.
        if self.mount.foreign:
            raise DAVError(HTTP_FORBIDDEN, "a share is read-only")
        return super().set_property_value(name, value, dry_run=dry_run)

    def prevent_locking(self) -> bool:
        return self.mount.foreign or super().prevent_locking()

    def _changing(self, name: str | None = None) -> None:
        """Refuse now when the mount will not take the change; what this request resolved
        may change, so it is resolved again afterwards."""
        with answering(f"changing {self.path}"):
            self.mount.check_writable(name)
        self.environ.pop(_RESOLVED, None)

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
        self._changing(name)
        with answering(f"resolving {dest_path}"):
            parent = self.mount.resolve([p for p in parent_path.split("/") if p], looking=False)
            existing = self.mount.resolve([p for p in rest.split("/") if p], looking=False)
        if parent is None or not parent.is_folder:
            raise DAVError(HTTP_CONFLICT, "the destination folder does not exist")
        if self.entry.is_folder and any(
            step.id == self.entry.id for step in self._folders_to(parent_path)
        ):
            # Compared as items, not as spellings: mount names ignore case, so WsgiDAV's
            # own check (of the paths as sent) misses /PIKPAK/R/sub under /pikpak/R.
            raise DAVError(HTTP_FORBIDDEN, "the destination is inside the source")
        if existing is not None and existing.id == self.entry.id:
            # The same item under another spelling of its path (mount names ignore case).
            raise DAVError(HTTP_FORBIDDEN, "cannot copy or move an item onto itself")
        if existing is not None and self.environ.get("HTTP_OVERWRITE", "T") == "F":
            raise DAVError(HTTP_PRECONDITION_FAILED, "the destination exists")
        return parent, stored_name(name), existing

    def _folders_to(self, parent_path: str) -> Iterator[Entry]:
        """The folders on the way from the mount's root down to ``parent_path`` (as far as
        they exist), from cached listings."""
        names = [p for p in parent_path.split("/") if p]
        for depth in range(len(names) + 1):
            with answering(f"resolving {parent_path}"):
                step = self.mount.resolve(names[:depth], looking=False)
            if step is None:
                return
            yield step

    def handle_delete(self) -> bool:
        self._changing()
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
        with answering(f"deleting {self.path}"):
            self.mount.delete(self.entry, self._parent())
            self.mount.side_files.delete(self.path)
        ref = self.get_ref_url()
        if self.provider.prop_manager:
            self.provider.prop_manager.remove_properties(ref)
        if self.provider.lock_manager:
            self.provider.lock_manager.remove_all_locks_from_url(ref, recursive=True)
        return True

    def handle_move(self, dest_path: str) -> bool:
        with self._refusing():
            parent, name, existing = self._destination(dest_path)
            dest = self._canonical(dest_path)
            with answering(f"moving {self.path}"):
                self.mount.move(self.entry, self._parent(), parent, name, existing)
                self.mount.side_files.move(self.path, dest)
            self._carry_properties(dest, move=True)
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        with self._refusing():
            parent, name, existing = self._destination(dest_path)
            with answering(f"copying {self.path}"):
                self.mount.copy(self.entry, parent, name, existing, recursive=depth_infinity)
            self._carry_properties(self._canonical(dest_path), move=False)
        return True

    @contextlib.contextmanager
    def _refusing(self) -> Iterator[None]:
        """WsgiDAV answers a DAVError of a native COPY or MOVE with its HTML error page; the
        provider raises it again (see :meth:`GatewayProvider._copy_or_move`), so that the
        client gets the short plain-text reason of every other refusal."""
        try:
            yield
        except DAVError as exc:
            self.environ[_REFUSED] = exc
            raise

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


class FileResource(_Resource, DAVNonCollection):
    def __init__(self, path: str, environ: dict, mount: Mount, entry: Entry) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.mount = mount
        self.entry = entry
        self.planned: ByteRange | None = None  # the range a GET answers (see .delivery)
        self._body: SpoolFile | None = None
        self._transfer: Transfer | None = None  # a PUT's, in the list of transfers

    def get_content_length(self) -> int:
        return self.entry.size

    def get_content_type(self) -> str:
        return self.entry.content_type

    def finalize_headers(self, environ: dict, response_headers: list) -> None:
        """A file answered here (proxied): shown in the browser or saved, by its type."""
        response_headers.extend(content_disposition(self.entry.name, self.get_content_type()))

    def get_etag(self) -> str:
        return self.entry.etag

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def begin_write(self, *, content_type: str | None = None) -> SpoolFile:
        self._changing(self.entry.name)
        exact = self.environ.get("CONTENT_LENGTH") not in (None, "")
        with answering(f"receiving {self.path}"):
            self._body = self.mount.receive(_size_hint(self.environ), exact=exact)
        self._started = time.monotonic()
        transfers: Transfers | None = self.environ.get(TRANSFERS)
        self._transfer = None
        if transfers is not None:
            self._transfer = transfers.start(
                PUT, self._client(), self.path, self._body.expected, RECEIVING
            )
        return _Receiving(self._body, f"receiving {self.path}", self._transfer)

    def _transfer_ended(self) -> None:
        transfers: Transfers | None = self.environ.get(TRANSFERS)
        if transfers is not None and self._transfer is not None:
            transfers.end(self._transfer)
        self._transfer = None

    def end_write(self, *, with_errors: bool) -> None:
        body, self._body = self._body, None
        if body is None:
            return
        if with_errors:
            self._transfer_ended()
            body.discard()  # a failed PUT leaves nothing behind, and the old file intact
            return
        received = time.monotonic()
        old = self.entry if self.entry.id else None  # no id: nothing of that name yet
        if self._transfer is not None:
            self._transfer.phase = UPLOADING
        try:
            with answering(f"PUT {self.path} ({body.size} of {body.expected} B)"):
                self.entry = self.mount.store(
                    self._parent(),
                    self.entry.name,
                    body,
                    old,
                    self.environ.get("wsgidav.user_name") or "",
                )
        finally:
            self._transfer_ended()
        drop = self.mount.drop
        started = drop.started(self.entry) if drop is not None else None
        if started is not None:  # a link file dropped into the offline folder
            tasks = f"{started} offline task" + ("" if started == 1 else "s")
            how = f"{tasks} started in {self.mount.offline_folder}; the file is not stored"
        elif self.entry.uploading:
            how = "uploading in the background"
        else:
            how = f"stored on PikPak in {time.monotonic() - received:.1f} s"
        log.info(
            "PUT %s: %d B received in %.1f s, %s",
            client_text(self.path),
            body.size,
            received - self._started,
            how,
        )

    def get_content(self):
        start, end = (self.planned.start, self.planned.end) if self.planned else (0, None)
        what = f"reading {self.path}"
        cached = self.mount.cached(self.entry, start)  # read from a cache: no link needed
        if self.entry.size > 0 and not self.entry.uploading and not cached:
            with answering(f"link for {self.path}"):
                # The link before the answer starts: a file whose link is not ready yet
                # gets a 503 with Retry-After now, not a stream that stalls (and the
                # reader finds the link cached).
                self.mount.link(self.entry)
        with answering(what):  # a waiting upload another instance holds: 423
            reader = self.mount.open(self.entry, start, end, stop=self.environ.get(STOPPING))
        if self.entry.uploading:
            return reader
        return ProxiedBody(
            reader,
            what,
            self.environ.get(TRANSFERS),
            client=self._client(),
            path=self.path,
            total=(end if end is not None else self.entry.size) - start,
        )

    def _client(self) -> str:
        return request_client(self.environ)


class _Receiving:
    """The body WsgiDAV writes a PUT into: the mount's spool, with its refusals (too large,
    no room) as DAV statuses."""

    def __init__(self, body: SpoolFile, what: str, transfer: Transfer | None = None) -> None:
        self._body = body
        self._what = what
        self._transfer = transfer

    def write(self, data: bytes) -> int:
        with answering(self._what):
            written = self._body.write(data)
        if self._transfer is not None:
            self._transfer.advance(len(data))
        return written

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._body.close()


class FolderResource(_Resource, DAVCollection):
    def __init__(self, path: str, environ: dict, mount: Mount, entry: Entry) -> None:
        DAVCollection.__init__(self, path, environ)
        self.mount = mount
        self.entry = entry

    def get_display_name(self) -> str:
        return self.mount.name if self.mount.is_root(self.entry) else self.entry.name

    def children(self) -> tuple[Entry, ...]:
        with answering(f"listing {self.path}"):
            return self.mount.children(self.entry)

    def get_member_names(self) -> list[str]:
        return [e.name for e in self.children()]

    def get_member_list(self) -> list[FileResource | FolderResource]:
        base = self.path.rstrip("/")
        return [
            self.provider.make(f"{base}/{e.name}", self.environ, self.mount, e)
            for e in self.children()
        ]

    def get_member(self, name: str) -> FileResource | FolderResource | None:
        with answering(f"listing {self.path}"):
            entry = self.mount.child(self.entry, name)
        if entry is None:
            return None
        return self.provider.make(
            f"{self.path.rstrip('/')}/{name}", self.environ, self.mount, entry
        )

    def create_empty_resource(self, name: str) -> FileResource | SideFile:
        self._changing(name)
        path = f"{self.path.rstrip('/')}/{name}"
        if self.mount.keeps_locally(name):
            return SideFile(path, self.environ, self.mount.side_files)
        name = stored_name(name)  # Finder's NFD spelling is stored as NFC (see vfs.names)
        if self.environ["REQUEST_METHOD"] == "LOCK":
            # LOCK on an unmapped URL creates an empty file (RFC 4918 §9.10.4).
            with answering(f"creating {path}"):
                entry = self.mount.create_empty(self.entry, name)
            return FileResource(path, self.environ, self.mount, entry)
        # PUT: nothing exists until the upload is complete (see end_write).
        now = time.time()
        return FileResource(
            path, self.environ, self.mount, Entry("", name, False, 0, now, now, "", "")
        )

    def create_collection(self, name: str) -> FolderResource:
        name = stored_name(name)
        self._changing(name)
        try:
            entry = self.mount.mkdir(self.entry, name)
        except NameTaken:  # RFC 4918 §9.3.1: MKCOL on a name that is taken
            raise DAVError(HTTP_METHOD_NOT_ALLOWED, "the name is taken") from None
        except (PikPakError, MountError) as exc:
            raise dav_error(exc, f"creating {self.path}{name}") from None
        return FolderResource(f"{self.path.rstrip('/')}/{name}", self.environ, self.mount, entry)

    def get_used_bytes(self) -> int | None:
        quota = self._quota()
        return quota.usage if quota else None

    def get_available_bytes(self) -> int | None:
        quota = self._quota()
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
        return FolderResource(f"/{name}", self.environ, mount, mount.root)

    def get_member_list(self) -> list[FolderResource]:
        return [FolderResource(f"/{m.name}", self.environ, m, m.root) for m in self._visible()]

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
    realm covers them all; each mount has its download policy."""

    def __init__(
        self,
        mounts: Iterable[Mount],
        policies: Mapping[str, DownloadPolicy],
        transfers: Transfers | None = None,
    ) -> None:
        """``transfers``: where proxied streams and PUTs are shown while they run."""
        super().__init__()
        self.mounts = {m.name: m for m in mounts}
        self.policies = dict(policies)
        self.transfers = transfers or Transfers()
        self.started = time.time()
        # Several instances on one Redis: while it is down, nothing may change (see
        # pikdav.vfs.cluster); reads go on from the local caches.
        self.cluster = next((m.cluster for m in self.mounts.values() if m.cluster), None)

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
        memo: dict[str, Any] = environ.setdefault(_RESOLVED, {})
        if path in memo:
            return memo[path]
        memo[path] = resource = self._resolve(path, environ)
        return resource

    def _resolve(self, path: str, environ: dict):
        if path.strip("/") == "":
            return ServerRoot("/", environ)
        mount, rest = self.mount_of(path)
        if mount is None and self._hints_at(path.strip("/"), self.mounts.values()):
            return clients.HintFile("/" + path.strip("/"), environ)  # a mount at the server root
        if mount is None or not may_access(environ, mount.name):
            return None
        names = [p for p in rest.split("/") if p]
        clean = "/" + "/".join([mount.name, *names])
        if len(names) == 1 and self._hints_at(names[0], [mount]):
            return clients.HintFile(clean, environ)
        if names and mount.keeps_locally(names[-1]) and mount.side_files.get(clean) is not None:
            return SideFile(clean, environ, mount.side_files)
        looking = environ["REQUEST_METHOD"] in ("GET", "HEAD", "PROPFIND")
        caught_up: set[str] = environ.setdefault(_CAUGHT_UP, set())
        if mount.name not in caught_up:  # once per request and mount
            caught_up.add(mount.name)
            mount.caught_up()
        with answering(f"resolving {path}"):
            entry = mount.resolve(names, looking=looking)
        if entry is None:
            return None
        return self.make(clean, environ, mount, entry)

    @staticmethod
    def _hints_at(name: str, mounts: Iterable[Mount]) -> bool:
        """Whether ``name`` at the root of one of ``mounts`` is a Finder hint file pikdav
        answers (the mount option ``finder_hints``, on by default)."""
        return clients.is_hint_file(name) and any(m.finder_hints for m in mounts)

    def _hint_unchanged(self, path: str, environ: dict) -> None:
        """403 now (a plain answer, before WsgiDAV's own) for a change of a hint file."""
        if not clients.is_hint_file(path.rstrip("/").rpartition("/")[2]):
            return
        if isinstance(self.get_resource_inst(path.rstrip("/"), environ), clients.HintFile):
            raise DAVError(HTTP_FORBIDDEN, "a Finder hint file of pikdav's own cannot be changed")

    # ------------------------------------------------------------------ per request
    def custom_request_handler(
        self, environ: dict, start_response: Callable, default_handler: Callable
    ):
        method = environ["REQUEST_METHOD"]
        if self.cluster is not None and method in WRITE_METHODS:
            with answering(f"{method} {environ['PATH_INFO']}"):
                self.cluster.check()  # LOCK and UNLOCK too: the locks live in Redis
        if method in _ROOT_UNCHANGEABLE and environ["PATH_INFO"].strip("/") == "":
            raise DAVError(
                HTTP_FORBIDDEN, "the server root cannot be deleted, moved, copied or written"
            )
        bound_request_body(environ)
        if method in WRITE_METHODS:  # COPY too: pikdav has nothing to copy from a hint
            self._hint_unchanged(environ["PATH_INFO"], environ)
        environ[TRANSFERS] = self.transfers
        if method == "PROPFIND":
            if environ.get("HTTP_DEPTH", "infinity") == "infinity":
                raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(resource, FolderResource):
                answer = propfind.try_fast_propfind(self, resource, environ, start_response)
                if answer is not None:
                    return answer
        if method in ("MOVE", "COPY"):
            return self._copy_or_move(environ, start_response, default_handler)
        if method in ("GET", "HEAD"):
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(resource, FolderResource | ServerRoot):
                if method == "GET":
                    return folder_page(environ, start_response, self._rows(resource))
                # Kodi sends HEAD to folders before browsing them; a 403 or 500 there
                # breaks browsing. Say it exists and is a folder.
                start_response(
                    "200 OK", [("Content-Type", "httpd/unix-directory"), ("Content-Length", "0")]
                )
                return [b""]
            if method == "GET" and isinstance(resource, FileResource):
                policy = self.policies[resource.mount.name]
                return get_file(
                    resource, policy, environ, start_response, default_handler, self.transfers
                )
            if resource is not None:
                plan_range(resource, environ)
        return default_handler(environ, start_response)

    @staticmethod
    def _rows(folder: FolderResource | ServerRoot) -> list[Row]:
        """A folder's listing for a browser (see :mod:`.folderpage`)."""
        if isinstance(folder, ServerRoot):
            return [Row(name, True) for name in folder.get_member_names()]
        return [Row(e.name, e.is_folder, e.size, e.modified) for e in folder.children()]

    def _copy_or_move(self, environ: dict, start_response: Callable, default_handler: Callable):
        """WsgiDAV answers 204 after a native COPY/MOVE; RFC 4918 wants 201 when the
        destination did not exist before."""
        dest = destination_path(environ)  # a clear 4xx for no place, before WsgiDAV reads it
        self._hint_unchanged(dest, environ)
        existed = self.get_resource_inst(dest.rstrip("/"), environ) is not None
        environ.pop(_RESOLVED, None)

        def created(status: str, headers: list, exc_info=None):
            if status.startswith("204") and not existed:
                status = "201 Created"
            if exc_info:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        answer = default_handler(environ, created)
        refused = environ.pop(_REFUSED, None)
        if refused is not None:
            raise refused
        return answer


__all__ = ["FileResource", "FolderResource", "GatewayProvider", "ServerRoot", "dav_error"]
