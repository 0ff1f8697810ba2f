"""The control API under ``/__emulator__/``: accounts, files, token expiry, faults, stats."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import Any

from . import errors
from .faults import BadRule
from .http import Request, Response
from .world import FILE, Share, World

# The statuses a test may give a share (PikPak's ``share_status`` values).
SHARE_STATUSES = ("OK", "EXPIRED", "NOT_FOUND", "SENSITIVE_RESOURCE")

PREFIX = "/__emulator__/"


class Control:
    def __init__(self, world: World) -> None:
        self.world = world

    def route(self, req: Request) -> Response | None:
        name = req.path[len(PREFIX) :].strip("/")
        method = req.method
        if name == "accounts" and method == "POST":
            return self.add_account(req.params())
        if name == "files" and method == "POST":
            return self.add_file(req.params())
        if name == "expire-tokens" and method == "POST":
            body = req.params()
            count = self.world.expire_tokens(str(body.get("username", "")))
            return Response.json({"expired": count})
        if name == "expire-links" and method == "POST":
            acct = self._account(req.params().get("username"))
            # Links carry their issue time in milliseconds (the ``t`` parameter).
            self.world.links_revoked_before[acct.user_id] = time.time() * 1000
            return Response.json({"expired": True})
        if name == "faults":
            if method == "POST":
                return self.add_faults(req.params())
            if method == "DELETE":
                rule_id = req.query.get("id")
                self.world.faults.clear(int(rule_id) if rule_id and rule_id.isdigit() else None)
                return Response.json({"rules": self.world.faults.list()})
            if method == "GET":
                return Response.json({"rules": self.world.faults.list()})
        if name == "stats":
            if method == "DELETE":
                self.world.stats.reset()
            return Response.json(self.world.stats.snapshot())
        if name == "shares" and method == "POST":
            return self.shares(req.params())
        if name == "config" and method == "POST":
            return self.configure(req.params())
        if name == "tree" and method == "GET":
            return self.tree(req.query.get("username", ""))
        if name == "captcha" and method == "GET":
            return self.solve_captcha(req.query.get("captcha_token", ""))
        return None

    def add_account(self, body: dict[str, Any]) -> Response:
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str):
            raise errors.bad_request("username and password are required strings")
        quota = body.get("quota", 10 << 40)
        if not isinstance(quota, int) or quota < 0:
            raise errors.bad_request("quota must be a non-negative integer")
        acct = self.world.add_account(username, password, quota)
        return Response.json({"username": acct.username, "user_id": acct.user_id}, 201)

    def _account(self, username: Any):
        acct = self.world.accounts.get(username) if isinstance(username, str) else None
        if acct is None:
            raise errors.ApiError(404, "account_not_found", 5, "no such account")
        return acct

    def add_file(self, body: dict[str, Any]) -> Response:
        acct = self._account(body.get("username"))
        path = body.get("path")
        if not isinstance(path, str) or not path.strip("/"):
            raise errors.bad_request("path is required, e.g. 'Movies/film.mkv'")
        folder_path, _, name = path.strip("/").rpartition("/")
        if "content" in body:
            try:
                data = base64.b64decode(body["content"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise errors.bad_request("content must be base64") from None
            blob = self.world.blobs.add_bytes(data)
        else:
            size, seed = body.get("size"), body.get("seed", 0)
            if not isinstance(size, int) or size < 0 or not isinstance(seed, int):
                raise errors.bad_request("size (bytes) and seed must be non-negative integers")
            blob = self.world.blobs.add_synthetic(size, seed)
        with self.world.lock:
            self.world.check_name(name)
            parent = self.world.ensure_path(acct, folder_path)
            existing = next(
                (n for n in self.world.live_children(acct, parent) if n.name == name), None
            )
            if existing is not None:
                self.world.remove(acct, existing)
            node = self.world.add_node(acct, parent, name, FILE, blob=blob)
            node.link_ready_at = 0.0
            node.transcode = bool(body.get("transcode"))
            return Response.json(
                {
                    "id": node.id,
                    "parent_id": node.parent_id,
                    "name": node.name,
                    "size": node.size,
                    "hash": node.gcid,
                },
                201,
            )

    def add_faults(self, body: dict[str, Any]) -> Response:
        specs = body.get("rules") if "rules" in body else [body]
        if not isinstance(specs, list):
            raise errors.bad_request("rules must be a list")
        try:
            rules = [self.world.faults.add(spec) for spec in specs]
        except BadRule as exc:
            raise errors.bad_request(str(exc)) from None
        return Response.json({"ids": [r.id for r in rules]}, 201)

    def shares(self, body: dict[str, Any]) -> Response:
        """Share files of an account (``path`` or ``paths``; ``pass_code`` optional), or set
        a share's status (``share_id`` and ``status``)."""
        if "share_id" in body:
            status = body.get("status")
            if status not in SHARE_STATUSES:
                raise errors.bad_request(f"status must be one of {', '.join(SHARE_STATUSES)}")
            with self.world.lock:
                share = self.world.shares.get(str(body["share_id"]))
                if share is None:
                    raise errors.ApiError(404, "share_not_found", 5, "no such share")
                share.status = status
            return Response.json({"share_id": share.id, "status": status})
        acct = self._account(body.get("username"))
        paths = body.get("paths", [body.get("path")] if "path" in body else None)
        pass_code = body.get("pass_code", "")
        if isinstance(paths, list) and any(isinstance(p, str) and not p.strip("/") for p in paths):
            # PikPak shares files and folders of a drive, never the drive itself.
            raise errors.bad_request(
                "the root folder (/) cannot be shared; share the files or folders inside it"
            )
        if (
            not isinstance(paths, list)
            or not paths
            or not all(isinstance(p, str) and p.strip("/") for p in paths)
            or not isinstance(pass_code, str)
        ):
            raise errors.bad_request("path (or paths) of the files to share, pass_code a string")
        with self.world.lock:
            ids = [self._node_at(acct, p).id for p in paths]
            share = Share(
                "VS" + secrets.token_hex(11), acct.username, ids, pass_code, None, time.time()
            )
            self.world.shares[share.id] = share
        url = f"https://mypikpak.com/s/{share.id}"
        return Response.json({"share_id": share.id, "share_url": url, "pass_code": pass_code}, 201)

    def _node_at(self, acct, path: str):
        parent, node = "", None
        for part in path.strip("/").split("/"):
            node = next((n for n in self.world.live_children(acct, parent) if n.name == part), None)
            if node is None:
                raise errors.ApiError(404, "file_not_found", 5, f"no file at {path}")
            parent = node.id
        return node

    def configure(self, body: dict[str, Any]) -> Response:
        body = dict(body)
        nodes = self._cdn_nodes(body.pop("cdn_latency", None), body.pop("cdn_down", None))
        shares = {}
        if "share_play_limit" in body:
            limit = body.pop("share_play_limit")
            if limit is not None and not (
                isinstance(limit, dict)
                and set(limit) <= {"min_size", "fraction"}
                and isinstance(limit.get("min_size", 0), int)
                and isinstance(limit.get("fraction", 0.45), int | float)
                and 0 < limit.get("fraction", 0.45) < 1
            ):
                raise errors.bad_request(
                    "share_play_limit must be null or {min_size: bytes, fraction: 0..1}"
                )
            self.world.share_play_limit = limit
            shares["share_play_limit"] = limit
        if "share_region_blocked" in body:
            blocked = body.pop("share_region_blocked")
            if not isinstance(blocked, bool):
                raise errors.bad_request("share_region_blocked must be true or false")
            self.world.share_region_blocked = blocked
            shares["share_region_blocked"] = blocked
        known = {
            "token_ttl": int,
            "link_ttl": int,
            "link_delay": float,
            "offline_seconds": float,
            "upload_ttl": int,
            "task_daily_limit": int,
            "cdn_conn_rate": int,
            "cdn_link_conns": int,
            "cdn_account_conns": int,
            "cdn_first_byte_delay": float,
            "store_rate": int,
        }
        for key, value in body.items():
            key = "cdn_conn_rate" if key == "cdn_rate" else key  # its first name
            if key not in known or not isinstance(value, int | float) or value < 0:
                raise errors.bad_request(f"unknown or invalid setting {key}")
            setattr(self.world, key, known[key](value))
        return Response.json({key: getattr(self.world, key) for key in known} | nodes | shares)

    def _cdn_nodes(self, latency: Any, down: Any) -> dict[str, Any]:
        """``cdn_latency: {node: seconds, "*": seconds}`` and ``cdn_down: [node, …]``."""
        if latency is not None:
            if not isinstance(latency, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float) and 0 <= v <= 60
                for k, v in latency.items()
            ):
                raise errors.bad_request("cdn_latency must map node names to seconds (0-60)")
            self.world.cdn_latency = {k.lower(): float(v) for k, v in latency.items()}
        if down is not None:
            if not isinstance(down, list) or not all(isinstance(n, str) for n in down):
                raise errors.bad_request("cdn_down must be a list of node names")
            self.world.cdn_down = {n.lower() for n in down}
        return {"cdn_latency": self.world.cdn_latency, "cdn_down": sorted(self.world.cdn_down)}

    def tree(self, username: str) -> Response:
        acct = self._account(username)
        with self.world.lock:
            rows = []
            for node in acct.nodes.values():
                parts, current = [], node
                while current is not None:
                    parts.append(current.name)
                    current = acct.nodes.get(current.parent_id) if current.parent_id else None
                rows.append(
                    {
                        "path": "/".join(reversed(parts)),
                        "id": node.id,
                        "kind": node.kind,
                        "size": node.size,
                        "hash": node.gcid,
                        "phase": node.phase,
                        "trashed": self.world.is_trashed(acct, node),
                    }
                )
        rows.sort(key=lambda r: r["path"])
        return Response.json({"files": rows})

    def solve_captcha(self, token: str) -> Response:
        with self.world.lock:
            entry = self.world.captcha_tokens.get(token)
            if entry is None:
                raise errors.bad_request("unknown captcha_token")
            entry.solved = True
        return Response(
            200,
            b"<html><body>Verified. You can close this page.</body></html>",
            [("Content-Type", "text/html; charset=utf-8")],
        )
