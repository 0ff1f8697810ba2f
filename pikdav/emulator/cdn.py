"""Download links: ``/download/?fid=…&expire=…``, bound to the IP that asked for them.

A link is valid until ``expire`` and only for the client address that requested the file
from the drive API (any other address gets 403, as PikPak's CDN does). Range requests are
answered with 206, or 416 when they start beyond the end.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

from .http import Request, Response
from .world import World

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end-exclusive), None to send everything, or "unsatisfiable"."""
    if not header:
        return None
    match = _RANGE.match(header.strip().split(",")[0].strip())
    if not match:
        return None  # malformed: RFC 9110 lets us ignore it
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, end


class Cdn:
    def __init__(self, world: World) -> None:
        self.world = world

    def route(self, req: Request) -> Response | None:
        download = req.path in ("/download", "/download/") and req.method in ("GET", "HEAD")
        if not download and req.path != "/generate_204":
            return None
        # Any host name reaches the CDN; its first label names the node.
        node = req.hostname.split(".", 1)[0]
        self.world.stats.add(f"cdn_node:{node}")
        latency = self.world.cdn_latency
        delay = latency.get(node, latency.get("*", 0.0))
        if delay:
            time.sleep(delay)
        if node in self.world.cdn_down:
            return Response(503, b"503 node down\n", [("Content-Type", "text/plain")])
        return self.download(req) if download else Response.empty(204)

    def _forbidden(self, account: str | None, why: str) -> Response:
        self.world.stats.add("download_forbidden", account)
        return Response(403, f"403 Forbidden: {why}\n".encode(), [("Content-Type", "text/plain")])

    def download(self, req: Request) -> Response:
        q = req.query
        fid, user_id, sig = q.get("fid", ""), q.get("ui", ""), q.get("sig", "")
        account = next(
            (a.username for a in self.world.accounts.values() if a.user_id == user_id), None
        )
        try:
            expire = int(q.get("expire", ""))
            gcid = base64.urlsafe_b64decode(fid + "=" * (-len(fid) % 4)).hex().upper()
        except ValueError:
            return self._forbidden(account, "malformed link")
        shared = q.get("sh") == "1"
        expected = self.world.link_signature(fid, expire, user_id, req.client_ip, shared=shared)
        if not hmac.compare_digest(expected, sig):
            unusable = self.world.link_signature(
                fid, expire, user_id, req.client_ip, usable=False, shared=shared
            )
            if hmac.compare_digest(unusable, sig):
                # Handed out without a valid captcha token: PikPak's CDN does not serve it.
                self.world.stats.add("download_not_found", account)
                return Response(404, b"404 Not Found\n", [("Content-Type", "text/plain")])
            return self._forbidden(account, "this link belongs to another address")
        issued = q.get("t", "0")
        revoked = self.world.links_revoked_before.get(user_id, 0.0)
        if expire <= time.time() or (issued.isdigit() and int(issued) < revoked):
            return self._forbidden(account, "link expired")
        blob = self.world.blobs.get(gcid)
        if blob is None:
            return Response(404, b"404 Not Found\n", [("Content-Type", "text/plain")])
        self.world.stats.add("download_requests", account)
        self.world.stats.download_from(req.client_ip)
        size = blob.size
        wanted = parse_range(req.header("Range"), size)
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
            ("ETag", f'"{blob.gcid}"'),
            ("Cache-Control", "private, max-age=0"),
        ]
        if name := q.get("fn"):
            headers.append(("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}"))
        if wanted == "unsatisfiable":
            return Response(416, b"", [*headers, ("Content-Range", f"bytes */{size}")])
        start, end = wanted if isinstance(wanted, tuple) else (0, size)
        cut = self._play_limit(size) if shared else None
        if cut is not None and start >= cut:
            # PikPak refuses a shared file's bytes beyond its play limit.
            self.world.stats.add("share_play_limit_refused", account)
            return self._forbidden(account, "beyond the share's play limit")
        status = 206 if isinstance(wanted, tuple) else 200
        if status == 206:
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
        headers.append(("Content-Length", str(end - start)))
        if req.method == "HEAD":
            return Response(status, b"", headers)
        # The head says the whole range; at the play limit the body ends, and the server
        # closes a connection whose answer is shorter than its Content-Length.
        body = self._stream(blob, start, end if cut is None else min(end, cut), account)
        return Response(status, body, headers)

    def _play_limit(self, size: int) -> int | None:
        """Where a shared file of ``size`` bytes stops (None: it plays whole)."""
        limit = self.world.share_play_limit
        if not limit or size < limit.get("min_size", 0):
            return None
        return int(size * limit.get("fraction", 0.45))

    def _stream(self, blob, start: int, end: int, account: str | None) -> Iterator[bytes]:
        stats = self.world.stats
        stats.add("downloads_active", account)
        rate = self.world.cdn_rate
        began, sent = time.monotonic(), 0
        try:
            for chunk in blob.iter_range(start, end):
                stats.add("download_bytes", account, len(chunk))
                yield bytes(chunk)  # the WSGI server wants bytes, not memoryviews
                sent += len(chunk)
                if rate:
                    # A CDN of limited speed (config cdn_rate), as real ones are.
                    ahead = sent / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            # Runs when the body is done or the client went away (the server closes us).
            stats.add("downloads_active", account, -1)
            stats.add("downloads_closed", account)
