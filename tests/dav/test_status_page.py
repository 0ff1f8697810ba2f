"""The status page at /_pikdav/ in a real browser: headless Chromium driven by Selenium.

One browser session walks the issue's story: an admin sees an account whose token PikPak
expired and whose refresh it refuses, shown broken with the reason; starts a sign-in, opens
the human check's page, pastes the solved captcha token and sees the account recover; adds an
offline download by the form and sees it finish; lifts a ban; a non-admin gets 403.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.gateway import _HASH, DAV_PASSWORD, PIKPAK_USER
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

ADMIN, VIEWER = ("alice", DAV_PASSWORD), ("bob", DAV_PASSWORD)
USERS = {"alice": {"password_hash": _HASH, "admin": True}, "bob": {"password_hash": _HASH}}
MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=big-buck-bunny.mkv"


@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver (Debian) are needed: see .ci/run"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,2000")
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_page_load_timeout(30)
    chrome.execute_cdp_cmd("Network.enable", {})
    yield chrome
    chrome.quit()


def log_in_as(browser, user: tuple[str, str]) -> None:
    """Every request of the browser carries this user's Basic credentials."""
    basic = base64.b64encode(":".join(user).encode()).decode()
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}}
    )


def text_of(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def submit(browser, form_css: str) -> None:
    """Press the form's button and wait for the page that answers it. The page reloads itself
    every few seconds: a reload between finding the button and pressing it is tried again."""
    for attempt in range(3):
        old = browser.find_element(By.TAG_NAME, "html")
        try:
            browser.find_element(By.CSS_SELECTOR, f"{form_css} button[type=submit]").click()
        except WebDriverException:  # stale element, or a node no longer in the document
            if attempt == 2:
                raise
            continue
        WebDriverWait(browser, 20).until(lambda _, old=old: gone(old))
        return


def gone(element) -> bool:
    """Whether ``element`` left the document (a new page came). Chrome says so with a stale
    element error, or, while the new page loads, with an unknown error that the node "does not
    belong to the document" (selenium's ``staleness_of`` lets that one through)."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def fail_logins_from(url: str, address: str, count: int) -> None:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    for _ in range(count):
        conn = http.client.HTTPConnection(host, port, timeout=10, source_address=(address, 0))
        bad = base64.b64encode(b"alice:wrong").decode()
        conn.request("PROPFIND", "/pikpak/", headers={"Authorization": f"Basic {bad}"})
        conn.getresponse().read()
        conn.close()


def status_from(url: str, address: str) -> int:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    conn = http.client.HTTPConnection(host, port, timeout=10, source_address=(address, 0))
    good = base64.b64encode(":".join(ADMIN).encode()).decode()
    conn.request("PROPFIND", "/pikpak/", headers={"Authorization": f"Basic {good}", "Depth": "0"})
    status = conn.getresponse().status
    conn.close()
    return status


def secrets_of(state_dir: Path) -> list[str]:
    stored = json.loads((state_dir / "tokens" / "main.json").read_text())
    token = stored.get("token") or {}
    found = [token.get("access_token", ""), token.get("refresh_token", "")]
    return [s for s in found if s]


def test_the_admin_sees_a_broken_login_recovers_it_adds_a_task_and_lifts_a_ban(
    emulator, make_gateway, browser, tmp_path
):
    control(emulator.base_url, "config", {"offline_seconds": 0.5})
    gw = make_gateway(
        download="proxy",
        offline_folder="Offline",
        users=USERS,
        server={"login_failures": {"max": 3, "window": 300, "ban": 600}},
    )
    page = gw.url + "/_pikdav/"
    log_in_as(browser, ADMIN)
    browser.get(page)
    assert text_of(browser, "#account-main .state") == "signed in"

    # PikPak expires the token and refuses the refresh; signing in again needs a human check.
    control(emulator.base_url, "expire-tokens", {"username": PIKPAK_USER})
    control(
        emulator.base_url,
        "faults",
        {
            "path": "^/v1/auth/token$",
            "status": 400,
            "error": {
                "error": "invalid_grant",
                "error_code": 4126,
                "error_description": "invalid refresh token",
            },
        },
    )
    control(
        emulator.base_url,
        "faults",
        {"path": "^/v1/shield/captcha/init$", "captcha": {}, "account": PIKPAK_USER, "times": 2},
    )
    dav = requests.request(
        "PROPFIND", gw.url + "/pikpak/", auth=ADMIN, headers={"Depth": "1"}, timeout=30
    )
    assert dav.status_code == 503
    browser.get(page)
    state = text_of(browser, "#account-main .state")
    assert state.startswith("broken: ") and "human check" in state, state
    assert "sign-ins paused until" in state
    assert text_of(browser, "#account-main .valid-until") == "refused by PikPak"
    assert "puzzle" in text_of(browser, "#account-main .remedy")
    browser.save_screenshot(str(tmp_path / "status-page-broken.png"))

    # Sign in now: the answer shows the human check's page; solve it, paste the token.
    submit(browser, "#account-main form[action$='sign-in']")
    assert "human check" in text_of(browser, "#notice")
    check_page = browser.find_element(By.ID, "human-check").get_attribute("href")
    browser.get(check_page)
    assert "Verified" in browser.page_source
    solved = parse_qs(urlsplit(check_page).query)["captcha_token"][0]
    browser.get(page)
    assert "human-check" not in browser.page_source  # shown to the one who asked, once
    field = browser.find_element(By.CSS_SELECTOR, "#account-main input[name=captcha_token]")
    field.send_keys(solved)
    submit(browser, "#account-main form[action$='captcha']")
    assert "signed in with the solved captcha" in text_of(browser, "#notice")
    assert text_of(browser, "#account-main .state") == "signed in"
    assert "(in 1" in text_of(browser, "#account-main .valid-until")  # a new token, ~2 h
    assert (
        requests.request(
            "PROPFIND", gw.url + "/pikpak/", auth=ADMIN, headers={"Depth": "1"}, timeout=30
        ).status_code
        == 207
    )

    # An offline download by the form, into the mount's offline folder.
    browser.find_element(By.CSS_SELECTOR, "#offline-add textarea[name=url]").send_keys(MAGNET)
    submit(browser, "#offline-add")
    assert "offline download started: big-buck-bunny.mkv" in text_of(browser, "#notice")

    def task_row() -> str:
        browser.get(page)
        return text_of(browser, ".offline-tasks tr.task")

    row = wait_until(lambda: "complete" in (shown := task_row()) and shown, "complete", 20, 0.3)
    assert "big-buck-bunny.mkv" in row and "complete" in row and "100 %" in row, row
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Offline/", auth=ADMIN, headers={"Depth": "1"}, timeout=30
    )
    assert listing.status_code == 207 and "big-buck-bunny.mkv" in listing.text

    # A client that guessed passwords is banned; the admin lifts the ban.
    fail_logins_from(gw.url, "127.0.0.2", 3)
    assert status_from(gw.url, "127.0.0.2") == 429
    browser.get(page)
    assert text_of(browser, "#bans .address") == "127.0.0.2"
    browser.save_screenshot(str(tmp_path / "status-page.png"))
    submit(browser, "#bans form")
    assert "the ban on 127.0.0.2 is lifted" in text_of(browser, "#notice")
    assert text_of(browser, "#bans") == "None."
    assert status_from(gw.url, "127.0.0.2") == 207

    # No secret anywhere on the page.
    source = browser.page_source
    assert all(secret not in source for secret in secrets_of(gw.config.state_dir))
    assert "correct horse" not in source and "wonderland" not in source

    # A user who is no admin gets 403.
    log_in_as(browser, VIEWER)
    browser.get(page)
    assert "for admins" in browser.find_element(By.TAG_NAME, "body").text
    assert requests.get(page, auth=VIEWER, timeout=10).status_code == 403
    for shot in ("status-page-broken.png", "status-page.png"):
        assert (tmp_path / shot).stat().st_size > 10_000


def test_a_post_without_the_page_s_csrf_token_changes_nothing(emulator, make_gateway):
    gw = make_gateway(users=USERS, server={"login_failures": {"max": 1, "window": 300, "ban": 600}})
    fail_logins_from(gw.url, "127.0.0.2", 1)
    for form in ({"address": "127.0.0.2"}, {"address": "127.0.0.2", "csrf": "0" * 64}):
        resp = requests.post(gw.url + "/_pikdav/bans/lift", data=form, auth=ADMIN, timeout=10)
        assert resp.status_code == 403 and "reload the page" in resp.text
    assert status_from(gw.url, "127.0.0.2") == 429
    # A button is a POST: a GET of its address does nothing either.
    assert requests.get(gw.url + "/_pikdav/bans/lift", auth=ADMIN, timeout=10).status_code == 405


def status_table(gw, table: str) -> str:
    """The status page's part ``table`` (its id: transfers, uploads…), as the admin sees it."""
    page = requests.get(gw.url + "/_pikdav/", auth=ADMIN, timeout=30)
    assert page.status_code == 200
    start = page.text.index(f'id="{table}"')
    return page.text[start : page.text.index("<h2>", start)]


def test_a_proxied_stream_and_a_put_in_progress_are_shown_while_they_run(emulator, make_gateway):
    control(
        emulator.base_url,
        "files",
        {"username": PIKPAK_USER, "path": "Movies/long film.mkv", "size": 2 << 30},
    )
    gw = make_gateway(download="proxy", users=USERS)
    with requests.get(
        gw.url + "/pikpak/Movies/long%20film.mkv", auth=ADMIN, stream=True, timeout=30
    ) as stream:
        assert stream.status_code == 200
        stream.raw.read(1 << 20)
        table = wait_until(
            lambda: "long film.mkv" in (shown := status_table(gw, "transfers")) and shown,
            "the stream is shown",
        )
        assert "<td>stream</td><td>127.0.0.1</td><td>/pikpak/Movies/long film.mkv</td>" in table
        assert "of 2.0 GiB" in table
    wait_until(
        lambda: "None now." in status_table(gw, "transfers"), "the stream is gone when it ends"
    )

    host, port = urlsplit(gw.url).hostname, urlsplit(gw.url).port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("PUT", "/pikpak/upload.bin")
    basic = base64.b64encode(":".join(ADMIN).encode()).decode()
    conn.putheader("Authorization", f"Basic {basic}")
    conn.putheader("Content-Length", str(8 << 20))
    conn.endheaders()
    conn.send(b"x" * (3 << 20))
    table = wait_until(
        lambda: "upload.bin" in (shown := status_table(gw, "transfers")) and shown,
        "the PUT is shown",
    )
    assert "<td>put</td><td>127.0.0.1</td><td>/pikpak/upload.bin</td>" in table
    assert "of 8.0 MiB" in table and "<td>receiving</td>" in table
    conn.send(b"x" * (5 << 20))
    assert conn.getresponse().status == 201
    conn.close()
    assert "None now." in status_table(gw, "transfers")


def test_a_background_upload_going_up_shows_what_the_store_has_taken(emulator, make_gateway):
    # PikPak's store takes each request in at 4 MiB/s: a 72 MiB file goes up in 9 parts of
    # 8 MiB, 4 at a time, for several seconds.
    control(emulator.base_url, "config", {"store_rate": 4 << 20})
    gw = make_gateway(download="proxy", users=USERS, background_uploads=True)
    data = os.urandom(72 << 20)
    put = requests.put(gw.url + "/pikpak/big.bin", data=data, auth=ADMIN, timeout=60)
    assert put.status_code == 201

    def sent_percent() -> int | None:
        found = re.search(r"uploading, [0-9.]+ MiB sent \((\d+) %\)", status_table(gw, "uploads"))
        return int(found.group(1)) if found else None

    # Shown part by part while it goes up: something taken, not everything yet.
    wait_until(lambda: (sent_percent() or 0) > 0, "bytes sent are shown")
    part_way = sent_percent()
    assert part_way is not None and 0 < part_way < 100, part_way
    samples = {
        (s.name, tuple(s.labels.items())): s.value
        for family in text_string_to_metric_families(
            requests.get(gw.url + "/metrics", auth=ADMIN, timeout=30).text
        )
        for s in family.samples
    }
    sent = samples[("pikdav_background_upload_sent_bytes", (("mount", "pikpak"),))]
    assert 0 < sent < len(data)
    wait_until(
        lambda: "Nothing waits." in status_table(gw, "uploads"), "the upload ends", seconds=120
    )
    tree = control(emulator.base_url, f"tree?username={PIKPAK_USER}", method="GET")["files"]
    [row] = [r for r in tree if r["path"] == "big.bin"]
    assert row["size"] == len(data) and row["phase"] == "PHASE_TYPE_COMPLETE"
