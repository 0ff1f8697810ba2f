"""The emulator's state: accounts, their drives, tokens, captcha tokens, uploads, tasks, shares.

One lock guards it all; handlers take it for short, in-memory work only (never while
streaming bytes). Rules PikPak follows and the emulator reproduces are stated where they
are implemented.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import errors
from .blobs import Blob, BlobStore
from .faults import Faults
from .stats import Stats

# PikPak reports times in its own zone, with milliseconds.
_CST = timezone(timedelta(hours=8))
_ALNUM = string.ascii_letters + string.digits

PHASE_COMPLETE = "PHASE_TYPE_COMPLETE"
PHASE_PENDING = "PHASE_TYPE_PENDING"
PHASE_RUNNING = "PHASE_TYPE_RUNNING"
PHASE_ERROR = "PHASE_TYPE_ERROR"
FOLDER = "drive#folder"
FILE = "drive#file"
MY_PACK = "My Pack"
MAX_NAME = 255


def rfc3339(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, _CST).isoformat(timespec="milliseconds")


def new_id(length: int = 26) -> str:
    return "V" + "".join(secrets.choice(_ALNUM) for _ in range(length - 1))


def split_ext(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def numbered(name: str, n: int, is_folder: bool) -> str:
    """PikPak's clash rule: ``film.mkv`` becomes ``film(1).mkv``; folders ``docs(1)``."""
    if is_folder:
        return f"{name}({n})"
    stem, ext = split_ext(name)
    return f"{stem}({n}){ext}"


@dataclass
class Node:
    id: str
    kind: str
    name: str
    parent_id: str
    owner: str
    user_id: str
    created: float
    modified: float
    blob: Blob | None = None
    size: int = 0
    gcid: str = ""
    phase: str = PHASE_COMPLETE
    trashed: bool = False
    delete_time: float = 0.0
    starred: bool = False
    folder_type: str = "NORMAL"
    revision: int = 1
    link_ready_at: float = 0.0
    transcode: bool = False
    original_url: str = ""

    @property
    def is_folder(self) -> bool:
        return self.kind == FOLDER

    @property
    def mime_type(self) -> str:
        if self.is_folder:
            return ""
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    @property
    def category(self) -> str:
        major = self.mime_type.split("/")[0]
        if major in ("video", "audio"):
            return major.upper()
        if self.mime_type in (
            "application/zip",
            "application/x-rar-compressed",
            "application/x-7z-compressed",
            "application/x-tar",
        ):
            return "ARCHIVE"
        return "OTHER"

    def wire(self) -> dict[str, Any]:
        """The file object as PikPak lists it (sizes as strings, no links in lists)."""
        ext = split_ext(self.name)[1]
        return {
            "kind": self.kind,
            "id": self.id,
            "parent_id": self.parent_id,
            "name": self.name,
            "user_id": self.user_id,
            "size": str(self.size),
            "revision": str(self.revision),
            "file_extension": "" if self.is_folder else ext,
            "mime_type": self.mime_type,
            "starred": self.starred,
            "web_content_link": "",
            "created_time": rfc3339(self.created),
            "modified_time": rfc3339(self.modified),
            "icon_link": "",
            "thumbnail_link": "",
            "md5_checksum": "",
            "hash": self.gcid,
            "links": {},
            "phase": self.phase,
            "audit": {"status": "STATUS_OK", "message": "", "title": ""},
            "medias": [],
            "trashed": self.trashed,
            "delete_time": rfc3339(self.delete_time),
            "original_url": self.original_url,
            "params": {"platform_icon": ""},
            "original_file_index": 0,
            "space": "",
            "apps": [],
            "writable": True,
            "folder_type": self.folder_type if self.is_folder else "",
            "sort_name": "",
            "user_modified_time": rfc3339(self.modified),
            "file_category": "" if self.is_folder else self.category,
            "tags": [],
            "reference_events": [],
            "reference_resource": None,
        }


@dataclass
class Account:
    username: str
    password: str
    user_id: str
    quota: int
    nodes: dict[str, Node] = field(default_factory=dict)
    # parent id -> child ids in creation order (root is "")
    children: dict[str, list[str]] = field(default_factory=dict)
    tasks_today: int = 0
    task_day: str = ""


@dataclass
class AccessToken:
    account: str
    client_id: str
    expires_at: float


