"""What the clients we cannot run here send: their User-Agents and request bodies, as public
traces and documentation record them (the replayed tests name their sources), and the
request runs they repeat (Finder's copy of a file, Explorer's)."""

from __future__ import annotations

from collections.abc import Iterable

from .replay import Answer, Step, every_propstat_ok

# User-Agents as the clients send them.
FINDER = "WebDAVFS/3.0.0 (03008000) Darwin/24.4.0 (arm64)"  # macOS 15.4
FINDER_OLD = "WebDAVFS/3.0.0 (03008000) Darwin/23.6.0 (x86_64)"  # macOS 14.6
EXPLORER = "Microsoft-WebDAV-MiniRedir/10.0.19045"
INFUSE = "Infuse-Direct/8.0.8"  # bpking1/embyExternalUrl#472
FILES_APP = "FE%20File%20Explorer/5.4.2 CFNetwork/1494.0.7 Darwin/23.4.0"
RCLONE = "rclone/v1.76.0"

# webdavfs' PROPFIND of a node (stat) and of the volume (statfs).
STAT_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<D:propfind xmlns:D="DAV:"><D:prop>'
    "<D:getlastmodified/><D:getcontentlength/><D:creationdate/><D:resourcetype/>"
    "</D:prop></D:propfind>"
)
QUOTA_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<D:propfind xmlns:D="DAV:"><D:prop>'
    "<D:quota-available-bytes/><D:quota-used-bytes/><D:quota/><D:quotaused/>"
    "</D:prop></D:propfind>"
)
LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner><D:href>{owner}</D:href></D:owner>"
    "</D:lockinfo>"
)
# Explorer's PROPPATCH after a copy (WsgiDAV's emulate_win32_lastmod exists for it).
WIN32_PROPPATCH = (
    '<?xml version="1.0" encoding="utf-8" ?>'
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
    "<Z:Win32CreationTime>Sat, 05 Dec 2026 10:00:00 GMT</Z:Win32CreationTime>"
    "<Z:Win32LastAccessTime>Sun, 06 Dec 2026 10:00:00 GMT</Z:Win32LastAccessTime>"
    "<Z:Win32LastModifiedTime>Sat, 05 Dec 2026 11:00:00 GMT</Z:Win32LastModifiedTime>"
    "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
    "</D:prop></D:set></D:propertyupdate>"
)


def lock_token(answer: Answer) -> str:
    token = answer.header("Lock-Token").strip()
    assert token.startswith("<") and token.endswith(">"), f"Lock-Token: {token!r}"
    return token


def chunks(data: bytes, size: int = 16384):
    """A body sent chunked, as Finder and phone apps send it."""

    def body() -> Iterable[bytes]:
        return (data[i : i + size] for i in range(0, len(data), size))

    return body


def finder_copy_in(path: str, data: bytes) -> list[Step]:
    """Finder's copy of one file: LOCK the new name, PUT the bytes chunked with their length
    in X-Expected-Entity-Length, UNLOCK, then the AppleDouble ``._name``."""
    folder, _, name = path.rpartition("/")
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + bytes(4058)
    lock = LOCK_BODY.replace("{owner}", "http://www.apple.com/webdav_fs/")
    return [
        Step("PROPFIND", path, 404, {"Depth": "0"}),
        Step(
            "LOCK",
            path,
            (200, 201),
            {"Depth": "0", "Timeout": "Second-600"},
            lock,
            keep={"token": lock_token},
        ),
        Step(
            "PUT",
            path,
            (201, 204),
            {"If": "({token})", "X-Expected-Entity-Length": str(len(data))},
            chunks(data),
        ),
        Step("UNLOCK", path, 204, {"Lock-Token": "{token}"}),
        Step(
            "PUT",
            f"{folder}/._{name}",
            (201, 204),
            {"X-Expected-Entity-Length": str(len(apple_double))},
            chunks(apple_double),
        ),
    ]


def explorer_copy_in(path: str, data: bytes, *, lock_first: bool = False) -> list[Step]:
    """Explorer's copy of one file: a 0-byte PUT, LOCK, the real PUT, PROPPATCH of the Win32
    times and attributes (every property must answer 200), UNLOCK. ``lock_first``: the LOCK
    of the new name comes first (creating it), then the 0-byte PUT under the lock."""
    lock = LOCK_BODY.replace("{owner}", "EXPLORER-USER")
    empty_put = Step("PUT", path, (201, 204), {"Content-Type": "application/octet-stream"}, b"")
    lock_step = Step(
        "LOCK", path, (200, 201), {"Timeout": "Second-3600"}, lock, keep={"token": lock_token}
    )
    if lock_first:
        empty_put = Step("PUT", path, (201, 204), {"If": "({token})"}, b"")
    return [
        *((lock_step, empty_put) if lock_first else (empty_put, lock_step)),
        Step("PUT", path, (201, 204), {"If": "({token})"}, data),
        Step(
            "PROPPATCH",
            path,
            207,
            {"If": "({token})", "Content-Type": "text/xml"},
            WIN32_PROPPATCH,
            checks=(every_propstat_ok,),
        ),
        Step("UNLOCK", path, 204, {"Lock-Token": "{token}"}),
    ]
