"""Reading someone's shared link: no login, a captcha token, and a pass-code token.

A share answers its refusals in ``share_status`` (HTTP 200) or as an error answer; both
are rows of the error table (:data:`pikdav.pikpak.errors.SHARE_STATUSES`). A pass-code
token PikPak no longer takes is fetched again once; every other refusal is a typed
:class:`~pikdav.pikpak.errors.ShareError` that says what to do.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from .errors import LINK_RETRY_AFTER, LinkNotReady, NotFound, PikPakError, Reaction, share_refusal
from .retry import RENEW_ONCE, Again
from .session import Session
from .types import File, Link, ShareAnswer, SharedFile

SHARE_ACTION = "GET:/drive/v1/share:batch_file_info"  # the captcha action shares use
_SHARE_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")


@dataclass(frozen=True)
class ShareLink:
    """What a share link says: the share, a folder inside it ("" for its top), a pass code."""

    share_id: str
    folder_id: str = ""
    pass_code: str = ""


def parse_share_link(text: str) -> ShareLink:
    """``https://mypikpak.com/s/<share id>[/<folder id>][?pwd=<pass code>]`` or a bare share
    id; ValueError says what is wrong."""
    text = text.strip()
    if _SHARE_ID.fullmatch(text):
        return ShareLink(text)
    parts = urlsplit(text)
    segments = [p for p in parts.path.split("/") if p]
    if (
        parts.scheme not in ("http", "https")
        or len(segments) not in (2, 3)
        or segments[0] != "s"
        or not all(_SHARE_ID.fullmatch(p) for p in segments[1:])
    ):
        raise ValueError(
            "must be a share link such as https://mypikpak.com/s/VNabc123 (a second part is "
            "a folder inside the share, ?pwd= its pass code) or a bare share id"
        )
    pass_code = parse_qs(parts.query).get("pwd", [""])[0]
    return ShareLink(segments[1], segments[2] if len(segments) == 3 else "", pass_code)


PAGE_SIZE = 100
_LIVE = json.dumps({"phase": {"eq": "PHASE_TYPE_COMPLETE"}, "trashed": {"eq": False}})


class _Answer(Protocol):
    status: str
    status_text: str


A = TypeVar("A", bound=_Answer)


class SharedFolder:
    """A shared link (``https://mypikpak.com/s/<share_id>``) opened with its pass code.

    It uses the session's identity and device, and anonymous captcha tokens, but never
    its login: a session without any credentials reads shares."""

    def __init__(self, session: Session, share_id: str, pass_code: str = "") -> None:
        self.session = session
        self.share_id = share_id
        self.pass_code = pass_code
        self._token = ""
        self._lock = threading.Lock()

    def pass_code_token(self) -> str:
        """The token that proves the pass code (kept until PikPak refuses it). A refusal
        here is final: the pass code itself is missing or wrong."""
        with self._lock:
            if not self._token:
                answer = ShareAnswer.from_wire(
                    self._get(
                        "/drive/v1/share",
                        {
                            "share_id": self.share_id,
                            "pass_code": self.pass_code,
                            "thumbnail_size": "SIZE_LARGE",
                            "limit": PAGE_SIZE,
                        },
                    )
                )
                _check(answer)
                self._token = answer.pass_code_token
            return self._token

    def list_folder(self, parent_id: str = "") -> list[File]:
        files: list[File] = []
        page = ""
        while True:
            shown = self._read(
                "/drive/v1/share/detail",
                {
                    "share_id": self.share_id,
                    "parent_id": parent_id,
                    "limit": PAGE_SIZE,
                    "thumbnail_size": "SIZE_LARGE",
                    "filters": _LIVE,
                    "page_token": page,
                },
                ShareAnswer.from_wire,
            )
            files += shown.files
            page = shown.next_page_token
            if not page:
                return files

    def download_link(self, file_id: str, *, transcoded: bool = False) -> Link:
        """The shared file's link; ``transcoded``: its transcoded copy's when it has one
        (OpenList's "use transcoding address": complete, where the original may stop at
        PikPak's play limit)."""
        shared = self.file_info(file_id)
        link = shared.transcoded if transcoded and shared.transcoded is not None else shared.link
        if link is None:
            raise NotFound("the shared file has no download link")
        if not link.usable():
            raise LinkNotReady(
                "PikPak gave a link for the shared file that expires at once; "
                f"try again in {LINK_RETRY_AFTER} s",
                retry_after=LINK_RETRY_AFTER,
            )
        return link

    def file_info(self, file_id: str) -> SharedFile:
        return self._read(
            "/drive/v1/share/file_info",
            {"share_id": self.share_id, "file_id": file_id},
            SharedFile.from_wire,
        )

    def restore(self, file_ids: list[str], drive_session: Session, parent_id: str) -> str:
        """Save files of the share into the drive of ``drive_session``'s account, in the
        folder ``parent_id``; the restore task's id ("" when PikPak finished at once)."""

        def call(token: str) -> str:
            answer = drive_session.call(
                "POST",
                "/drive/v1/share/restore",
                json={
                    "share_id": self.share_id,
                    "pass_code_token": token,
                    "file_ids": file_ids,
                    "specify_parent_id": True,
                    "parent_id": parent_id,
                    "folder_type": "",
                },
                idempotent=False,
            )
            _check(ShareAnswer.from_wire(answer))
            return str(answer.get("restore_task_id") or "")

        return self._proving(call)

    def _read(self, path: str, params: dict[str, Any], parse: Callable[[Any], A]) -> A:
        """A call that proves the pass code."""

        def call(token: str) -> A:
            answer = parse(self._get(path, params | {"pass_code_token": token}))
            _check(answer)
            return answer

        return self._proving(call)

    def _proving(self, call: Callable[[str], A]) -> A:
        """``call(pass_code_token)``; a token PikPak refuses is renewed once."""

        def attempt() -> A:
            token = self.pass_code_token()
            try:
                return call(token)
            except PikPakError as exc:
                if exc.reaction is not Reaction.RENEW_PASS_CODE:
                    raise
                self._forget(token)
                raise Again(exc, 0) from None

        return RENEW_ONCE.run(attempt)

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = ""

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.session.call(
            "GET", path, params=params, signed_in=False, captcha_action=SHARE_ACTION
        )


def _check(answer: _Answer) -> None:
    refusal = share_refusal(answer.status, answer.status_text)
    if refusal is not None:
        raise refusal[0]
