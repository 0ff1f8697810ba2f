"""Download links: ``/download/?fid=…&expire=…``, bound to the IP that asked for them.

A link is valid until ``expire`` and only for the client address that requested the file
from the drive API (any other address gets 403, as PikPak's CDN does). Range requests are
answered with 206, or 416 when they start beyond the end.

When asked to (``POST /__emulator__/config``), the CDN behaves as PikPak's does for its users:
each connection is throttled (``cdn_conn_rate`` bytes per second), a signed link serves at
most ``cdn_link_conns`` connections at once and an account ``cdn_account_conns`` (the next
one gets ``503``, counted as ``download_refused_busy``), and every answer waits
``cdn_first_byte_delay`` seconds before its first byte (the distance to the server).
"""

from __future__ import annotations

import base64
import hmac
import re
import threading
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


class Connections:
    """Downloads in flight, per signed link and per account, against the CDN's limits."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._links: dict[str, int] = {}
        self._accounts: dict[str, int] = {}

    def take(self, link: str, account: str) -> bool:
        """One more connection on ``link`` of ``account``; False when a limit is reached."""
        world = self.world
        with self._lock:
            on_link, on_account = self._links.get(link, 0), self._accounts.get(account, 0)
            if (world.cdn_link_conns and on_link >= world.cdn_link_conns) or (
                world.cdn_account_conns and on_account >= world.cdn_account_conns
            ):
                return False
            self._links[link] = on_link + 1
            self._accounts[account] = on_account + 1
        world.stats.peak("download_peak_link_conns", account, on_link + 1)
        world.stats.peak("download_peak_account_conns", account, on_account + 1)
        return True

    def give_back(self, link: str, account: str) -> None:
        with self._lock:
            for counts, key in ((self._links, link), (self._accounts, account)):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]


class _Body:
    """A download's bytes, throttled per connection. Its connection is given back as its
    last bytes go out (the client may ask again the moment they arrive), or when the client
    goes away (``close``, whether the body was started or not)."""

    def __init__(self, chunks: Iterator[bytes], rate: int, release) -> None:
        self._chunks = chunks
        self._rate = rate
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        began, sent = time.monotonic(), 0
        pieces = self._pieces()
        current = next(pieces, None)
        while current is not None:
            following = next(pieces, None)
            if following is None:
                self._give_back()
            yield current
            sent += len(current)
            if self._rate:
                ahead = sent / self._rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            current = following

    def _pieces(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if not self._rate:
                yield chunk
                continue
            # Small pieces, so that a throttled connection flows as a real one does.
            for at in range(0, len(chunk), 65536):
                yield chunk[at : at + 65536]

    def _give_back(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close:
            close()
        self._give_back()


class Cdn:
    def __init__(self, world: World) -> None:
        self.world = world
        self.connections = Connections(world)

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
        owner = account or user_id
        if not self.connections.take(sig, owner):
            self.world.stats.add("download_refused_busy", account)
            return Response(
                503,
                b"503 Service Unavailable: too many connections\n",
                [("Content-Type", "text/plain")],
            )
        if self.world.cdn_first_byte_delay:
            time.sleep(self.world.cdn_first_byte_delay)
        stats = self.world.stats
        stats.add("downloads_active", account)

        def ended() -> None:
            stats.add("downloads_active", account, -1)
            stats.add("downloads_closed", account)
            self.connections.give_back(sig, owner)

        # The head says the whole range; at the play limit the body ends, and the server
        # closes a connection whose answer is shorter than its Content-Length.
        chunks = self._chunks(blob, start, end if cut is None else min(end, cut), account)
        return Response(status, _Body(chunks, self.world.cdn_conn_rate, ended), headers)

    def _play_limit(self, size: int) -> int | None:
        """Where a shared file of ``size`` bytes stops (None: it plays whole)."""
        limit = self.world.share_play_limit
        if not limit or size < limit.get("min_size", 0):
            return None
        return int(size * limit.get("fraction", 0.45))

    def _chunks(self, blob, start: int, end: int, account: str | None) -> Iterator[bytes]:
        for chunk in blob.iter_range(start, end):
            self.world.stats.add("download_bytes", account, len(chunk))
            yield bytes(chunk)  # the WSGI server wants bytes, not memoryviews