@dataclass
class RefreshToken:
    account: str
    client_id: str
    used: bool = False


@dataclass
class CaptchaToken:
    client_id: str
    device_id: str
    for_signin: bool
    meta: dict[str, Any]
    expires_at: float
    solved: bool = True
    action: str = ""


@dataclass
class Upload:
    """An upload ticket's object-store side: where the bytes go and with which credentials."""

    key: str
    bucket: str
    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: float
    size: int
    gcid: str
    account: str
    file_id: str
    task_id: str
    multipart: dict[str, dict[int, tuple[Path, str, int]]] = field(default_factory=dict)


@dataclass
class Task:
    id: str
    account: str
    type: str
    name: str
    phase: str
    created: float
    params: dict[str, Any] = field(default_factory=dict)
    file_id: str = ""
    file_name: str = ""
    file_size: int = 0
    url: str = ""
    parent_id: str = ""
    message: str = ""
    duration: float = 0.0

    def wire(self, world: World) -> dict[str, Any]:
        progress = 100 if self.phase == PHASE_COMPLETE else 0
        if self.phase in (PHASE_RUNNING, PHASE_PENDING) and self.duration:
            progress = min(99, int((time.time() - self.created) / self.duration * 100))
        acct = world.accounts.get(self.account)
        return {
            "kind": "drive#task",
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "user_id": acct.user_id if acct else "",
            "statuses": [],
            "status_size": 1,
            "params": {
                "age": "",
                "predict_speed": "",
                "predict_type": "",
                "url": self.url,
                **self.params,
            },
            "file_id": self.file_id,
            "file_name": self.file_name or self.name,
            "file_size": str(self.file_size),
            "message": self.message or _task_message(self.phase),
            "created_time": rfc3339(self.created),
            "updated_time": rfc3339(time.time()),
            "third_task_id": "",
            "phase": self.phase,
            "progress": progress,
            "icon_link": "",
            "callback": "",
            "reference_resource": None,
            "space": "",
        }


def _task_message(phase: str) -> str:
    return {PHASE_COMPLETE: "Saved", PHASE_ERROR: "Failed", PHASE_PENDING: "Pending"}.get(
        phase, "Saving"
    )


@dataclass
class Share:
    id: str
    account: str
    file_ids: list[str]
    pass_code: str
    expires_at: float | None
    created: float
    tokens: set[str] = field(default_factory=set)
    status: str = "OK"  # set through the control API: EXPIRED, NOT_FOUND, SENSITIVE_RESOURCE


