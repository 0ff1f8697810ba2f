"""Drive operations in file-system verbs, over one :class:`Session`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from .errors import LINK_RETRY_AFTER, LinkNotReady, NotFound, Transient
from .retry import LINK_POLL, TASK_POLL
from .session import Session
from .types import ORIGINAL, File, FilePage, Link, NewFile, Quota, Task, TaskStarted

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # the most PikPak returns per page
LIVE = {"phase": {"eq": "PHASE_TYPE_COMPLETE"}, "trashed": {"eq": False}}


class Drive:
    def __init__(
        self, session: Session, *, task_timeout: float = 60.0, link_wait: float = 3.0
    ) -> None:
        self.session = session
        self.task_timeout = task_timeout
        self.link_wait = link_wait

    # ------------------------------------------------------------------ reading
    def iter_folder(
        self, folder_id: str = "", *, trashed: bool = False, with_pending: bool = False
    ) -> Iterator[File]:
        """Every complete item of a folder, one request per 500 items (``with_pending``:
        also the files whose upload never finished, which PikPak keeps but does not show)."""
        filters = dict(LIVE) | ({"trashed": {"eq": True}} if trashed else {})
        if with_pending:
            # Clients ask for complete items explicitly (rclone, the web app), so a listing
            # without that filter holds the pending ones as well (inferred, not documented).
            del filters["phase"]
        page_token = ""
        while True:
            params = {
                "parent_id": folder_id,
                "limit": PAGE_SIZE,
                "page_token": page_token,
                "thumbnail_size": "SIZE_MEDIUM",
                "with_audit": "true",
                "filters": json.dumps(filters, separators=(",", ":")),
            }
            if not folder_id:
                del params["parent_id"]
            page = FilePage.from_wire(self.session.call("GET", "/drive/v1/files", params=params))
            yield from page.files
            page_token = page.next_page_token
            if not page_token or not page.files:
                return

    def list_folder(self, folder_id: str = "") -> list[File]:
        return list(self.iter_folder(folder_id))

    def get_file(self, file_id: str) -> File:
        body = self.session.call(
            "GET",
            f"/drive/v1/files/{file_id}",
            params={"usage": "FETCH", "thumbnail_size": "SIZE_LARGE"},
        )
        return File.from_wire(body)

    def download_link(self, file_id: str, kind: str = ORIGINAL) -> Link:
        """The file's download link of ``kind`` (see :data:`~.types.LINK_KINDS`). PikPak
        holds links back for a while after an upload (half a minute to a minute): we ask
        again for ``link_wait`` seconds at most, then raise :class:`LinkNotReady`, so that a
        client hears "try again later" instead of silence."""

        def ready() -> Link | None:
            item = self.get_file(file_id)
            link = item.link_for(kind)
            if link is not None and link.usable():
                return link
            if item.size == 0 and not item.is_folder:
                raise NotFound("an empty file has no download link")
            return None

        link = LINK_POLL.poll(ready, timeout=self.link_wait)
        if link is None:
            raise LinkNotReady(
                "PikPak has no download link for this file yet (it was uploaded moments "
                f"ago); try again in {LINK_RETRY_AFTER} s",
                retry_after=LINK_RETRY_AFTER,
            )
        return link

    def about(self) -> Quota:
        return Quota.from_wire(self.session.call("GET", "/drive/v1/about"))

    # ------------------------------------------------------------------ writing
    def mkdir(self, parent_id: str, name: str) -> File:
        body = self.session.call(
            "POST",
            "/drive/v1/files",
            json={"kind": "drive#folder", "name": name, "parent_id": parent_id, "folder_type": ""},
        )
        made = NewFile.from_wire(body).file
        if made is None:
            raise Transient(f"PikPak did not say which folder it made for {name}")
        return made

    def rename(self, file_id: str, name: str) -> File:
        body = self.session.call(
            "PATCH", f"/drive/v1/files/{file_id}", json={"name": name}, idempotent=True
        )
        # An empty answer: the item had that name already (a repeated rename, see the
        # error table's ALREADY_DONE), so the file is read as it is.
        return File.from_wire(body) if body else self.get_file(file_id)

    def move(self, ids: list[str], parent_id: str) -> None:
        self._batch("batchMove", ids, {"to": {"parent_id": parent_id}}, idempotent=False)

    def trash(self, ids: list[str]) -> None:
        self._batch("batchTrash", ids, {}, idempotent=True)

    def untrash(self, ids: list[str]) -> None:
        self._batch("batchUntrash", ids, {}, idempotent=True)

    def delete(self, ids: list[str]) -> None:
        """Delete for good (not to the trash)."""
        self._batch("batchDelete", ids, {}, idempotent=True)

    def _batch(self, action: str, ids: list[str], extra: dict, idempotent: bool) -> None:
        if not ids:
            return
        body = self.session.call(
            "POST", f"/drive/v1/files:{action}", json={"ids": ids, **extra}, idempotent=idempotent
        )
        self.wait_task(TaskStarted.from_wire(body).task_id)

    # ------------------------------------------------------------------ tasks
    def get_task(self, task_id: str) -> Task:
        return Task.from_wire(self.session.call("GET", f"/drive/v1/tasks/{task_id}"))

    def delete_tasks(self, task_ids: list[str], *, delete_files: bool = False) -> None:
        if task_ids:
            self.session.call(
                "DELETE",
                "/drive/v1/tasks",
                params={"task_ids": ",".join(task_ids), "delete_files": str(delete_files).lower()},
            )

    def wait_task(self, task_id: str, timeout: float | None = None) -> Task | None:
        """Wait until a batch task is complete. PikPak runs most at once; some take a while."""
        if not task_id:
            return None
        last: Task | None = None

        def finished() -> Task | None:
            nonlocal last
            last = task = self.get_task(task_id)
            if task.failed:
                raise Transient(f"PikPak task {task.name or task_id} failed: {task.message}")
            return task if task.done else None

        done = TASK_POLL.poll(finished, timeout=timeout or self.task_timeout)
        if done is None:
            name, phase = (last.name, last.phase) if last is not None else ("", "unknown")
            raise Transient(f"PikPak task {name or task_id} is still {phase}")
        return done
