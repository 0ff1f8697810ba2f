"""Offline (cloud) downloads: PikPak fetches a magnet, http or ed2k URL into the drive."""

from __future__ import annotations

import json

from .session import Session
from .types import Task

ACTIVE = "PHASE_TYPE_RUNNING,PHASE_TYPE_PENDING,PHASE_TYPE_ERROR"


class OfflineTasks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, url: str, parent_id: str = "", name: str = "") -> Task:
        """Start a task; without a parent the file lands in PikPak's "My Pack" folder."""
        body: dict = {"kind": "drive#file", "upload_type": "UPLOAD_TYPE_URL", "url": {"url": url}}
        if name:
            body["name"] = name
        if parent_id:
            body["parent_id"] = parent_id
        else:
            body["folder_type"] = "DOWNLOAD"
        answer = self.session.call("POST", "/drive/v1/files", json=body, idempotent=False)
        return Task.from_wire(answer.get("task") or {})

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
            body = self.session.call("GET", "/drive/v1/tasks", params=params)
            tasks += [Task.from_wire(t) for t in body.get("tasks") or []]
            token = body.get("next_page_token") or ""
            if not token:
                return tasks

    def delete(self, task_ids: list[str], delete_files: bool = False) -> None:
        if task_ids:
            self.session.call(
                "DELETE",
                "/drive/v1/tasks",
                params={"task_ids": ",".join(task_ids), "delete_files": str(delete_files).lower()},
            )
