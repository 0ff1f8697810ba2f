"""Emulator uploads: instant uploads and link delay, the quota, pending files, CID lookup."""

from __future__ import annotations

import base64

import requests

from pikdav.pikpak import gcid
from tests.support.pikpak_raw import RawSession, control

USER = "alice@example.com"


def _ticket(alice, name: str, data: bytes, parent: str = "") -> requests.Response:
    return alice.post(
        "/drive/v1/files",
        {
            "kind": "drive#file",
            "name": name,
            "parent_id": parent,
            "size": len(data),
            "hash": gcid.gcid_of_bytes(data),
            "upload_type": "UPLOAD_TYPE_RESUMABLE",
            "resumable": {"provider": "PROVIDER_ALIYUN"},
        },
    )


def test_a_fresh_upload_has_no_link_for_a_while(emulator, alice):
    control(emulator.base_url, "config", {"link_delay": 5.0})
    data = b"x" * 100
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "seed.bin", "content": base64.b64encode(data).decode()},
    )
    made = _ticket(alice, "again.bin", data).json()  # instant: content is known
    assert made["file"]["phase"] == "PHASE_TYPE_COMPLETE" and made["resumable"] is None
    first = alice.get(f"/drive/v1/files/{made['file']['id']}").json()
    assert first["links"] == {} and first["web_content_link"] == ""
    with emulator.world.lock:  # the 5 s go by at once
        emulator.world.accounts[USER].nodes[made["file"]["id"]].link_ready_at -= 6
    later = alice.get(f"/drive/v1/files/{made['file']['id']}").json()
    assert later["links"]["application/octet-stream"]["url"]


def test_quota_exhausted_is_code_8(emulator):
    control(emulator.base_url, "accounts", {"username": "tiny", "password": "p", "quota": 10})
    tiny = RawSession(emulator.base_url, "tiny", "p")
    assert tiny.signin().status_code == 200
    resp = _ticket(tiny, "big.bin", b"y" * 11)
    assert resp.status_code == 400
    assert resp.json()["error"] == "file_space_not_enough" and resp.json()["error_code"] == 8


def test_pending_upload_is_hidden_and_cannot_be_renamed(alice):
    made = _ticket(alice, "pending.bin", b"z" * 5000).json()
    assert made["resumable"]["params"]["bucket"] and made["task"]["phase"] == "PHASE_TYPE_PENDING"
    assert alice.list_all("")[0] == []
    resp = alice.patch(f"/drive/v1/files/{made['file']['id']}", {"name": "other.bin"})
    assert resp.status_code == 400 and resp.json()["error"] == "file_rename_uncompleted"


def test_resource_cid_finds_known_content(emulator, alice):
    data = bytes(range(256)) * 400
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "k.bin", "content": base64.b64encode(data).decode()},
    )
    blob = emulator.world.blobs.get(gcid.gcid_of_bytes(data))
    known = alice.get("/drive/v1/resource/cid", cid=blob.cid, file_size=len(data))
    assert known.json()["gcid"] == gcid.gcid_of_bytes(data)
    unknown = alice.get("/drive/v1/resource/cid", cid="0" * 40, file_size=5)
    assert unknown.json()["gcid"] == ""
    zero = alice.get("/drive/v1/resource/cid", cid="0" * 40, file_size=0)
    assert zero.status_code == 400
