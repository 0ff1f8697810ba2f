"""Offline (cloud) downloads: PikPak fetches a magnet, http or ed2k URL into the drive."""

from __future__ import annotations

import json

from .drive import Drive
from .errors import Transient
from .session import Session
from .types import NewFile, Task, TaskPage


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

    def delete(self, task_ids: list[str], delete_files: bool = False) -> None:
        self.drive.delete_tasks(task_ids, delete_files=delete_files)

    def retry(self, task_id: str) -> None:
        """Start a failed task again."""
        self.session.call(
            "POST",
            "/drive/v1/task",
            json={"type": "offline", "create_type": "RETRY", "id": task_id},
            idempotent=False,
        )
