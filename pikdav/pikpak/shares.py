"""Reading someone's shared link: no login, a captcha token, and a pass-code token."""

from __future__ import annotations

import json
import threading

from .errors import AuthError, NotFound, PikPakError
from .session import Session
from .types import File, Link, ShareAnswer, SharedFile

_LIVE = json.dumps({"phase": {"eq": "PHASE_TYPE_COMPLETE"}, "trashed": {"eq": False}})
_SHARE_ACTION = "GET:/drive/v1/share:batch_file_info"


class ShareError(PikPakError):
    """The share cannot be opened (wrong pass code, expired, deleted…)."""


class SharedFolder:
    """A shared link (``https://mypikpak.com/s/<share_id>``) opened with its pass code.

    It uses the session's identity, device and captcha tokens but never its login.
    """

    def __init__(self, session: Session, share_id: str, pass_code: str = "") -> None:
        self.session = session
        self.share_id = share_id
        self.pass_code = pass_code
        self._token = ""
        self._lock = threading.Lock()

    def _get(self, path: str, params: dict) -> dict:
        captcha = self.session.captcha_token(_SHARE_ACTION)
        headers = self.session._headers({"X-Captcha-Token": captcha})

        def once() -> dict:
            return self.session._send(
                "GET",
                self.session.drive_api + path,
                params=params,
                headers=headers,
                idempotent=True,
            )

        return self.session._with_retries(once)

    def _check(self, answer: ShareAnswer) -> None:
        status = answer.status
        if status == "OK":
            return
        text = answer.status_text or status
        if status in ("PASS_CODE_EMPTY", "PASS_CODE_ERROR"):
            raise AuthError(f"the share needs the right pass code ({text})")
        if status == "NOT_FOUND":
            raise NotFound(f"the share does not exist ({text})")
        raise ShareError(f"the share cannot be opened: {status} ({text})")

    def pass_code_token(self) -> str:
        with self._lock:
            if not self._token:
                answer = ShareAnswer.from_wire(
                    self._get(
                        "/drive/v1/share",
                        {
                            "share_id": self.share_id,
                            "pass_code": self.pass_code,
                            "thumbnail_size": "SIZE_LARGE",
                            "limit": 100,
                        },
                    )
                )
                self._check(answer)
                self._token = answer.pass_code_token
            return self._token

    def list_folder(self, parent_id: str = "") -> list[File]:
        files: list[File] = []
        page = ""
        while True:
            answer = ShareAnswer.from_wire(
                self._get(
                    "/drive/v1/share/detail",
                    {
                        "share_id": self.share_id,
                        "parent_id": parent_id,
                        "pass_code_token": self.pass_code_token(),
                        "limit": 100,
                        "thumbnail_size": "SIZE_LARGE",
                        "filters": _LIVE,
                        "page_token": page,
                    },
                )
            )
            self._check(answer)
            files += answer.files
            page = answer.next_page_token
            if not page:
                return files

    def download_link(self, file_id: str) -> Link:
        shared = SharedFile.from_wire(
            self._get(
                "/drive/v1/share/file_info",
                {
                    "share_id": self.share_id,
                    "file_id": file_id,
                    "pass_code_token": self.pass_code_token(),
                },
            )
        )
        if shared.link is None:
            raise NotFound("the shared file has no download link")
        return shared.link
