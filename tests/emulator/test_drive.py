"""The drive API: listing, mutations, links, tasks and shares, over real HTTP."""

from __future__ import annotations

import base64
import json

import requests

from tests.support.netsource import session_from
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

USER = "alice@example.com"


def add(base: str, path: str, size: int = 1000, seed: int = 1, **extra) -> dict:
    return control(
        base, "files", {"username": USER, "path": path, "size": size, "seed": seed, **extra}
    )


def by_name(files: list[dict]) -> dict[str, dict]:
    return {f["name"]: f for f in files}


def test_listing_pages_are_capped_at_500_with_opaque_tokens(emulator, alice):
    folder = add(emulator.base_url, "Big/f0000.bin", size=0)["parent_id"]
    for i in range(1, 1201):
        emulator.world.add_node(
            emulator.world.accounts[USER],
            folder,
            f"f{i:04d}.bin",
            "drive#file",
            blob=emulator.world.blobs.add_bytes(b""),
        )
    files, pages = alice.list_all(folder, limit=1000)
    assert len(files) == 1201 and pages == 3
    assert len({f["id"] for f in files}) == 1201
    first = alice.get("/drive/v1/files", parent_id=folder, limit=500).json()
    token = first["next_page_token"]
    assert token and "500" not in token  # opaque, not a plain offset
    bad = alice.get("/drive/v1/files", parent_id=folder, page_token="garbage")
    assert bad.status_code == 400 and bad.json()["error_code"] == 3


def test_file_objects_carry_pikpak_types(emulator, alice):
    add(emulator.base_url, "Docs/readme.txt", size=1234)
    root, _ = alice.list_all("")
    docs = by_name(root)["Docs"]
    assert docs["kind"] == "drive#folder" and docs["parent_id"] == ""
    files, _ = alice.list_all(docs["id"])
    readme = by_name(files)["readme.txt"]
    assert readme["size"] == "1234" and isinstance(readme["revision"], str)
    assert readme["links"] == {} and readme["web_content_link"] == ""
    assert len(readme["hash"]) == 40 and readme["phase"] == "PHASE_TYPE_COMPLETE"
    assert readme["modified_time"].endswith("+08:00")


def test_filters_select_kind_and_trashed(emulator, alice):
    add(emulator.base_url, "a.txt")
    add(emulator.base_url, "sub/b.txt")
    files, _ = alice.list_all("", {"kind": {"eq": "drive#folder"}, "trashed": {"eq": False}})
    assert [f["name"] for f in files] == ["sub"]
    a = by_name(alice.list_all("")[0])["a.txt"]
    assert alice.post("/drive/v1/files:batchTrash", {"ids": [a["id"]]}).status_code == 200
    assert "a.txt" not in by_name(alice.list_all("")[0])
    trashed, _ = alice.list_all("", {"trashed": {"eq": True}})
    assert [f["name"] for f in trashed] == ["a.txt"]
    unfiltered = alice.get("/drive/v1/files", filters="{}").json()["files"]
    assert {f["name"] for f in unfiltered} == {"a.txt", "sub"}
    assert alice.get("/drive/v1/files", filters="{not json").status_code == 400


