"""The drive host: files, batch actions, tasks, quota, upload tickets, offline tasks, shares."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import errors
from .blobs import Blob
from .http import Request, Response
from .world import (
    FILE,
    FOLDER,
    PHASE_COMPLETE,
    PHASE_ERROR,
    PHASE_PENDING,
    Account,
    Node,
    Share,
    Task,
    Upload,
    World,
    rfc3339,
)

MAX_PAGE = 500
DEFAULT_PAGE = 100
_GCID = re.compile(r"^[0-9A-Fa-f]{40}$")
_FILE_PATH = re.compile(r"^/drive/v1/files/([A-Za-z0-9_-]+)$")
_TASK_PATH = re.compile(r"^/drive/v1/tasks/([A-Za-z0-9_-]+)$")
_BATCH_PATH = re.compile(r"^/drive/v1/files:(\w+)$")
_DONE_TASK = {
    "kind": "drive#task",
    "id": "",
    "phase": PHASE_COMPLETE,
    "progress": 100,
    "file_size": "0",
}


def _no_vip(acct: Account, *, redirect: bool) -> Response:
    """An account without Premium, as the two VIP endpoints say it."""
    data = {"expire": "", "status": "ok", "type": "novip", "user_id": acct.user_id}
    if redirect:
        return Response.json(
            {
                "result": "ACCEPTED",
                "message": "",
                "redirect_uri": "",
                "data": data | {"vip_item": []},
            }
        )
    return Response.json({"result": "ACCEPTED", "message": "", "data": data})


def _page_token(offset: int, scope: str) -> str:
    raw = json.dumps({"o": offset, "s": scope}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_page_token(token: str, scope: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["o"])
        if data["s"] != scope or offset < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("page_token is invalid") from None
    return offset


def _limit(raw: str | None, cap: int = MAX_PAGE) -> int:
    try:
        limit = int(raw) if raw else DEFAULT_PAGE
    except ValueError:
        raise errors.bad_request("limit must be a number") from None
    return DEFAULT_PAGE if limit <= 0 else min(limit, cap)


def _parse_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.bad_request(f"invalid time in filters: {text}") from None


def _field_value(node: Node, name: str) -> Any:
    return {
        "phase": node.phase,
        "trashed": node.trashed,
        "kind": node.kind,
        "starred": node.starred,
        "modified_time": node.modified,
        "system_tag": "STAR" if node.starred else "",
        "mime_type": node.mime_type,
        "id": node.id,
    }.get(name)


def _match_filters(node: Node, filters: dict[str, Any]) -> bool:
    for name, condition in filters.items():
        if not isinstance(condition, dict):
            raise errors.bad_request(f"filter {name} must be an object")
        value = _field_value(node, name)
        for op, want in condition.items():
            if name == "modified_time" and op in ("gt", "lt", "ge", "le"):
                want = _parse_time(str(want))
            if op == "eq":
                if isinstance(value, bool):
                    want = want if isinstance(want, bool) else str(want).lower() == "true"
                if value != want:
                    return False
            elif op == "neq":
                if value == want:
                    return False
            elif op == "in":
                if str(value) not in str(want).split(","):
                    return False
            elif op in ("gt", "lt", "ge", "le"):
                if (
                    not isinstance(value, int | float)
                    or not {
                        "gt": value > want,
                        "lt": value < want,
                        "ge": value >= want,
                        "le": value <= want,
                    }[op]
                ):
                    return False
            else:
                raise errors.bad_request(f"unknown filter operator {op}")
    return True


def cdn_host(req: Request) -> str:
    """Links use a ``dl-*`` host of the domain the client called, or that host itself."""
    host = req.host
    for domain in ("mypikpak.com", "mypikpak.net"):
        if req.hostname.endswith("." + domain):
            return "dl-a10b-0621." + domain + host[len(req.hostname) :]
    return host


def upload_endpoint(req: Request) -> str:
    for domain in ("mypikpak.com", "mypikpak.net"):
        if req.hostname == domain or req.hostname.endswith("." + domain):
            return domain
    return req.host


class DriveApi:
    def __init__(self, world: World) -> None:
        self.world = world
        self._routes()

    # ------------------------------------------------------------------ routing
    def route(self, req: Request) -> Response | None:
        path, method = req.path, req.method
        if path.startswith("/drive/v1/share"):
            return self.share_route(req)
        acct = self.world.authenticate(req.header("Authorization"))
        with self.world.lock:
            self.world.advance_tasks(acct)
            handler = self._exact.get((method, path))
            if handler is not None:
                return handler(req, acct)
            for verb, pattern, by_id in self._by_id:
                if method == verb and (m := pattern.match(path)):
                    return by_id(req, acct, m.group(1))
        return None

    def _routes(self) -> None:
        """The drive API's paths: exact ones first, then those that carry an id."""
        self._exact: dict[tuple[str, str], Callable[[Request, Account], Response]] = {
            ("GET", "/drive/v1/files"): self.list_files,
            ("POST", "/drive/v1/files"): self._create_checked,
            ("PATCH", "/drive/v1/files/trash:empty"): lambda req, acct: self.empty_trash(acct),
            ("GET", "/drive/v1/tasks"): self.list_tasks,
            ("DELETE", "/drive/v1/tasks"): self.delete_tasks,
            ("POST", "/drive/v1/task"): self.retry_task,
            # rclone polls this when a batch answer had an empty task id.
            ("GET", "/drive/v1/tasks/"): lambda req, acct: Response.json(_DONE_TASK),
            ("GET", "/drive/v1/about"): lambda req, acct: self.about(acct),
            ("GET", "/drive/v1/resource/cid"): lambda req, acct: self.resource_cid(req),
            ("GET", "/drive/v1/privilege/vip"): lambda req, acct: _no_vip(acct, redirect=True),
            ("GET", "/vip/v1/vip/info"): lambda req, acct: _no_vip(acct, redirect=False),
            ("GET", "/drive/v1/events"): lambda req, acct: Response.json(
                {"events": [], "next_page_token": ""}
            ),
        }
        self._by_id: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("POST", _BATCH_PATH, self.batch),
            ("GET", _FILE_PATH, self.get_file),
            ("PATCH", _FILE_PATH, self.patch_file),
            ("DELETE", _FILE_PATH, self._delete_file),
            ("GET", _TASK_PATH, self._task),
        ]

    def _create_checked(self, req: Request, acct: Account) -> Response:
        # PikPak refuses a wrong or expired token here, but not a missing one (a widely used
        # client creates folders and tasks without any).
        self.world.check_captcha(req.header("X-Captcha-Token"), acct, missing_ok=True)
        return self.create(req, acct)

    def _delete_file(self, req: Request, acct: Account, file_id: str) -> Response:
        self.world.remove(acct, self.world.node(acct, file_id))
        return Response.json({})

    def _task(self, req: Request, acct: Account, task_id: str) -> Response:
        task = self.world.tasks.get(task_id)
        if task is None or task.account != acct.username:
            raise errors.ApiError(404, "task_not_found", 5, "task not found")
        return Response.json(task.wire(self.world))

    # ------------------------------------------------------------------ list / get
    def list_files(self, req: Request, acct: Account) -> Response:
        self.world.stats.add("list", acct.username)
        parent = req.query.get("parent_id", "")
        try:
            filters = json.loads(req.query["filters"]) if req.query.get("filters") else {}
        except ValueError:
            raise errors.bad_request("filters is not valid JSON") from None
        if not isinstance(filters, dict):
            raise errors.bad_request("filters must be an object")
        # Without a trashed filter PikPak lists trashed items too; rclone relies on it
        # (its emptiness check before removing a folder reads ``trashed`` itself).
        if parent == "*":
            candidates = list(acct.nodes.values())
        else:
            self.world.folder(acct, parent)
            candidates = [acct.nodes[i] for i in acct.children.get(parent, [])]
        selected = [n for n in candidates if _match_filters(n, filters)]
        scope = hashlib.sha1(  # noqa: S324 - an opaque scope tag, not security
            f"{parent}|{req.query.get('filters', '')}".encode()
        ).hexdigest()[:12]
        offset = _read_page_token(req.query.get("page_token", ""), scope)
        limit = _limit(req.query.get("limit"))
        page = selected[offset : offset + limit]
        more = offset + limit < len(selected)
        return Response.json(
            {
                "kind": "drive#fileList",
                "files": [n.wire() for n in page],
                "next_page_token": _page_token(offset + limit, scope) if more else "",
                "version": "",
                "version_outdated": False,
                "sync_time": rfc3339(time.time()),
            }
        )

    def link(
        self,
        req: Request,
        acct: Account,
        node: Node,
        blob_gcid: str,
        size: int,
        usable: bool = True,
        shared: bool = False,
    ) -> dict[str, Any]:
        expire = int(time.time()) + self.world.link_ttl
        fid = base64.urlsafe_b64encode(bytes.fromhex(blob_gcid)).decode().rstrip("=")
        sig = self.world.link_signature(
            fid, expire, acct.user_id, req.client_ip, usable=usable, shared=shared
        )
        query = (
            f"fid={fid}&from=5&verno=3&prod=pikpak&expire={expire}&t={int(time.time() * 1000)}"
            f"&g={blob_gcid}"
            f"&ui={acct.user_id}&f={size}&fileid={node.id}&userid={acct.user_id}"
            f"&pr=emu&sig={sig}&fn={quote(node.name)}" + ("&sh=1" if shared else "")
        )
        url = f"{req.scheme}://{cdn_host(req)}/download/?{query}"
        self.world.stats.add("link_issued", acct.username)
        return {"url": url, "token": "", "expire": rfc3339(expire), "type": ""}

    def get_file(self, req: Request, acct: Account, file_id: str) -> Response:
        self.world.stats.add("file_get", acct.username)
        node = self.world.node(acct, file_id)
        body = node.wire()
        # Since mid-2024 PikPak answers this call without a valid captcha token too, but
        # the links in that answer do not work (the CDN answers 404).
        usable = self.world.captcha_valid(req.header("X-Captcha-Token"))
        if not usable:
            self.world.stats.add("links_without_captcha", acct.username)
        ready = (
            node.kind == FILE
            and node.phase == PHASE_COMPLETE
            and node.blob is not None
            and time.time() >= node.link_ready_at
            and node.size > 0
        )
        if ready:
            origin = self.link(req, acct, node, node.gcid, node.size, usable)
            body["web_content_link"] = origin["url"]
            body["links"] = {"application/octet-stream": origin}
            if node.category == "VIDEO":
                medias = [self._media(origin, node, "Original", True)]
                if node.transcode:
                    small = self.world.blobs.add_synthetic(
                        max(1, node.size // 4), int(node.gcid[:8], 16)
                    )
                    transcoded = self.link(req, acct, node, small.gcid, small.size, usable)
                    # A transcode is listed first and is the default: the original's bytes
                    # come only from the entry whose fid equals the octet-stream link's.
                    medias.insert(0, self._media(transcoded, node, "480P", False))
                body["medias"] = medias
        return Response.json(body)

    @staticmethod
    def _media(link: dict[str, Any], node: Node, name: str, origin: bool) -> dict[str, Any]:
        return {
            "media_id": node.id + ("o" if origin else "t"),
            "media_name": name,
            "video": {
                "height": 1080 if origin else 480,
                "width": 1920 if origin else 854,
                "duration": 60,
                "bit_rate": 8000000,
                "frame_rate": 25,
                "video_codec": "h264",
                "audio_codec": "aac",
                "video_type": "mp4",
                "hdr_type": "",
            },
            "link": link,
            "need_more_quota": False,
            "vip_types": [],
            "redirect_link": "",
            "icon_link": "",
            "is_default": not origin,
            "priority": 0,
            "is_origin": origin,
            "resolution_name": "Original" if origin else "480P",
            "is_visible": True,
            "category": "category_origin" if origin else "category_transcode",
            "audio": None,
        }

    # ------------------------------------------------------------------ create
    def create(self, req: Request, acct: Account) -> Response:
        params = req.params()
        kind = params.get("kind") or FILE
        parent_id = str(params.get("parent_id") or "")
        upload_type = params.get("upload_type") or ""
        self.world.stats.add("mutations", acct.username)
        if upload_type == "UPLOAD_TYPE_URL":
            return self.add_url(req, acct, params)
        self.world.folder(acct, parent_id)
        name = self.world.check_name(params.get("name"))
        if kind == FOLDER:
            node = self.world.add_node(acct, parent_id, name, FOLDER)
            return Response.json(
                {
                    "upload_type": "UPLOAD_TYPE_UNKNOWN",
                    "url": None,
                    "file": node.wire(),
                    "task": None,
                }
            )
        if kind != FILE:
            raise errors.bad_request(f"unknown kind {kind}")
        return self.upload_ticket(req, acct, params, parent_id, name)

    def upload_ticket(
        self, req: Request, acct: Account, params: dict[str, Any], parent_id: str, name: str
    ) -> Response:
        self.world.stats.add("upload_tickets", acct.username)
        try:
            size = int(params.get("size", 0))
        except (TypeError, ValueError):
            raise errors.bad_request("size must be a number") from None
        gcid = str(params.get("hash") or "").upper()
        if size < 0:
            raise errors.bad_request("size must not be negative")
        if size > 0 and not _GCID.match(gcid):
            raise errors.bad_request("hash must be the 40-character GCID of the content")
        blob = self.world.blobs.get(gcid) if size > 0 else self.world.blobs.add_bytes(b"")
        self.world.check_space(acct, size)
        upload_type = params.get("upload_type") or "UPLOAD_TYPE_RESUMABLE"
        if blob is not None and blob.size == size:
            # Instant upload: PikPak already has this content (or it is empty).
            return self._instant_upload(acct, parent_id, name, blob, upload_type)
        return self._resumable_upload(req, acct, parent_id, name, size, gcid, upload_type)

    def _instant_upload(
        self, acct: Account, parent_id: str, name: str, blob: Blob, upload_type: str
    ) -> Response:
        """The file at once: PikPak already has its content (or it is empty)."""
        size = blob.size
        node = self.world.add_node(acct, parent_id, name, FILE, blob=blob)
        task = self._upload_task(acct, node, PHASE_COMPLETE, size)
        self.world.stats.add("instant_uploads", acct.username)
        return Response.json(
            {
                "upload_type": upload_type,
                "resumable": None,
                "file": node.wire(),
                "task": task.wire(self.world),
            }
        )

    def _upload_task(self, acct: Account, node: Node, phase: str, size: int) -> Task:
        """The task PikPak answers an upload with: done at once, or pending until the store
        has every byte."""
        return self.world.new_task(
            acct, "upload", node.name, phase, file_id=node.id, file_name=node.name, file_size=size
        )

    def _resumable_upload(
        self,
        req: Request,
        acct: Account,
        parent_id: str,
        name: str,
        size: int,
        gcid: str,
        upload_type: str,
    ) -> Response:
        """A pending file and the object store's temporary credentials to upload it with."""
        node = self.world.add_node(
            acct, parent_id, name, FILE, size=size, gcid=gcid, phase=PHASE_PENDING
        )
        task = self._upload_task(acct, node, PHASE_PENDING, size)
        ak, sk, token = self.world.temp_credentials()
        expires = time.time() + self.world.upload_ttl
        key = f"{acct.user_id}/{node.id}-{secrets.token_hex(4)}"
        self.world.uploads[key] = Upload(
            key,
            self.world.bucket,
            ak,
            sk,
            token,
            expires,
            size,
            gcid,
            acct.username,
            node.id,
            task.id,
        )
        return Response.json(
            {
                "upload_type": upload_type,
                "resumable": {
                    "kind": "drive#resumable",
                    "provider": "PROVIDER_ALIYUN",
                    "params": {
                        "access_key_id": ak,
                        "access_key_secret": sk,
                        "bucket": self.world.bucket,
                        "endpoint": upload_endpoint(req),
                        "expiration": rfc3339(expires),
                        "key": key,
                        "security_token": token,
                    },
                },
                "file": node.wire(),
                "task": task.wire(self.world),
            }
        )

    # ------------------------------------------------------------------ mutate
    def patch_file(self, req: Request, acct: Account, file_id: str) -> Response:
        params = req.params()
        node = self.world.node(acct, file_id, allow_trashed=False)
        self.world.stats.add("mutations", acct.username)
        if "name" in params:
            name = self.world.check_name(params["name"])
            if name == node.name:
                raise errors.ApiError(
                    400, "file_rename_to_same_name", 3, "The new name is the same as the old one"
                )
            if node.phase != PHASE_COMPLETE:
                raise errors.ApiError(
                    400,
                    "file_rename_uncompleted",
                    9,
                    "The file is being processed, please try again later",
                )
            if any(
                n.name == name
                for n in self.world.live_children(acct, node.parent_id)
                if n.id != node.id
            ):
                raise errors.ApiError(
                    400, "file_duplicated_name", 3, "A file with the same name already exists"
                )
            node.name = name
            node.modified = time.time()
            node.revision += 1
        if "starred" in params:
            node.starred = bool(params["starred"])
        return Response.json(node.wire())

    def batch(self, req: Request, acct: Account, action: str) -> Response:
        params = req.params()
        ids = params.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise errors.bad_request("ids must be a non-empty list of file ids")
        self.world.stats.add("mutations", acct.username)
        nodes = [self.world.node(acct, i) for i in ids]
        to = params.get("to") or {}
        if not isinstance(to, dict):
            raise errors.bad_request("to must be an object")
        target = str(to.get("parent_id") or "")
        now = time.time()
        if action == "batchTrash":
            for node in nodes:
                node.trashed, node.delete_time = True, now
        elif action == "batchDelete":
            for node in nodes:
                if node.id in acct.nodes:
                    self.world.remove(acct, node)
        elif action == "batchUntrash":
            for node in nodes:
                node.trashed, node.delete_time = False, 0.0
                parent = acct.nodes.get(node.parent_id)
                if node.parent_id and (parent is None or self.world.is_trashed(acct, parent)):
                    self.world.detach(acct, node)
                    self.world.attach(acct, node, "")
                node.name = self.world.free_name(
                    acct, node.parent_id, node.name, node.is_folder, ignore=node.id
                )
        elif action in ("batchMove", "batchCopy"):
            self.world.folder(acct, target)
            for node in nodes:
                if node.parent_id == target:
                    raise errors.ApiError(
                        400,
                        "file_move_or_copy_to_cur",
                        9,
                        "Cannot move or copy to the current folder",
                    )
                if node.is_folder and self.world.is_ancestor(acct, node.id, target):
                    raise errors.bad_request("Cannot move or copy a folder into itself")
            if action == "batchCopy":
                self.world.check_space(
                    acct, sum(n.size for node in nodes for n in self.world.subtree(acct, node))
                )
            for node in nodes:
                if action == "batchMove":
                    self.world.detach(acct, node)
                    node.name = self.world.free_name(acct, target, node.name, node.is_folder)
                    self.world.attach(acct, node, target)
                    node.modified = now
                else:
                    self.world.copy_tree(acct, node, target)
        elif action in ("star", "unstar", "batchStar", "batchUnstar"):
            for node in nodes:
                node.starred = action.lower().endswith("star") and "un" not in action.lower()
        else:
            raise errors.ApiError(404, "not_found", 5, f"unknown action {action}")
        task = self.world.new_task(acct, "batch", action, PHASE_COMPLETE)
        return Response.json({"task_id": task.id})

    def empty_trash(self, acct: Account) -> Response:
        for node in [n for n in acct.nodes.values() if n.trashed]:
            if node.id in acct.nodes:
                self.world.remove(acct, node)
        task = self.world.new_task(acct, "batch", "trash:empty", PHASE_COMPLETE)
        return Response.json({"task_id": task.id})

    def about(self, acct: Account) -> Response:
        used, trash = self.world.usage(acct)
        return Response.json(
            {
                "kind": "drive#about",
                "quota": {
                    "kind": "drive#quota",
                    "limit": str(acct.quota),
                    "usage": str(used),
                    "usage_in_trash": str(trash),
                    "play_times_limit": "-1",
                    "play_times_usage": "0",
                    "is_unlimited": False,
                },
                "expires_at": "",
                "quotas": {},
            }
        )

    def resource_cid(self, req: Request) -> Response:
        cid = req.query.get("cid", "")
        try:
            size = int(req.query.get("file_size") or 0)
        except ValueError:
            size = 0
        if not cid or size <= 0:
            raise errors.bad_request("cid and file_size is required")
        gcid = self.world.blobs.gcid_for_cid(cid, size)
        # Content the index does not know: an empty gcid, and the client hashes it itself.
        return Response.json({"gcid": gcid or ""})

    # ------------------------------------------------------------------ offline tasks
    def add_url(self, req: Request, acct: Account, params: dict[str, Any]) -> Response:
        url_obj = params.get("url") or {}
        url = url_obj.get("url") if isinstance(url_obj, dict) else url_obj
        if not isinstance(url, str) or not re.match(r"^(magnet:\?|https?://|ed2k://)", url):
            raise errors.ApiError(
                400, "invalid_argument", 3, "The URL is not supported", message="Invalid link"
            )
        today = time.strftime("%Y-%m-%d")
        if acct.task_day != today:
            acct.task_day, acct.tasks_today = today, 0
        if acct.tasks_today >= self.world.task_daily_limit:
            raise errors.ApiError(
                400,
                "task_daily_create_limit_vip",
                11,
                "You have reached the daily limit of cloud downloads",
            )
        acct.tasks_today += 1
        parent = str(params.get("parent_id") or "")
        if parent:
            self.world.folder(acct, parent)
        else:
            parent = self.world.my_pack(acct)
        name, size = _name_and_size(url)
        name = str(params.get("name") or name)
        task = self.world.new_task(
            acct,
            "offline",
            name,
            PHASE_PENDING,
            url=url,
            parent_id=parent,
            file_name=name,
            file_size=size,
            duration=self.world.offline_seconds,
        )
        self.world.stats.add("tasks_created", acct.username)
        return Response.json(
            {
                "upload_type": "UPLOAD_TYPE_URL",
                "url": {"kind": "upload#url"},
                "file": None,
                "task": task.wire(self.world),
            }
        )

    def list_tasks(self, req: Request, acct: Account) -> Response:
        kind = req.query.get("type", "offline")
        try:
            filters = json.loads(req.query["filters"]) if req.query.get("filters") else {}
        except ValueError:
            raise errors.bad_request("filters is not valid JSON") from None
        phases = None
        if isinstance(filters, dict) and isinstance(filters.get("phase"), dict):
            cond = filters["phase"]
            phases = set(str(cond.get("in", cond.get("eq", ""))).split(","))
        tasks = [
            t
            for t in self.world.tasks.values()
            if t.account == acct.username
            and t.type == kind
            and (phases is None or t.phase in phases)
        ]
        tasks.sort(key=lambda t: t.created, reverse=True)
        scope = "tasks-" + kind
        offset = _read_page_token(req.query.get("page_token", ""), scope)
        limit = _limit(req.query.get("limit"), cap=10000)
        page = tasks[offset : offset + limit]
        more = offset + limit < len(tasks)
        return Response.json(
            {
                "tasks": [t.wire(self.world) for t in page],
                "next_page_token": _page_token(offset + limit, scope) if more else "",
                "expires_in": 60,
            }
        )

    def delete_tasks(self, req: Request, acct: Account) -> Response:
        ids = [i for i in req.query.get("task_ids", "").split(",") if i]
        delete_files = req.query.get("delete_files", "false").lower() == "true"
        for task_id in ids:
            task = self.world.tasks.get(task_id)
            if task is None or task.account != acct.username:
                continue
            if delete_files and task.file_id in acct.nodes:
                self.world.remove(acct, acct.nodes[task.file_id])
            del self.world.tasks[task_id]
        return Response.json({})

    def retry_task(self, req: Request, acct: Account) -> Response:
        params = req.params()
        task = self.world.tasks.get(str(params.get("id", "")))
        if task is None or task.account != acct.username:
            raise errors.ApiError(404, "task_not_found", 5, "task not found")
        if task.phase == PHASE_ERROR:
            task.phase, task.created, task.message = PHASE_PENDING, time.time(), ""
            task.url = task.url.replace("fail", "retried")
        return Response.json({"task": task.wire(self.world)})

    # ------------------------------------------------------------------ shares
    def share_route(self, req: Request) -> Response | None:
        path, method = req.path, req.method
        if path == "/drive/v1/share" and method == "POST":
            acct = self.world.authenticate(req.header("Authorization"))
            with self.world.lock:
                return self.create_share(req, acct)
        if path == "/drive/v1/share/restore" and method == "POST":
            acct = self.world.authenticate(req.header("Authorization"))
            self._region_check()
            with self.world.lock:
                return self.restore_share(req, acct)
        if method != "GET":
            return None
        # Reading a share needs no login, but a valid captcha token.
        self.world.check_captcha(req.header("X-Captcha-Token"))
        self._region_check()
        with self.world.lock:
            if path == "/drive/v1/share":
                return self.share_info(req)
            if path == "/drive/v1/share/detail":
                return self.share_detail(req)
            if path == "/drive/v1/share/file_info":
                return self.share_file_info(req)
        return None

    def create_share(self, req: Request, acct: Account) -> Response:
        params = req.params()
        ids = params.get("file_ids")
        if not isinstance(ids, list) or not ids:
            raise errors.bad_request("file_ids must be a non-empty list")
        for file_id in ids:
            self.world.node(acct, str(file_id), allow_trashed=False)
        try:
            days = int(params.get("expiration_days", -1))
        except (TypeError, ValueError):
            raise errors.bad_request("expiration_days must be a number") from None
        required = (
            params.get("pass_code_option") == "REQUIRED"
            or params.get("share_to") == "encryptedlink"
        )
        pass_code = (
            "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(4))
            if required
            else ""
        )
        share = Share(
            "VS" + secrets.token_hex(11),
            acct.username,
            [str(i) for i in ids],
            pass_code,
            time.time() + days * 86400 if days > 0 else None,
            time.time(),
        )
        self.world.shares[share.id] = share
        url = f"https://mypikpak.com/s/{share.id}"
        return Response.json(
            {
                "share_id": share.id,
                "share_url": url,
                "pass_code": pass_code,
                "share_text": f"{url} {pass_code}".strip(),
                "share_list": [],
            }
        )

    def _region_check(self) -> None:
        if self.world.share_region_blocked:
            # PikPak says this in words only (HTTP 403, a generic reason).
            raise errors.ApiError(
                403,
                "permission_denied",
                4030,
                "Sorry, sharing is not available in the current region",
            )

    def _share(self, share_id: str) -> tuple[Share | None, str]:
        share = self.world.shares.get(share_id)
        if share is None or share.account not in self.world.accounts:
            return None, "NOT_FOUND"
        if share.status != "OK":
            return (None if share.status == "NOT_FOUND" else share), share.status
        if share.expires_at is not None and share.expires_at < time.time():
            return share, "EXPIRED"
        if any(i not in self.world.accounts[share.account].nodes for i in share.file_ids):
            return share, "DELETED"
        return share, "OK"

    @staticmethod
    def _status_body(status: str) -> dict[str, Any]:
        texts = {
            "NOT_FOUND": "The share does not exist",
            "EXPIRED": "The share has expired",
            "DELETED": "The shared files were deleted",
            "SENSITIVE_RESOURCE": "The share contains sensitive resources",
            "PASS_CODE_EMPTY": "Please enter the pass code",
            "PASS_CODE_ERROR": "The pass code is incorrect",
            "OK": "",
        }
        return {
            "share_status": status,
            "share_status_text": texts.get(status, status),
            "files": [],
            "next_page_token": "",
            "pass_code_token": "",
        }

    def share_info(self, req: Request) -> Response:
        share, status = self._share(req.query.get("share_id", ""))
        if share is None or status != "OK":
            return Response.json(self._status_body(status))
        given = req.query.get("pass_code", "")
        if share.pass_code and not given:
            return Response.json(self._status_body("PASS_CODE_EMPTY"))
        if share.pass_code and given != share.pass_code:
            return Response.json(self._status_body("PASS_CODE_ERROR"))
        token = secrets.token_urlsafe(24)
        share.tokens.add(token)
        acct = self.world.accounts[share.account]
        parent = req.query.get("parent_id", "")
        nodes = self._shared_nodes(share, acct, parent)
        body = self._status_body("OK") | {
            "pass_code_token": token,
            "files": [self._shared(share, n) for n in nodes],
            "share_id": share.id,
            "title": nodes[0].name if nodes else "",
            "user_info": {"user_id": acct.user_id, "nickname": acct.username},
        }
        return Response.json(body)

    def _check_share_token(self, share: Share, req: Request) -> str | None:
        token = req.query.get("pass_code_token", "")
        if share.pass_code and token not in share.tokens:
            return "PASS_CODE_ERROR" if token else "PASS_CODE_EMPTY"
        return None

    def _in_share(self, share: Share, acct: Account, node_id: str) -> bool:
        return any(self.world.is_ancestor(acct, root, node_id) for root in share.file_ids)

    def _shared_nodes(self, share: Share, acct: Account, parent: str) -> list[Node]:
        """What the share shows at its top (``parent`` empty) or in one of its folders."""
        if not parent:
            return [acct.nodes[i] for i in share.file_ids]
        return self._shared_children(share, acct, parent)

    def _shared_children(self, share: Share, acct: Account, parent: str) -> list[Node]:
        if not self._in_share(share, acct, parent):
            raise errors.not_found()
        return [n for n in self.world.live_children(acct, parent) if n.phase == PHASE_COMPLETE]

    def _shared(self, share: Share, node: Node) -> dict[str, Any]:
        return node.wire() | {"share_id": share.id}

    def share_detail(self, req: Request) -> Response:
        share, status = self._share(req.query.get("share_id", ""))
        if share is None or status != "OK":
            return Response.json(self._status_body(status))
        if problem := self._check_share_token(share, req):
            return Response.json(self._status_body(problem))
        acct = self.world.accounts[share.account]
        parent = req.query.get("parent_id", "")
        nodes = self._shared_nodes(share, acct, parent)
        scope = f"share-{share.id}-{parent}"
        offset = _read_page_token(req.query.get("page_token", ""), scope)
        limit = _limit(req.query.get("limit"))
        page = nodes[offset : offset + limit]
        more = offset + limit < len(nodes)
        return Response.json(
            self._status_body("OK")
            | {
                "files": [self._shared(share, n) for n in page],
                "next_page_token": _page_token(offset + limit, scope) if more else "",
            }
        )

    def share_file_info(self, req: Request) -> Response:
        share, status = self._share(req.query.get("share_id", ""))
        if share is None or status != "OK":
            raise errors.ApiError(
                404 if status == "NOT_FOUND" else 403,
                "share_status_error",
                5,
                self._status_body(status)["share_status_text"],
            )
        if problem := self._check_share_token(share, req):
            raise errors.ApiError(
                403, "share_pass_code_invalid", 9, self._status_body(problem)["share_status_text"]
            )
        acct = self.world.accounts[share.account]
        node = self.world.node(acct, req.query.get("file_id", ""), allow_trashed=False)
        if not self._in_share(share, acct, node.id):
            raise errors.not_found()
        info = self._shared(share, node)
        # Since May 2024 a share's file has no plain link, only media links: the original
        # first, then its transcoded copy when there is one.
        info["web_content_link"] = ""
        if node.kind == FILE and node.phase == PHASE_COMPLETE and node.size > 0:
            link = self.link(req, acct, node, node.gcid, node.size, shared=True)
            medias = [self._media(link, node, "Original", True)]
            if node.transcode:
                small = self.world.blobs.add_synthetic(
                    max(1, node.size // 4), int(node.gcid[:8], 16)
                )
                transcoded = self.link(req, acct, node, small.gcid, small.size, shared=True)
                medias.append(self._media(transcoded, node, "480P", False))
            info["medias"] = medias
        self.world.stats.add("share_links", share.account)
        return Response.json({"file_info": info})

    def restore_share(self, req: Request, acct: Account) -> Response:
        params = req.params()
        share, status = self._share(str(params.get("share_id", "")))
        if share is None or status != "OK":
            raise errors.ApiError(
                404, "share_status_error", 5, self._status_body(status)["share_status_text"]
            )
        token = str(params.get("pass_code_token", ""))
        if share.pass_code and token not in share.tokens:
            raise errors.ApiError(403, "share_pass_code_invalid", 9, "The pass code is incorrect")
        owner = self.world.accounts[share.account]
        ids = params.get("file_ids") or share.file_ids
        parent = str(params.get("parent_id") or "") if params.get("specify_parent_id") else ""
        self.world.folder(acct, parent)
        nodes = []
        for file_id in ids:
            node = self.world.node(owner, str(file_id), allow_trashed=False)
            if not self._in_share(share, owner, node.id):
                raise errors.not_found()
            nodes.append(node)
        self.world.check_space(acct, sum(self._size_of(owner, n) for n in nodes))
        for node in nodes:
            self._copy_across(owner, node, acct, parent)
        self.world.stats.add("share_restores", acct.username)
        task = self.world.new_task(acct, "restore", "restore", PHASE_COMPLETE)
        return Response.json(
            {
                "share_status": "OK",
                "share_status_text": "",
                "file_id": "",
                "restore_task_id": task.id,
                "restore_status": "",
            }
        )

    def _size_of(self, acct: Account, node: Node) -> int:
        if node.kind == FILE:
            return node.size
        return sum(self._size_of(acct, c) for c in self.world.live_children(acct, node.id))

    def _copy_across(self, src: Account, node: Node, dst: Account, parent: str) -> None:
        clone = self.world.add_node(
            dst, parent, node.name, node.kind, blob=node.blob, size=node.size, gcid=node.gcid
        )
        for child in list(self.world.live_children(src, node.id)):
            self._copy_across(src, child, dst, clone.id)


def _name_and_size(url: str) -> tuple[str, int]:
    """A plausible file for an offline URL: its name from the URL, a size from its hash."""
    digest = hashlib.sha256(url.encode()).digest()
    size = (1 << 20) + int.from_bytes(digest[:3], "big") % (7 << 20)
    if url.startswith("magnet:"):
        query = parse_qs(urlsplit(url).query)
        name = query.get("dn", [""])[0] or f"magnet-{digest[:4].hex()}"
        return name, size
    if url.startswith("ed2k://"):
        parts = url.split("|")
        if len(parts) > 3 and parts[1] == "file":
            try:
                return unquote(parts[2]), max(1, min(int(parts[3]), 1 << 30))
            except ValueError:
                pass
        return f"ed2k-{digest[:4].hex()}", size
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or f"download-{digest[:4].hex()}"
    return name, size
