"""A raw PikPak wire driver for emulator tests, written from the fact sheet.

It is deliberately independent of ``pikdav.pikpak``'s client: the emulator tests check
the emulator's wire behaviour, and must not share the client's code or mistakes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

from pikdav.pikpak import identity


@dataclass
class RawSession:
    base: str
    username: str
    password: str
    platform: identity.Platform = identity.WEB
    device_id: str = "0123456789abcdef0123456789abcdef"
    http: requests.Session = field(default_factory=requests.Session)
    access_token: str = ""
    refresh_token: str = ""
    user_id: str = ""
    captcha_token: str = ""

    def captcha(self, action: str, signin: bool = False) -> dict[str, Any]:
        if signin:
            meta: dict[str, Any] = {"username": self.username}
        else:
            ts = str(int(time.time() * 1000))
            meta = {
                "captcha_sign": identity.sign_for(self.platform, self.device_id, ts),
                "client_version": self.platform.client_version,
                "package_name": self.platform.package_name,
                "timestamp": ts,
                "user_id": self.user_id,
            }
        resp = self.http.post(
            f"{self.base}/v1/shield/captcha/init",
            json={
                "action": action,
                "client_id": self.platform.client_id,
                "device_id": self.device_id,
                "meta": meta,
            },
        )
        body = resp.json()
        if resp.ok:
            self.captcha_token = body["captcha_token"]
        return body | {"_status": resp.status_code}

    def signin(self) -> requests.Response:
        self.captcha("POST:/v1/auth/signin", signin=True)
        resp = self.http.post(
            f"{self.base}/v1/auth/signin",
            json={
                "client_id": self.platform.client_id,
                "username": self.username,
                "password": self.password,
                "captcha_token": self.captcha_token,
            },
        )
        if resp.ok:
            self._take(resp.json())
        return resp

    def refresh(self, token: str | None = None) -> requests.Response:
        resp = self.http.post(
            f"{self.base}/v1/auth/token",
            data={
                "client_id": self.platform.client_id,
                "grant_type": "refresh_token",
                "refresh_token": token or self.refresh_token,
            },
        )
        if resp.ok:
            self._take(resp.json())
        return resp

    def _take(self, body: dict[str, Any]) -> None:
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]
        self.user_id = body["sub"]

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.access_token}",
            "X-Captcha-Token": self.captcha_token,
            "X-Device-Id": self.device_id,
            "X-Client-Id": self.platform.client_id,
        }

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(f"{self.base}{path}", params=params, headers=self.headers())

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.base}{path}", json=body, headers=self.headers())

    def patch(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.http.patch(f"{self.base}{path}", json=body or {}, headers=self.headers())

    def list_all(
        self, parent_id: str = "", filters: dict | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], int]:
        """Every entry of a folder, and how many pages it took."""
        files, token, pages = [], "", 0
        import json as _json

        while True:
            resp = self.get(
                "/drive/v1/files",
                parent_id=parent_id,
                limit=limit,
                page_token=token,
                filters=_json.dumps(
                    filters or {"phase": {"eq": "PHASE_TYPE_COMPLETE"}, "trashed": {"eq": False}}
                ),
            )
            resp.raise_for_status()
            body = resp.json()
            pages += 1
            files += body["files"]
            token = body["next_page_token"]
            if not token:
                return files, pages


def control(base: str, name: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    resp = requests.request(method, f"{base}/__emulator__/{name}", json=body)
    resp.raise_for_status()
    return resp.json()


def pikpak_cdn(rate: int) -> dict[str, Any]:
    """The emulator's CDN settings (``POST /__emulator__/config``) of PikPak's real limits:
    ``rate`` bytes per second per connection, 8 connections per link, 20 per account, 30 ms
    before the first byte."""
    return {
        "cdn_conn_rate": rate,
        "cdn_link_conns": 8,
        "cdn_account_conns": 20,
        "cdn_first_byte_delay": 0.03,
    }


def account_stats(emulator: Any, user: str = "alice@example.com") -> dict:
    """The emulator's counters of one account (sign-ins, list and link calls, downloads…)."""
    return emulator.world.stats.snapshot()["accounts"].get(user, {})


def total_stats(emulator: Any) -> dict:
    """The emulator's counters over every account, read through its control API."""
    return control(emulator.base_url, "stats", method="GET")["total"]


def sign_ins(emulator: Any) -> int:
    """Sign-ins the emulator has answered, every account's."""
    return emulator.world.stats.snapshot()["total"].get("signin", 0)


def drive_calls(emulator: Any) -> int:
    """Calls PikPak's drive host got so far (listings, links, changes, shares), from every
    address."""
    by_ip = emulator.world.stats.snapshot()["calls_by_ip"]
    return sum(areas.get("drive", 0) for areas in by_ip.values())


def drive_tree(
    emulator: Any, user: str = "alice@example.com", *, trashed: bool | None = False
) -> dict[str, dict]:
    """An account's items by path, from the emulator's control API: those out of the trash,
    those in it (``trashed=True``), or every one (``None``; of two with one path, the last)."""
    rows = control(emulator.base_url, f"tree?username={user}", method="GET")["files"]
    return {r["path"]: r for r in rows if trashed is None or r["trashed"] == trashed}