def test_mkdir_rename_and_its_errors(alice):
    made = alice.post("/drive/v1/files", {"kind": "drive#folder", "name": "Films", "parent_id": ""})
    assert made.status_code == 200
    folder = made.json()["file"]
    alice.post("/drive/v1/files", {"kind": "drive#folder", "name": "Music", "parent_id": ""})
    same = alice.patch(f"/drive/v1/files/{folder['id']}", {"name": "Films"})
    assert same.status_code == 400 and same.json()["error"] == "file_rename_to_same_name"
    dup = alice.patch(f"/drive/v1/files/{folder['id']}", {"name": "Music"})
    assert dup.status_code == 400 and dup.json()["error"] == "file_duplicated_name"
    renamed = alice.patch(f"/drive/v1/files/{folder['id']}", {"name": "Movies"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Movies"
    again = alice.post(
        "/drive/v1/files", {"kind": "drive#folder", "name": "Music", "parent_id": ""}
    )
    assert again.json()["file"]["name"] == "Music(1)"
    empty = alice.post("/drive/v1/files", {"kind": "drive#folder", "name": "", "parent_id": ""})
    assert empty.status_code == 400


def test_move_copy_clash_names_and_tasks(emulator, alice):
    add(emulator.base_url, "src/film.mkv", size=10)
    add(emulator.base_url, "dst/film.mkv", size=20)
    root = by_name(alice.list_all("")[0])
    src = by_name(alice.list_all(root["src"]["id"])[0])["film.mkv"]
    moved = alice.post(
        "/drive/v1/files:batchMove", {"ids": [src["id"]], "to": {"parent_id": root["dst"]["id"]}}
    )
    task = alice.get(f"/drive/v1/tasks/{moved.json()['task_id']}").json()
    assert task["phase"] == "PHASE_TYPE_COMPLETE"
    names = sorted(f["name"] for f in alice.list_all(root["dst"]["id"])[0])
    assert names == ["film(1).mkv", "film.mkv"]
    same = alice.post(
        "/drive/v1/files:batchCopy", {"ids": [src["id"]], "to": {"parent_id": root["dst"]["id"]}}
    )
    assert same.status_code == 400 and same.json()["error"] == "file_move_or_copy_to_cur"
    copied = alice.post(
        "/drive/v1/files:batchCopy",
        {"ids": [root["dst"]["id"]], "to": {"parent_id": root["src"]["id"]}},
    )
    assert copied.status_code == 200
    inner = by_name(alice.list_all(root["src"]["id"])[0])["dst"]
    assert len(alice.list_all(inner["id"])[0]) == 2
    into_self = alice.post(
        "/drive/v1/files:batchMove", {"ids": [root["src"]["id"]], "to": {"parent_id": inner["id"]}}
    )
    assert into_self.status_code == 400


def test_trash_untrash_delete_and_empty(emulator, alice):
    add(emulator.base_url, "x.txt", size=100)
    x = by_name(alice.list_all("")[0])["x.txt"]
    alice.post("/drive/v1/files:batchTrash", {"ids": [x["id"]]})
    add(emulator.base_url, "x.txt", size=50, seed=2)
    alice.post("/drive/v1/files:batchUntrash", {"ids": [x["id"]]})
    assert sorted(by_name(alice.list_all("")[0])) == ["x(1).txt", "x.txt"]
    about = alice.get("/drive/v1/about").json()["quota"]
    assert about["usage"] == "150" and about["usage_in_trash"] == "0"
    alice.post("/drive/v1/files:batchTrash", {"ids": [x["id"]]})
    assert alice.get("/drive/v1/about").json()["quota"]["usage_in_trash"] == "100"
    emptied = alice.patch("/drive/v1/files/trash:empty")
    assert emptied.status_code == 200 and emptied.json()["task_id"]
    assert alice.get("/drive/v1/about").json()["quota"]["usage"] == "50"
    other = by_name(alice.list_all("")[0])["x.txt"]
    alice.post("/drive/v1/files:batchDelete", {"ids": [other["id"]]})
    assert alice.list_all("")[0] == []


def _link(alice, file_id: str) -> dict:
    alice.captcha(f"GET:/drive/v1/files/{file_id}")
    resp = alice.get(f"/drive/v1/files/{file_id}")
    assert resp.status_code == 200
    return resp.json()


def test_download_links_honour_range_and_ip(emulator, alice):
    data = bytes(range(256)) * 40
    made = control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "v/clip.mp4", "content": base64.b64encode(data).decode()},
    )
    info = _link(alice, made["id"])
    url = info["links"]["application/octet-stream"]["url"]
    assert info["web_content_link"] == url and "expire=" in url
    assert requests.get(url).content == data
    part = requests.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    suffix = requests.get(url, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == data[-10:]
    beyond = requests.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert requests.get(url, headers={"Range": "bytes=zz"}).status_code == 200
    assert session_from("127.0.0.2").get(url).status_code == 403
    stats = control(emulator.base_url, "stats", method="GET")["total"]
    assert stats["download_forbidden"] == 1 and stats["link_issued"] >= 1
    origin = [m for m in info["medias"] if m["is_origin"]]
    assert origin and "fid=" in origin[0]["link"]["url"]


def test_transcoded_media_differs_from_the_original(emulator, alice):
    made = add(emulator.base_url, "v/film.mp4", size=1 << 20, transcode=True)
    info = _link(alice, made["id"])
    fid = info["links"]["application/octet-stream"]["url"].split("fid=")[1].split("&")[0]
    assert len(info["medias"]) == 2 and info["medias"][0]["is_origin"] is False
    transcode = requests.get(info["medias"][0]["link"]["url"])
    assert len(transcode.content) == (1 << 20) // 4
    assert fid not in info["medias"][0]["link"]["url"]
    assert fid in info["medias"][1]["link"]["url"]


def test_links_expire(emulator, alice):
    made = add(emulator.base_url, "old.bin", size=10)
    control(emulator.base_url, "config", {"link_ttl": 1})
    url = _link(alice, made["id"])["links"]["application/octet-stream"]["url"]
    assert requests.get(url).status_code == 200
    wait_until(lambda: requests.get(url).status_code == 403, "the link expires", 10)


def test_offline_task_becomes_a_file_in_my_pack(emulator, alice):
    control(emulator.base_url, "config", {"offline_seconds": 0.5})
    resp = alice.post(
        "/drive/v1/files",
        {
            "kind": "drive#file",
            "upload_type": "UPLOAD_TYPE_URL",
            "url": {"url": "magnet:?xt=urn:btih:abc&dn=Big.Buck.Bunny.mkv"},
            "folder_type": "DOWNLOAD",
        },
    )
    assert resp.status_code == 200
    task = resp.json()["task"]
    assert task["phase"] == "PHASE_TYPE_PENDING" and task["file_size"].isdigit()
    listed = wait_until(
        lambda: [
            t
            for t in alice.get("/drive/v1/tasks", type="offline").json()["tasks"]
            if t["phase"] not in ("PHASE_TYPE_PENDING", "PHASE_TYPE_RUNNING")
        ],
        "the task ends",
        10,
    )
    assert listed[0]["phase"] == "PHASE_TYPE_COMPLETE" and listed[0]["progress"] == 100
    pack = by_name(alice.list_all("")[0])["My Pack"]
    assert pack["folder_type"] == "DOWNLOAD"
    assert [f["name"] for f in alice.list_all(pack["id"])[0]] == ["Big.Buck.Bunny.mkv"]
    bad = alice.post(
        "/drive/v1/files",
        {"kind": "drive#file", "upload_type": "UPLOAD_TYPE_URL", "url": {"url": "gopher://x"}},
    )
    assert bad.status_code == 400
    deleted = alice.http.delete(
        f"{alice.base}/drive/v1/tasks",
        params={"task_ids": task["id"], "delete_files": "true"},
        headers=alice.headers(),
    )
    assert deleted.status_code == 200
    assert alice.list_all(pack["id"])[0] == []


def test_offline_daily_limit_is_code_11(emulator, alice):
    control(emulator.base_url, "config", {"task_daily_limit": 1})
    body = {
        "kind": "drive#file",
        "upload_type": "UPLOAD_TYPE_URL",
        "url": {"url": "https://example.org/a.iso"},
    }
    assert alice.post("/drive/v1/files", body).status_code == 200
    second = alice.post("/drive/v1/files", body)
    assert second.status_code == 400 and second.json()["error_code"] == 11


def test_shares_with_pass_code(emulator, alice):
    made = add(emulator.base_url, "shared/one.mp4", size=2048)
    folder = made["parent_id"]
    share = alice.post(
        "/drive/v1/share",
        {
            "file_ids": [folder],
            "share_to": "encryptedlink",
            "expiration_days": -1,
            "pass_code_option": "REQUIRED",
        },
    ).json()
    assert share["share_url"].startswith("https://mypikpak.com/s/") and share["pass_code"]
    visitor = requests.Session()
    alice.captcha("GET:/drive/v1/share:batch_file_info")
    hdrs = {"X-Captcha-Token": alice.captcha_token}
    base = emulator.base_url
    empty = visitor.get(
        f"{base}/drive/v1/share", params={"share_id": share["share_id"]}, headers=hdrs
    ).json()
    assert empty["share_status"] == "PASS_CODE_EMPTY"
    wrong = visitor.get(
        f"{base}/drive/v1/share",
        params={"share_id": share["share_id"], "pass_code": "nope"},
        headers=hdrs,
    )
    assert wrong.json()["share_status"] == "PASS_CODE_ERROR"
    ok = visitor.get(
        f"{base}/drive/v1/share",
        params={"share_id": share["share_id"], "pass_code": share["pass_code"]},
        headers=hdrs,
    ).json()
    assert ok["share_status"] == "OK" and ok["pass_code_token"]
    detail = visitor.get(
        f"{base}/drive/v1/share/detail",
        params={
            "share_id": share["share_id"],
            "parent_id": folder,
            "pass_code_token": ok["pass_code_token"],
        },
        headers=hdrs,
    ).json()
    assert [f["name"] for f in detail["files"]] == ["one.mp4"]
    info = visitor.get(
        f"{base}/drive/v1/share/file_info",
        params={
            "share_id": share["share_id"],
            "file_id": made["id"],
            "pass_code_token": ok["pass_code_token"],
        },
        headers=hdrs,
    ).json()["file_info"]
    # Since May 2024 a shared file has media links only (issue 14).
    assert info["web_content_link"] == ""
    assert len(requests.get(info["medias"][0]["link"]["url"]).content) == 2048
    missing = visitor.get(f"{base}/drive/v1/share", params={"share_id": "nope"}, headers=hdrs)
    assert missing.json()["share_status"] == "NOT_FOUND"
    no_captcha = visitor.get(f"{base}/drive/v1/share", params={"share_id": share["share_id"]})
    assert no_captcha.json()["error_code"] == 9


def test_bad_input_gets_pikpak_shaped_400s(emulator, alice):
    raw = alice.http.post(
        f"{alice.base}/drive/v1/files", data=b"\xff\xfe{", headers=alice.headers()
    )
    assert raw.status_code == 400 and set(raw.json()) >= {"error", "error_code"}
    for body in ({"ids": "x"}, {"ids": []}, {}):
        resp = alice.post("/drive/v1/files:batchTrash", body)
        assert resp.status_code == 400, body
    ticket = alice.post("/drive/v1/files", {"kind": "drive#file", "name": "a", "size": "many"})
    assert ticket.status_code == 400
    nowhere = alice.post(
        "/drive/v1/files", {"kind": "drive#folder", "name": "x", "parent_id": "VDOESNOTEXIST"}
    )
    assert nowhere.status_code == 404
    unknown = alice.get("/drive/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == 5
    bad_rule = requests.post(
        f"{emulator.base_url}/__emulator__/faults", json={"path": "(", "status": 500}
    )
    assert bad_rule.status_code == 400


def test_faults_status_delay_and_drop(emulator, alice):
    made = add(emulator.base_url, "f.bin", size=1 << 20)
    control(
        emulator.base_url,
        "faults",
        {
            "rules": [
                {"path": "^/drive/v1/about$", "status": 503, "times": 2},
                {"path": "^/download/", "drop_after": 1000, "times": 1},
            ]
        },
    )
    assert alice.get("/drive/v1/about").status_code == 503
    assert alice.get("/drive/v1/about").status_code == 503
    assert alice.get("/drive/v1/about").status_code == 200
    url = _link(alice, made["id"])["links"]["application/octet-stream"]["url"]
    try:
        got = len(requests.get(url).content)
    except requests.exceptions.ChunkedEncodingError:
        got = -1
    assert got != 1 << 20
    assert len(requests.get(url).content) == 1 << 20
    listed = control(emulator.base_url, "faults", method="GET")["rules"]
    assert [r["fired"] for r in listed] == [2, 1]
    control(emulator.base_url, "faults", method="DELETE")
    assert control(emulator.base_url, "faults", method="GET")["rules"] == []


def test_stats_are_kept_per_account(emulator, alice):
    alice.list_all("")
    stats = control(emulator.base_url, "stats", method="GET")
    assert stats["total"]["signin"] == 1 and stats["accounts"][USER]["list"] == 1
    assert json.dumps(stats)
