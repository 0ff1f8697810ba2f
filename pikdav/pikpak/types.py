"""PikPak's wire objects, parsed once at the edge into frozen dataclasses with real types.

Observed quirks worth knowing: sizes and quota numbers are decimal strings; times are
RFC 3339 in PikPak's own zone (+08:00) with milliseconds; root children have
``parent_id == ""``; list answers never carry download links (only a single-file GET does).

Every time and expiry here is a float of Unix seconds (0.0: unknown). Nothing outside this
module reads a PikPak JSON dict; error bodies are read by :mod:`pikdav.pikpak.errors`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

FOLDER_KIND = "drive#folder"
PHASE_COMPLETE = "PHASE_TYPE_COMPLETE"
T = TypeVar("T")


def parse_time(value: Any) -> float:
    """An RFC 3339 time as Unix seconds; 0.0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _dict(value: Any) -> dict[str, Any]:
    """PikPak sends ``null`` for absent objects: an empty dict reads the same."""
    return value if isinstance(value, dict) else {}


def _items(data: Any, key: str, parse: Callable[[Any], T]) -> tuple[T, ...]:
    """The objects listed under ``key``, parsed (none when absent or ``null``)."""
    items = _dict(data).get(key)
    return tuple(parse(item) for item in items) if isinstance(items, list) else ()


def _next_page(data: Any) -> str:
    """The token of a list's next page; empty on the last page."""
    return str(_dict(data).get("next_page_token") or "")


def parse_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


ORIGINAL = "original"  # the default link kind: the file as stored
LINK_KINDS = (ORIGINAL, "media", "transcoded")  # which of a file's links is read


class ByteReader(io.RawIOBase):
    """A seekable reader of a file's bytes whose one verb is ``read``."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


LINK_MARGIN = 60.0  # seconds before its expiry from which a link is asked for again


@dataclass(frozen=True)
class Link:
    """A download URL and when it stops working (links are bound to the asking IP).

    ``size``: the bytes behind it, from the URL's ``f`` parameter (0: not said);
    ``fallback``: when ``url`` was rewritten to another host, the URL PikPak gave."""

    url: str
    expires_at: float
    size: int = 0
    fallback: str = ""

    def usable_for(self, now: float | None = None) -> float:
        """The one link-freshness rule (the drive, the link cache and shares ask it): the
        seconds this link may still be handed out, :data:`LINK_MARGIN` before PikPak's expiry,
        so that a client that gets it has time to start reading; 0 when it is no longer."""
        if not self.url:
            return 0.0
        left = self.expires_at - LINK_MARGIN - (time.time() if now is None else now)
        return max(0.0, left)

    def usable(self, now: float | None = None) -> bool:
        return self.usable_for(now) > 0

    @property
    def fid(self) -> str:
        """The stored content the link reads (the same for every host and kind)."""
        return parse_qs(urlsplit(self.url).query).get("fid", [""])[0]

    @property
    def content_hash(self) -> str:
        """The GCID of the bytes behind the link (``g``), empty when not said."""
        return parse_qs(urlsplit(self.url).query).get("g", [""])[0]

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
            expires = int(parse_time(data.get("expire")))
        return cls(url, float(expires), parse_int(query.get("f", [None])[0]))


@dataclass(frozen=True)
class Media:
    """One entry of a file's ``medias``: the play interface's original, or a transcode."""

    link: Link | None
    is_origin: bool
    transcoded: bool
    resolution: str

    @classmethod
    def from_wire(cls, data: Any) -> Media:
        data = _dict(data)
        return cls(
            Link.from_wire(data.get("link")),
            bool(data.get("is_origin")),
            data.get("category") == "category_transcode",
            str(data.get("resolution_name") or ""),
        )


@dataclass(frozen=True)
class File:
    id: str
    name: str
    parent_id: str
    is_folder: bool
    size: int
    created: float  # Unix seconds
    modified: float
    hash: str
    mime_type: str
    phase: str
    trashed: bool
    link: Link | None = None  # the original bytes (``links["application/octet-stream"]``)
    category: str = ""  # VIDEO, AUDIO, ARCHIVE, OTHER…
    medias: tuple[Media, ...] = ()  # only in a single file's answer, like the link

    @property
    def complete(self) -> bool:
        return self.phase == PHASE_COMPLETE

    @property
    def transcode(self) -> Link | None:
        """The link of the transcoded media PikPak plays by default, when it has one whose
        size it tells (a listing has to announce the bytes a GET will return)."""
        return next(
            (m.link for m in self.medias if m.transcoded and m.link and m.link.size > 0), None
        )

    def link_for(self, kind: str) -> Link | None:
        """The link of ``kind`` (see :data:`LINK_KINDS`), else the original's.

        ``media``: the play interface's link, only when it reads the original bytes (its
        ``fid`` equals the original link's, rclone's rule: a media link tolerates more
        ranged reads, but a transcode would make a copy differ)."""
        if self.link is None or kind == ORIGINAL:
            return self.link
        if kind == "media":
            same = (m.link for m in self.medias if m.link and m.link.fid == self.link.fid)
            return next(same, self.link)
        return self.transcode or self.link

    @classmethod
    def from_wire(cls, data: Any) -> File:
        data = _dict(data)
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
            category=str(data.get("file_category") or ""),
            medias=_items(data, "medias", Media.from_wire),
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
    def from_wire(cls, data: Any) -> Quota:
        quota = _dict(_dict(data).get("quota"))
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
    def from_wire(cls, data: Any) -> Task:
        data = _dict(data)
        params = _dict(data.get("params"))
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
            url=str(params.get("url") or ""),
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
    expires_at: float  # Unix seconds

    @classmethod
    def from_wire(cls, data: Any) -> UploadTarget:
        params = _dict(_dict(data).get("params"))
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
    def from_wire(cls, data: Any, client_id: str) -> Token:
        data = _dict(data)
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


@dataclass(frozen=True)
class CaptchaAnswer:
    """What ``/v1/shield/captcha/init`` answers: a token for the calls of one action, or,
    when PikPak wants a person to solve a puzzle first, the page (``url``) to solve it on."""

    token: str
    expires_at: float
    url: str = ""

    @property
    def human_check(self) -> bool:
        return bool(self.url)

    @classmethod
    def from_wire(cls, data: Any) -> CaptchaAnswer:
        data = _dict(data)
        # "currently 300 s", and rclone's default when PikPak omits it.
        expires_in = parse_int(data.get("expires_in")) or 300
        return cls(
            str(data.get("captcha_token") or ""),
            time.time() + expires_in,
            str(data.get("url") or ""),
        )

    def __repr__(self) -> str:  # the token (and the page, which carries it) stay out of logs
        return f"CaptchaAnswer(expires_at={self.expires_at:.0f}, human_check={self.human_check})"


@dataclass(frozen=True)
class FilePage:
    """One page of a folder listing, and the token for the next (empty: the last page)."""

    files: tuple[File, ...]
    next_page_token: str

    @classmethod
    def from_wire(cls, data: Any) -> FilePage:
        return cls(_items(data, "files", File.from_wire), _next_page(data))


@dataclass(frozen=True)
class TaskPage:
    tasks: tuple[Task, ...]
    next_page_token: str

    @classmethod
    def from_wire(cls, data: Any) -> TaskPage:
        return cls(_items(data, "tasks", Task.from_wire), _next_page(data))


@dataclass(frozen=True)
class TaskStarted:
    """A batch action's answer: the task to wait for (empty: PikPak did it at once)."""

    task_id: str

    @classmethod
    def from_wire(cls, data: Any) -> TaskStarted:
        return cls(str(_dict(data).get("task_id") or ""))


