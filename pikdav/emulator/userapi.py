"""The user host: captcha init, sign-in, token refresh, user info."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from pikdav.pikpak import identity

from . import errors
from .clients import KNOWN_CLIENTS, SALTS
from .http import Request, Response
from .world import CaptchaToken, World

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{11,18}$")
CAPTCHA_TTL = 300
_SIGNIN_METAS = ("username", "email", "phone_number")


def _client_id(req: Request, params: dict[str, Any]) -> str:
    return str(params.get("client_id") or req.query.get("client_id") or req.header("X-Client-Id"))


def _known_client(client_id: str) -> str:
    if client_id not in KNOWN_CLIENTS:
        raise errors.ApiError(
            400,
            "invalid_client",
            4002,
            "client_id is not valid",
            message="The client is not supported",
        )
    return client_id


class UserApi:
    def __init__(self, world: World) -> None:
        self.world = world

    def route(self, req: Request) -> Response | None:
        if req.method == "POST" and req.path == "/v1/shield/captcha/init":
            return self.captcha_init(req)
        if req.method == "POST" and req.path == "/v1/auth/signin":
            return self.signin(req)
        if req.method == "POST" and req.path == "/v1/auth/token":
            return self.token(req)
        if req.method == "GET" and req.path == "/v1/user/me":
            return self.me(req)
        return None

    # ------------------------------------------------------------------ captcha
    def captcha_init(self, req: Request) -> Response:
        params = req.params()
        client_id = _client_id(req, params)
        self.world.stats.add("captcha_init")
        _known_client(client_id)
        device_id = str(params.get("device_id") or req.header("X-Device-Id"))
        action = str(params.get("action") or "")
        meta = params.get("meta") or {}
        if not isinstance(meta, dict):
            raise errors.bad_request("meta must be an object")
        if not device_id:
            raise errors.captcha_invalid_auth("device_id is required")
        if not action:
            raise errors.captcha_invalid_auth("action is required")
        account = None
        signin_meta = next((k for k in _SIGNIN_METAS if meta.get(k)), None)
        if signin_meta:
            account = str(meta[signin_meta])
        else:
            self._check_sign(client_id, device_id, meta)
        rule = self.world.faults.match(req.method, req.path, req.host, account, ("captcha",))
        token = "ck0." + secrets.token_urlsafe(96)
        challenge = rule.value.get("url", "") if rule is not None else ""
        entry = CaptchaToken(
            client_id,
            device_id,
            bool(signin_meta),
            dict(meta),
            time.time() + CAPTCHA_TTL,
            solved=rule is None,
            action=action,
        )
        with self.world.lock:
            self.world.captcha_tokens[token] = entry
        if rule is not None:
            self.world.stats.add("faults_fired", account)
            # A human check: PikPak sends a puzzle page; solving it validates this token.
            base = challenge or f"{req.scheme}://{req.host}/__emulator__/captcha"
            sep = "&" if "?" in base else "?"
            challenge = (
                f"{base}{sep}captcha_token={token}&client_id={client_id}"
                f"&device_id={device_id}&action={action}&event=shield-captcha-init"
            )
        return Response.json({"captcha_token": token, "expires_in": CAPTCHA_TTL, "url": challenge})

    def _check_sign(self, client_id: str, device_id: str, meta: dict[str, Any]) -> None:
        version = str(meta.get("client_version", ""))
        salts = SALTS.get((client_id, version))
        sign = str(meta.get("captcha_sign", ""))
        timestamp = str(meta.get("timestamp", ""))
        package = str(meta.get("package_name", ""))
        if salts is None or not sign or not timestamp:
            raise errors.captcha_invalid_auth(
                f"meta.captcha_sign expect, but got map[{' '.join(sorted(meta))}], "
                "please check captcha init params"
            )
        expected = identity.captcha_sign(client_id, version, package, device_id, timestamp, salts)
        if sign != expected:
            raise errors.captcha_invalid_auth("captcha_sign is invalid")

    def _signin_captcha(self, token: str, client_id: str, login: str) -> None:
        with self.world.lock:
            entry = self.world.captcha_tokens.get(token)
        if entry is None:
            raise errors.captcha_invalid_auth("captcha_token is invalid")
        if entry.expires_at <= time.time():
            raise errors.captcha_invalid_auth("Code(4002) - captcha_token expired")
        if not entry.solved:
            raise errors.captcha_invalid_auth("captcha_token is not verified, result:review")
        if not entry.for_signin:
            shown = " ".join(f"{k}:{v}" for k, v in sorted(entry.meta.items()))
            raise errors.captcha_invalid_auth(
                f"meta.username expect , but got map[{shown}], please check captcha init params"
            )
        if entry.client_id != client_id:
            raise errors.captcha_invalid_auth("captcha_token does not belong to this client")

    # ------------------------------------------------------------------ sign-in
    def signin(self, req: Request) -> Response:
        params = req.params()
        client_id = _client_id(req, params)
        _known_client(client_id)
        login = str(
            params.get("username") or params.get("email") or params.get("phone_number") or ""
        )
        password = str(params.get("password") or "")
        captcha = str(params.get("captcha_token") or req.header("X-Captcha-Token"))
        with self.world.lock:
            known = self.world.account_by_login(login)
        # Every attempt counts, refused ones too: a client that keeps signing in with a
        # wrong password is what earns an account PikPak's "too frequent".
        self.world.stats.add("signin", known.username if known else None)
        if not captcha:
            raise errors.ApiError(
                400,
                "captcha_required",
                4002,
                "captcha_required",
                message="Please complete the safety verification",
            )
        self._signin_captcha(captcha, client_id, login)
        with self.world.lock:
            acct = self.world.account_by_login(login)
            if acct is None or not secrets.compare_digest(acct.password, password):
                self.world.stats.add("signin_rejected", acct.username if acct else None)
                raise errors.ApiError(
                    400,
                    "invalid_account_or_password",
                    4022,
                    "invalid_account_or_password",
                    message="Incorrect account or password",
                )
            return Response.json(self.world.issue_tokens(acct, client_id))

    # ------------------------------------------------------------------ refresh
    def token(self, req: Request) -> Response:
        params = req.params()
        client_id = _client_id(req, params)
        grant = params.get("grant_type")
        if grant == "password":
            raise errors.ApiError(400, "unauthenticated", 16, "currently not supported")
        if grant != "refresh_token":
            raise errors.ApiError(
                400, "unsupported_grant_type", 4126, "grant_type is not supported"
            )
        _known_client(client_id)
        refresh = str(params.get("refresh_token") or "")
        with self.world.lock:
            entry = self.world.refresh_tokens.get(refresh)
            # Single use, and only for the client that minted it.
            if entry is None or entry.used or entry.client_id != client_id:
                self.world.stats.add("refresh_rejected", entry.account if entry else None)
                raise errors.invalid_grant(refresh)
            entry.used = True
            acct = self.world.accounts[entry.account]
            self.world.stats.add("refresh", acct.username)
            return Response.json(self.world.issue_tokens(acct, client_id))

    def me(self, req: Request) -> Response:
        acct = self.world.authenticate(req.header("Authorization"))
        return Response.json(
            {
                "sub": acct.user_id,
                "name": acct.username,
                "picture": "",
                "email": acct.username if _EMAIL.match(acct.username) else "",
                "providers": [],
                "phone_number": "",
                "password": "SET",
                "status": "ACTIVE",
                "created_at": "2023-01-01T00:00:00Z",
                "password_updated_at": "",
            }
        )