class World:
    def __init__(
        self,
        workdir: Path,
        token_ttl: int = 7200,
        link_ttl: int = 86400,
        link_delay: float = 0.0,
        offline_seconds: float = 2.0,
    ) -> None:
        self.lock = threading.RLock()
        self.workdir = workdir
        self.blobs = BlobStore(workdir / "blobs")
        self.stats = Stats()
        self.faults = Faults()
        self.token_ttl = token_ttl
        self.link_ttl = link_ttl
        self.link_delay = link_delay
        self.offline_seconds = offline_seconds
        self.upload_ttl = 3600
        # Per download node (the first label of the host: "dl-a10b-0622", "*" for any):
        # seconds added before it answers, and the nodes that answer 503 to everything.
        self.cdn_latency: dict[str, float] = {}
        self.cdn_down: set[str] = set()
        # PikPak's CDN limits (all off by default; see cdn.py): bytes per second per
        # connection, concurrent connections per signed link and per account, and a delay
        # before the first byte of every answer.
        self.cdn_conn_rate = 0
        self.cdn_link_conns = 0
        self.cdn_account_conns = 0
        self.cdn_first_byte_delay = 0.0
        self.store_rate = 0  # bytes per second each request to the object store is taken in at
        self.task_daily_limit = 100
        self.bucket = "pikpak-emulator"
        self.secret = secrets.token_bytes(32)
        self.accounts: dict[str, Account] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.captcha_tokens: dict[str, CaptchaToken] = {}
        self.uploads: dict[str, Upload] = {}
        self.tasks: dict[str, Task] = {}
        self.shares: dict[str, Share] = {}
        # PikPak's play limit on shared files: {"min_size": bytes, "fraction": 0.45} or None
        self.share_play_limit: dict[str, float] | None = None
        self.share_region_blocked = False
        # user id -> links issued before this instant (ms) are dead (control API expire-links)
        self.links_revoked_before: dict[str, float] = {}

    # ------------------------------------------------------------------ accounts
    def add_account(self, username: str, password: str, quota: int = 10 << 40) -> Account:
        with self.lock:
            acct = self.accounts.get(username)
            if acct is None:
                acct = Account(username, password, new_id(16)[:16].replace("V", "Y", 1), quota)
                acct.children[""] = []
                self.accounts[username] = acct
            else:
                acct.password = password
            return acct

    def account_by_login(self, login: str) -> Account | None:
        return self.accounts.get(login)

    # ------------------------------------------------------------------ tokens
    def _jwt(self, acct: Account, client_id: str, expires_at: float) -> str:
        def b64(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        header = b64({"alg": "HS256", "typ": "JWT", "kid": "emulator"})
        now = int(time.time())
        payload = b64(
            {
                "iss": "https://user.mypikpak.com",
                "sub": acct.user_id,
                "aud": client_id,
                "exp": int(expires_at),
                "iat": now,
                "at_hash": "r." + secrets.token_urlsafe(12),
                "scope": "profile pan",
                "project_id": "2rvk4e3gkdnl7u1kl0k",
                "meta": {"a": "0.0.0.0/0"},
                "jti": secrets.token_hex(8),
            }
        )
        sig = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"

    def issue_tokens(self, acct: Account, client_id: str) -> dict[str, Any]:
        expires_at = time.time() + self.token_ttl
        access = self._jwt(acct, client_id, expires_at)
        refresh = "os." + secrets.token_urlsafe(60)
        self.access_tokens[access] = AccessToken(acct.username, client_id, expires_at)
        self.refresh_tokens[refresh] = RefreshToken(acct.username, client_id)
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.token_ttl,
            "sub": acct.user_id,
            "user_id": acct.user_id,
        }

    def authenticate(self, authorization: str) -> Account:
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        with self.lock:
            entry = self.access_tokens.get(token)
            if entry is None or entry.expires_at <= time.time():
                self.stats.add("unauthenticated", entry.account if entry else None)
                raise errors.unauthenticated()
            return self.accounts[entry.account]

    def expire_tokens(self, username: str) -> int:
        now = time.time()
        count = 0
        with self.lock:
            for entry in self.access_tokens.values():
                if entry.account == username and entry.expires_at > now:
                    entry.expires_at = now
                    count += 1
        return count

    # ------------------------------------------------------------------ captcha
    def captcha_valid(self, token: str) -> bool:
        with self.lock:
            entry = self.captcha_tokens.get(token)
            return entry is not None and entry.expires_at > time.time() and entry.solved

    def check_captcha(
        self, token: str, acct: Account | None = None, *, missing_ok: bool = False
    ) -> None:
        """Drive calls that need a captcha token: an expired, unknown or unsolved one is
        code 9; so is a missing one, unless the endpoint lets it pass (``missing_ok``)."""
        if missing_ok and not token:
            return
        if not self.captcha_valid(token):
            self.stats.add("captcha_rejected", acct.username if acct else None)
            raise errors.captcha_invalid_drive()

    # ------------------------------------------------------------------ tree
    def node(self, acct: Account, file_id: str, *, allow_trashed: bool = True) -> Node:
        node = acct.nodes.get(file_id)
        if node is None or (node.trashed and not allow_trashed):
            raise errors.not_found()
        return node

    def folder(self, acct: Account, folder_id: str) -> Node | None:
        """The folder with this id (None for the root); 404 if it is not a live folder."""
        if folder_id in ("", "root"):
            return None
        node = acct.nodes.get(folder_id)
        if node is None or not node.is_folder or self.is_trashed(acct, node):
            raise errors.ApiError(404, "file_not_found", 5, "Parent folder not found")
        return node

    def is_trashed(self, acct: Account, node: Node) -> bool:
        while True:
            if node.trashed:
                return True
            if not node.parent_id:
                return False
            parent = acct.nodes.get(node.parent_id)
            if parent is None:
                return True
            node = parent

    def live_children(self, acct: Account, parent_id: str) -> Iterator[Node]:
        for cid in acct.children.get(parent_id, []):
            node = acct.nodes[cid]
            if not node.trashed:
                yield node

    def free_name(
        self, acct: Account, parent_id: str, name: str, is_folder: bool, ignore: str | None = None
    ) -> str:
        taken = {n.name for n in self.live_children(acct, parent_id) if n.id != ignore}
        if name not in taken:
            return name
        n = 1
        while numbered(name, n, is_folder) in taken:
            n += 1
        return numbered(name, n, is_folder)

    def check_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise errors.ApiError(400, "file_name_empty", 3, "The file name cannot be empty")
        # PikPak counts characters, not bytes, and takes control characters in a name.
        if "/" in name or len(name) > MAX_NAME or name in (".", ".."):
            raise errors.ApiError(400, "file_name_invalid", 3, "The file name is invalid")
        # What rclone's PikPak backend encodes because PikPak does not keep it as sent: a
        # backslash, trailing spaces and dots (refused here, so that a client sees it).
        if "\\" in name or name[-1].isspace() or name.endswith("."):
            raise errors.ApiError(400, "file_name_invalid", 3, "The file name is invalid")
        return name

    def add_node(
        self,
        acct: Account,
        parent_id: str,
        name: str,
        kind: str,
        *,
        blob: Blob | None = None,
        size: int = 0,
        gcid: str = "",
        phase: str = PHASE_COMPLETE,
        rename_on_clash: bool = True,
        folder_type: str = "NORMAL",
    ) -> Node:
        if rename_on_clash:
            name = self.free_name(acct, parent_id, name, kind == FOLDER)
        now = time.time()
        node = Node(
            new_id(),
            kind,
            name,
            parent_id,
            acct.username,
            acct.user_id,
            now,
            now,
            blob=blob,
            size=blob.size if blob else size,
            gcid=blob.gcid if blob else gcid,
            phase=phase,
            folder_type=folder_type,
            link_ready_at=now + self.link_delay if kind == FILE else 0.0,
        )
        acct.nodes[node.id] = node
        acct.children.setdefault(parent_id, []).append(node.id)
        if kind == FOLDER:
            acct.children.setdefault(node.id, [])
        return node

    def ensure_path(self, acct: Account, path: str) -> str:
        """Create the folders of ``a/b/c`` as needed; returns the id of the last one."""
        parent = ""
        for part in [p for p in path.split("/") if p]:
            found = next(
                (n for n in self.live_children(acct, parent) if n.name == part and n.is_folder),
                None,
            )
            parent = (found or self.add_node(acct, parent, part, FOLDER)).id
        return parent

    def detach(self, acct: Account, node: Node) -> None:
        acct.children.get(node.parent_id, []).remove(node.id)

    def attach(self, acct: Account, node: Node, parent_id: str) -> None:
        node.parent_id = parent_id
        acct.children.setdefault(parent_id, []).append(node.id)

    def is_ancestor(self, acct: Account, maybe_ancestor: str, node_id: str) -> bool:
        current = node_id
        while current:
            if current == maybe_ancestor:
                return True
            current = acct.nodes[current].parent_id if current in acct.nodes else ""
        return False

    def subtree(self, acct: Account, node: Node) -> Iterator[Node]:
        yield node
        for cid in list(acct.children.get(node.id, [])):
            yield from self.subtree(acct, acct.nodes[cid])

    def remove(self, acct: Account, node: Node) -> None:
        for item in list(self.subtree(acct, node)):
            acct.nodes.pop(item.id, None)
            acct.children.pop(item.id, None)
        siblings = acct.children.get(node.parent_id)
        if siblings and node.id in siblings:
            siblings.remove(node.id)

    def copy_tree(self, acct: Account, node: Node, parent_id: str) -> Node:
        clone = self.add_node(
            acct,
            parent_id,
            node.name,
            node.kind,
            blob=node.blob,
            size=node.size,
            gcid=node.gcid,
            phase=node.phase,
            folder_type=node.folder_type if node.is_folder else "NORMAL",
        )
        if node.is_folder:
            for child in list(self.live_children(acct, node.id)):
                self.copy_tree(acct, child, clone.id)
        return clone

    def usage(self, acct: Account) -> tuple[int, int]:
        used = trash = 0
        for node in acct.nodes.values():
            if node.is_folder or node.phase != PHASE_COMPLETE:
                continue
            used += node.size
            if self.is_trashed(acct, node):
                trash += node.size
        return used, trash

    def check_space(self, acct: Account, extra: int) -> None:
        if extra and self.usage(acct)[0] + extra > acct.quota:
            raise errors.ApiError(
                400,
                "file_space_not_enough",
                8,
                "Storage space is not enough",
                message="Your storage space is insufficient",
            )

    # ------------------------------------------------------------------ links
    def link_signature(
        self,
        fid: str,
        expire: int,
        user_id: str,
        ip: str,
        *,
        usable: bool = True,
        shared: bool = False,
    ) -> str:
        """The ``sig`` of a download link. A link handed out without a valid captcha token
        looks like any other but is signed as unusable: the CDN answers it with 404. A link
        handed out through a share is signed as such (the play limit applies to it)."""
        raw = (
            f"{fid}|{expire}|{user_id}|{ip}"
            + ("" if usable else "|no-captcha")
            + ("|share" if shared else "")
        )
        return hmac.new(self.secret, raw.encode(), hashlib.sha256).hexdigest()[:32]

    # ------------------------------------------------------------------ tasks
    def new_task(
        self, acct: Account, kind: str, name: str, phase: str = PHASE_COMPLETE, **extra: Any
    ) -> Task:
        task = Task(new_id(), acct.username, kind, name, phase, time.time(), **extra)
        self.tasks[task.id] = task
        return task

    def advance_tasks(self, acct: Account) -> None:
        """Offline tasks progress with time: pending, running, then a file (or an error)."""
        now = time.time()
        for task in self.tasks.values():
            if task.account != acct.username or task.type != "offline":
                continue
            if task.phase not in (PHASE_PENDING, PHASE_RUNNING):
                continue
            if now - task.created < task.duration * 0.2:
                continue
            task.phase = PHASE_RUNNING
            if now - task.created < task.duration:
                continue
            if "fail" in task.url.lower():
                task.phase = PHASE_ERROR
                task.message = "Resource not found"
                continue
            seed = int.from_bytes(hashlib.sha256(task.url.encode()).digest()[:4], "big")
            blob = self.blobs.add_synthetic(task.file_size, seed)
            parent = task.parent_id
            try:
                if parent:
                    self.folder(acct, parent)
            except errors.ApiError:
                parent = self.my_pack(acct)
            node = self.add_node(acct, parent, task.file_name, FILE, blob=blob)
            node.original_url = task.url
            task.file_id = node.id
            task.file_name = node.name
            task.phase = PHASE_COMPLETE

    def my_pack(self, acct: Account) -> str:
        for node in self.live_children(acct, ""):
            if node.is_folder and node.name == MY_PACK:
                return node.id
        return self.add_node(acct, "", MY_PACK, FOLDER, folder_type="DOWNLOAD").id

    def temp_credentials(self) -> tuple[str, str, str]:
        return (
            "STS." + secrets.token_hex(12),
            secrets.token_urlsafe(30),
            "CAIS" + secrets.token_urlsafe(90),
        )

    # ------------------------------------------------------------------ uploads
    def find_upload(self, bucket: str, key: str) -> Upload | None:
        with self.lock:
            upload = self.uploads.get(key)
            return upload if upload is not None and upload.bucket == bucket else None

    def finish_upload(self, upload: Upload, path: Path, size: int, gcid: str) -> Node:
        """The object store received the whole content: check it and make the file complete.

        PikPak's callback from the object store recomputes the content id; content that
        does not match the ticket's size and GCID never becomes a file."""
        if size != upload.size:
            path.unlink(missing_ok=True)
            raise UploadRejected(f"size {size} does not match the ticket's {upload.size}")
        if gcid != upload.gcid.upper():
            path.unlink(missing_ok=True)
            raise UploadRejected("content hash does not match the ticket's GCID")
        blob = self.blobs.add_file(path, size, gcid)
        with self.lock:
            acct = self.accounts[upload.account]
            node = acct.nodes.get(upload.file_id)
            if node is None:
                raise UploadRejected("the file of this upload was deleted")
            node.blob = blob
            node.phase = PHASE_COMPLETE
            node.modified = time.time()
            node.link_ready_at = node.modified + self.link_delay
            task = self.tasks.get(upload.task_id)
            if task is not None:
                task.phase = PHASE_COMPLETE
            self.uploads.pop(upload.key, None)
            return node


class UploadRejected(Exception):
    """The object store refuses to complete an upload (the message is safe to show)."""
