"""The emulator's WSGI application: one port, routed by path and Host header."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from . import errors
from .cdn import Cdn
from .control import PREFIX, Control
from .driveapi import DriveApi
from .http import BadBody, Request, Response
from .userapi import UserApi
from .world import World

log = logging.getLogger(__name__)


_AREA = {UserApi: "user", DriveApi: "drive", Cdn: "cdn", type(None): "other"}


class DropConnection(Exception):
    """Raised inside a response body to cut the connection (fault injection)."""


class _Truncated:
    """A body cut after ``limit`` bytes (fault injection); closing it closes the body it
    wraps, whether or not the server started reading it."""

    def __init__(self, body: Iterable[bytes], limit: int) -> None:
        self._body = body
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._body:
            room = self._limit - sent
            if len(chunk) >= room:
                if room:
                    yield bytes(chunk[:room])
                raise DropConnection(f"fault: connection dropped after {self._limit} bytes")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close:
            close()


class EmulatorApp:
    def __init__(self, world: World) -> None:
        from .objstore import ObjectStore

        self.world = world
        self.control = Control(world)
        self.user = UserApi(world)
        self.drive = DriveApi(world)
        self.cdn = Cdn(world)
        self.objstore = ObjectStore(world)

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        req = Request(environ)
        try:
            resp = self.dispatch(req)
        except errors.ApiError as exc:
            resp = exc.response()
        except BadBody as exc:
            resp = errors.bad_request(str(exc)).response()
        except Exception:
            log.exception("emulator: unhandled error for %s %s", req.method, req.path)
            resp = errors.ApiError(500, "internal", 13, "internal error").response()
        body = resp.body
        if isinstance(body, bytes | bytearray):
            if not any(k.lower() == "content-length" for k, _ in resp.headers):
                resp.headers.append(("Content-Length", str(len(body))))
            body = [bytes(body)] if req.method != "HEAD" else []
        drop = environ.get("emulator.drop_after")
        if drop is not None:
            body = _Truncated(body, drop)
        start_response(resp.status_line(), resp.headers)
        return body

    def _account_of(self, req: Request) -> str | None:
        auth = req.header("Authorization")
        if auth[:7].lower() != "bearer ":
            return None
        entry = self.world.access_tokens.get(auth[7:].strip())
        return entry.account if entry else None

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith(PREFIX):
            return self.control.route(req) or self._not_found(req)
        owned = self.objstore.owns(req)
        handler = None if owned else self._handler_for(req.path)
        # Which address every call came from: a test sees whether it came through a proxy.
        area = "objstore" if owned else _AREA[type(handler)]
        self.world.stats.call_from(req.client_ip, area)
        resp = self.apply_faults(req)
        if resp is not None:
            return resp
        if owned:
            return self.objstore.handle(req)
        resp = handler.route(req) if handler is not None else None
        return resp if resp is not None else self._not_found(req)

    def _handler_for(self, path: str):
        if path.startswith("/v1/"):
            return self.user
        if path.startswith(("/drive/", "/vip/", "/decompress/")):
            return self.drive
        if path.startswith(("/download", "/generate_204")):
            return self.cdn
        return None

    def apply_faults(self, req: Request) -> Response | None:
        account = self._account_of(req)
        rule = self.world.faults.match(
            req.method,
            req.path,
            req.host,
            account,
            ("status", "delay", "drop_after", "rate_limit", "too_frequent"),
        )
        if rule is None:
            return None
        self.world.stats.add("faults_fired", account)
        if rule.after:
            time.sleep(rule.after)
        if rule.action == "delay":
            time.sleep(float(rule.value))
            return None
        if rule.action == "drop_after":
            req.environ["emulator.drop_after"] = int(rule.value)
            return None
        if rule.action == "rate_limit":
            raise errors.rate_limited(int(rule.value.get("retry_after", 1)))
        if rule.action == "too_frequent":
            raise errors.too_frequent(4002 if req.path.startswith("/v1/") else 10)
        err = rule.error
        raise errors.ApiError(
            int(rule.value),
            str(err.get("error", "internal" if rule.value >= 500 else "fault")),
            int(err.get("error_code", 0 if rule.value >= 500 else 3)),
            str(err.get("error_description", "injected fault")),
        )

    @staticmethod
    def _not_found(req: Request) -> Response:
        return errors.ApiError(
            404, "not_found", 5, f"no route for {req.method} {req.path}"
        ).response()