@dataclass(frozen=True)
class NewFile:
    """PikPak's answer to making an item (``POST /drive/v1/files``: a folder, an upload, a
    cloud download): the item (None for a cloud download), the task that makes it, and for
    an upload whose content PikPak does not have yet, where its bytes go (its ticket)."""

    file: File | None
    task: Task | None
    target: UploadTarget | None

    @classmethod
    def from_wire(cls, data: Any) -> NewFile:
        data = _dict(data)
        item, task, resumable = data.get("file"), data.get("task"), data.get("resumable")
        return cls(
            File.from_wire(item) if isinstance(item, dict) and item else None,
            Task.from_wire(task) if isinstance(task, dict) and task else None,
            UploadTarget.from_wire(resumable) if isinstance(resumable, dict) else None,
        )


@dataclass(frozen=True)
class ShareAnswer:
    """What ``/drive/v1/share`` and ``/drive/v1/share/detail`` answer. A refusal comes in
    ``status`` with HTTP 200 (see :data:`pikdav.pikpak.errors.SHARE_STATUSES`)."""

    status: str
    status_text: str
    pass_code_token: str
    files: tuple[File, ...]
    next_page_token: str

    @classmethod
    def from_wire(cls, data: Any) -> ShareAnswer:
        data = _dict(data)
        status = str(data.get("share_status") or "OK")
        return cls(
            status,
            str(data.get("share_status_text") or ""),
            str(data.get("pass_code_token") or ""),
            _items(data, "files", File.from_wire),
            _next_page(data),
        )

    def __repr__(self) -> str:
        return f"ShareAnswer(status={self.status!r}, files={len(self.files)})"


@dataclass(frozen=True)
class SharedFile:
    """``/drive/v1/share/file_info``: a file of a share and its download link (None when
    PikPak gives the share's file no link). Since May 2024 a shared file's
    ``web_content_link`` is empty and its bytes come from its media links alone: the
    original first, a transcoded copy second when there is one."""

    file: File
    link: Link | None
    status: str = "OK"
    status_text: str = ""
    transcoded: Link | None = None

    @classmethod
    def from_wire(cls, data: Any) -> SharedFile:
        data = _dict(data)
        info = _dict(data.get("file_info"))
        medias = [
            link
            for media in info.get("medias") or ()
            if (link := Link.from_wire(_dict(media).get("link"))) is not None
        ]
        plain = Link.from_wire({"url": info.get("web_content_link")})
        return cls(
            File.from_wire(info),
            plain or (medias[0] if medias else None),
            str(data.get("share_status") or "OK"),
            str(data.get("share_status_text") or ""),
            medias[1] if plain is None and len(medias) > 1 else None,
        )
