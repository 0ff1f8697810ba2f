"""A shared file's link as PikPak gives it since May 2024: an empty ``web_content_link`` and
media links only (the original first, a transcoded copy second)."""

from __future__ import annotations

from pikdav.pikpak.types import SharedFile

ORIGINAL = "https://dl-a10b-0001.mypikpak.com/download/?fid=orig&expire=4102444800"
TRANSCODED = "https://dl-a10b-0002.mypikpak.com/download/?fid=small&expire=4102444800"


def answer(web_content_link: str, *urls: str) -> dict:
    return {
        "share_status": "OK",
        "file_info": {
            "id": "VNfile",
            "name": "film.mp4",
            "size": "1000",
            "kind": "drive#file",
            "web_content_link": web_content_link,
            "medias": [{"media_name": str(i), "link": {"url": url}} for i, url in enumerate(urls)],
        },
    }


def test_a_shared_file_with_media_links_only_has_the_originals_link():
    shared = SharedFile.from_wire(answer("", ORIGINAL, TRANSCODED))
    assert shared.link is not None and shared.link.url == ORIGINAL
    assert shared.link.expires_at == 4102444800
    assert shared.transcoded is not None and shared.transcoded.url == TRANSCODED


def test_a_plain_link_wins_and_one_media_has_no_transcode():
    assert SharedFile.from_wire(answer(ORIGINAL, TRANSCODED)).link.url == ORIGINAL
    only = SharedFile.from_wire(answer("", ORIGINAL))
    assert only.link.url == ORIGINAL and only.transcoded is None
    assert SharedFile.from_wire(answer("")).link is None
