"""PikPak's wire objects, parsed once at the edge into frozen dataclasses with real types.

Observed quirks worth knowing: sizes and quota numbers are decimal strings; times are
RFC 3339 in PikPak's own zone (+08:00) with milliseconds; root children have
``parent_id == ""``; list answers never carry download links (only a single-file GET does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

FOLDER_KIND = "drive#folder"
PHASE_COMPLETE = "PHASE_TYPE_COMPLETE"
_EPOCH = datetime.fromtimestamp(0, UTC)


def parse_time(value: Any) -> datetime:
    if not value:
        return _EPOCH
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Link:
    """A download URL and when it stops working (links are bound to the asking IP)."""

    url: str
    expires_at: float

    def valid_for(self, seconds: float) -> bool:
        return bool(self.url) and time.time() + seconds < self.expires_at

    @classmethod
    def from_wire(cls, data: Any) -> Link | None:
        if not isinstance(data, dict) or not data.get("url"):
            return None
        url = str(data["url"])
        # The ``expire`` query parameter (Unix seconds) is what the CDN checks; the
        # ``expire`` field is the same instant in RFC 3339.
        query = parse_qs(urlsplit(url).query)
        expires = parse_int(query.get("expire", [None])[0] or query.get("e", [None])[0])
        if not expires:
            expires = int(parse_time(data.get("expire")).timestamp())
        return cls(url, float(expires))


@dataclass(frozen=True)
class File:
    id: str
    name: str
    parent_id: str
    is_folder: bool
    size: int
    created: datetime
    modified: datetime
    hash: str
    mime_type: str
    phase: str
    trashed: bool
    link: Link | None = None

    @property
    def complete(self) -> bool:
        return self.phase == PHASE_COMPLETE

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> File:
        link = None
        links = data.get("links")
        if isinstance(links, dict):
            link = Link.from_wire(links.get("application/octet-stream"))
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            parent_id=str(data.get("parent_id") or ""),
            is_folder=data.get("kind") == FOLDER_KIND,
            size=parse_int(data.get("size")),
            created=parse_time(data.get("created_time")),
            modified=parse_time(data.get("modified_time")),
            hash=str(data.get("hash") or ""),
            mime_type=str(data.get("mime_type") or ""),
            phase=str(data.get("phase") or PHASE_COMPLETE),
            trashed=bool(data.get("trashed")),
            link=link,
        )


@dataclass(frozen=True)
class Quota:
    limit: int
    usage: int
    usage_in_trash: int
    unlimited: bool

    @property
    def available(self) -> int:
        return max(0, self.limit - self.usage)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Quota:
        quota = data.get("quota") or {}
        return cls(
            parse_int(quota.get("limit")),
            parse_int(quota.get("usage")),
            parse_int(quota.get("usage_in_trash")),
            bool(quota.get("is_unlimited")),
        )


@dataclass(frozen=True)
class Task:
    id: str
    type: str
    name: str
    phase: str
    progress: int
    file_id: str
    file_name: str
    file_size: int
    message: str
    url: str

    @property
    def done(self) -> bool:
        return self.phase == PHASE_COMPLETE

    @property
    def failed(self) -> bool:
        return self.phase == "PHASE_TYPE_ERROR"

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Task:
        params = data.get("params") or {}
        return cls(
            id=str(data.get("id", "")),
            type=str(data.get("type", "")),
            name=str(data.get("name", "")),
            phase=str(data.get("phase", "")),
            progress=parse_int(data.get("progress")),
            file_id=str(data.get("file_id") or ""),
            file_name=str(data.get("file_name") or ""),
            file_size=parse_int(data.get("file_size")),
            message=str(data.get("message") or ""),
            url=str(params.get("url") or "") if isinstance(params, dict) else "",
        )


@dataclass(frozen=True)
class UploadTarget:
    """Where an upload ticket says the bytes go: an S3-compatible bucket and temporary keys."""

    bucket: str
    key: str
    endpoint: str
    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: datetime

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> UploadTarget:
        params = data.get("params") or {}
        return cls(
            bucket=str(params.get("bucket", "")),
            key=str(params.get("key", "")),
            endpoint=str(params.get("endpoint", "")),
            access_key_id=str(params.get("access_key_id", "")),
            access_key_secret=str(params.get("access_key_secret", "")),
            security_token=str(params.get("security_token", "")),
            expires_at=parse_time(params.get("expiration")),
        )

    def __repr__(self) -> str:  # keep the temporary secrets out of logs and tracebacks
        return f"UploadTarget(bucket={self.bucket!r}, key={self.key!r})"


@dataclass(frozen=True)
class Token:
    """What a sign-in or refresh returns, plus what we need to use it later."""

    access_token: str
    refresh_token: str
    expires_at: float
    issued_at: float
    user_id: str
    client_id: str

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)

    def fresh(self, now: float | None = None) -> bool:
        """Usable without a refresh: less than half of its life is gone."""
        now = time.time() if now is None else now
        return bool(self.access_token) and now < self.issued_at + self.lifetime / 2

    @classmethod
    def from_wire(cls, data: dict[str, Any], client_id: str) -> Token:
        now = time.time()
        expires_in = parse_int(data.get("expires_in")) or 7200
        return cls(
            str(data.get("access_token", "")),
            str(data.get("refresh_token", "")),
            now + expires_in,
            now,
            str(data.get("sub") or data.get("user_id") or ""),
            client_id,
        )

    def __repr__(self) -> str:
        return f"Token(user_id={self.user_id!r}, expires_at={self.expires_at:.0f})"
