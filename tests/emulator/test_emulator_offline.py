"""Emulator offline tasks: a failed task can be retried."""

from __future__ import annotations

import time

from tests.support.pikpak_raw import control


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
    time.sleep(0.3)
    errored = alice.get(
        "/drive/v1/tasks",
        type="offline",
        filters='{"phase":{"in":"PHASE_TYPE_RUNNING,PHASE_TYPE_ERROR"}}',
    )
    assert [t["phase"] for t in errored.json()["tasks"]] == ["PHASE_TYPE_ERROR"]
    alice.post("/drive/v1/task", {"type": "offline", "create_type": "RETRY", "id": task["id"]})
    time.sleep(0.3)
    assert alice.get(f"/drive/v1/tasks/{task['id']}").json()["phase"] == "PHASE_TYPE_COMPLETE"
