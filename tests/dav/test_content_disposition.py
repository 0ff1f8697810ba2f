"""A browser that opens a proxied file: photos, audio, videos, PDFs and plain text are shown
(``inline``), everything else is saved under its name (``attachment``); HTML and SVG are never
shown, since they would run their scripts on the gateway's own origin."""

from __future__ import annotations

import base64
from urllib.parse import quote

import requests

from tests.support.shares import add_file

FILES = {
    "Photos/beach.jpg": "inline",
    "Music/song.mp3": "inline",
    "Movies/film.mp4": "inline",
    "Docs/manual.pdf": "inline",
    "Docs/notes.txt": "inline",
    "Docs/page.html": "attachment",
    "Photos/drawing.svg": "attachment",
    "Backup/archive.zip": "attachment",
    "Docs/Überblick 2026.pdf": "inline",
}


def test_proxied_files_open_in_the_browser_by_type_and_downloads_stay_downloads(emulator, gateway):
    for path in FILES:
        add_file(emulator, path, content=base64.b64encode(b"some bytes").decode())
    for path, kind in FILES.items():
        name = path.rpartition("/")[2]
        for method in ("GET", "HEAD"):
            answer = requests.request(
                method, f"{gateway.url}/pikpak/{quote(path)}", auth=gateway.auth, timeout=30
            )
            assert answer.status_code == 200, (path, answer.text)
            assert answer.headers["Content-Disposition"] == (
                f"{kind}; filename*=UTF-8''{quote(name, safe='')}"
            ), path
            sniffing = answer.headers.get("X-Content-Type-Options")
            assert sniffing == ("nosniff" if kind == "inline" else None), path
        assert answer.headers["Content-Type"] != "application/octet-stream", path


def test_a_redirected_file_keeps_the_cdns_own_headers(emulator, make_gateway):
    gw = make_gateway(download="redirect")
    add_file(emulator, "Photos/beach.jpg", content=base64.b64encode(b"some bytes").decode())
    answer = requests.get(
        f"{gw.url}/pikpak/Photos/beach.jpg", auth=gw.auth, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 302 and "Content-Disposition" not in answer.headers
