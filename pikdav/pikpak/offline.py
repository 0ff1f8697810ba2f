"""Offline (cloud) downloads: PikPak fetches a magnet, http or ed2k URL into the drive."""

from __future__ import annotations

import json
import re

from .drive import Drive
from .errors import NotFound, Transient
from .session import Session
from .types import NewFile, Task, TaskPage

_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class OfflineTasks:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.drive = Drive(session)

    def add(self, url: str, parent_id: str = "", name: str = "") -> Task:
        """Start a task; without a parent the file lands in PikPak's "My Pack" folder."""
        body: dict = {"kind": "drive#file", "upload_type": "UPLOAD_TYPE_URL", "url": {"url": url}}
        if name:
            body["name"] = name
        if parent_id:
            body["parent_id"] = parent_id
        else:
            body["folder_type"] = "DOWNLOAD"
        answer = NewFile.from_wire(
            self.session.call("POST", "/drive/v1/files", json=body, idempotent=False)
        )
        if answer.task is None:
            raise Transient("PikPak did not say which task fetches the URL")
        return answer.task

    def list(self, phases: str | None = None) -> list[Task]:
        tasks: list[Task] = []
        token = ""
        while True:
            params = {
                "type": "offline",
                "thumbnail_size": "SIZE_SMALL",
                "limit": 10000,
                "page_token": token,
                "with": "reference_resource",
            }
            if phases:
                params["filters"] = json.dumps({"phase": {"in": phases}})
            page = TaskPage.from_wire(self.session.call("GET", "/drive/v1/tasks", params=params))
            tasks += page.tasks
            token = page.next_page_token
            if not token:
                return tasks

    def delete(self, task_ids: list[str], delete_files: bool = False) -> list[str]:
        """Delete the account's offline tasks among ``task_ids``; the ids that name none.
        PikPak answers the deletion of an id it does not know as done, so each task is
        looked up first."""
        found, unknown = [], []
        for task_id in task_ids:
            (found if self._exists(task_id) else unknown).append(task_id)
        self.drive.delete_tasks(found, delete_files=delete_files)
        return unknown

    def _exists(self, task_id: str) -> bool:
        if not _TASK_ID.fullmatch(task_id):
            return False  # no task has it, and it is no path to put into a URL
        try:
            return self.drive.get_task(task_id).type == "offline"
        except NotFound:
            return False

    def retry(self, task_id: str) -> None:
        """Start a failed task again."""
        self.session.call(
            "POST",
            "/drive/v1/task",
            json={"type": "offline", "create_type": "RETRY", "id": task_id},
            idempotent=False,
        )
