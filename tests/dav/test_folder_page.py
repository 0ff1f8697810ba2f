"""The folder page's lines on opening the folder in a client: rclone with the vendor the
README asks for, and Windows with the BasicAuthLevel it needs over plain HTTP."""

from __future__ import annotations

import html

import requests


def test_the_folder_page_gives_rclones_vendor_and_windows_basicauthlevel(gateway):
    page = requests.get(gateway.url + "/pikpak/", auth=gateway.auth, timeout=30)
    assert page.status_code == 200
    text = html.unescape(page.text)
    rclone = next(line for line in text.splitlines() if line.startswith("rclone "))
    assert f"--webdav-url {gateway.url}/pikpak/ --webdav-vendor other" in rclone
    windows = text.partition("\nWindows ")[2].partition("\nLinux desktop")[0]
    assert "/v BasicAuthLevel /t REG_DWORD /d 2 /f" in windows
    assert "net stop webclient && net start webclient" in windows
