"""Emulator shares: restoring a share copies it into the visitor's drive."""

from __future__ import annotations

from tests.support.pikpak_raw import RawSession, control

USER = "alice@example.com"


def test_share_restore_copies_into_the_visitors_drive(emulator, alice):
    made = control(
        emulator.base_url, "files", {"username": USER, "path": "pub/a.txt", "size": 10, "seed": 3}
    )
    share = alice.post(
        "/drive/v1/share",
        {
            "file_ids": [made["parent_id"]],
            "share_to": "publiclink",
            "expiration_days": -1,
            "pass_code_option": "NOT_REQUIRED",
        },
    ).json()
    control(emulator.base_url, "accounts", {"username": "bob", "password": "pw"})
    bob = RawSession(emulator.base_url, "bob", "pw")
    bob.signin()
    info = bob.get("/drive/v1/share", share_id=share["share_id"]).json()
    restored = bob.post(
        "/drive/v1/share/restore",
        {
            "share_id": share["share_id"],
            "pass_code_token": info["pass_code_token"],
            "file_ids": [made["parent_id"]],
        },
    )
    assert restored.status_code == 200
    folders, _ = bob.list_all("")
    assert [f["name"] for f in folders] == ["pub"]
    assert [f["name"] for f in bob.list_all(folders[0]["id"])[0]] == ["a.txt"]
