"""Emulator offline tasks: a failed task can be retried."""

from __future__ import annotations

from tests.support.pikpak_raw import control
from tests.support.waits import wait_until


def test_failed_offline_task_can_be_retried(emulator, alice):
    control(emulator.base_url, "config", {"offline_seconds": 0.2})
    task = alice.post(
        "/drive/v1/files",
        {
            "kind": "drive#file",
            "upload_type": "UPLOAD_TYPE_URL",
            "url": {"url": "https://example.org/fail/x.iso"},
        },
    ).json()["task"]

    def phases() -> list[str]:
        errored = alice.get(
            "/drive/v1/tasks",
            type="offline",
            filters='{"phase":{"in":"PHASE_TYPE_RUNNING,PHASE_TYPE_ERROR"}}',
        )
        return [t["phase"] for t in errored.json()["tasks"]]

    ended = wait_until(lambda: [p for p in phases() if p != "PHASE_TYPE_RUNNING"], "its end", 10)
    assert ended == ["PHASE_TYPE_ERROR"]
    alice.post("/drive/v1/task", {"type": "offline", "create_type": "RETRY", "id": task["id"]})

    def phase() -> str:
        return alice.get(f"/drive/v1/tasks/{task['id']}").json()["phase"]

    again = wait_until(lambda: (p := phase()) in ("PHASE_TYPE_COMPLETE", "PHASE_TYPE_ERROR") and p)
    assert again == "PHASE_TYPE_COMPLETE"
