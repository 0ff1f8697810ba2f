"""The ban on password guessing behind a reverse proxy on the same machine (a real HAProxy that
writes X-Forwarded-For, and ``trusted_proxies: [127.0.0.1]``): the ban falls on the client's
address, not on the proxy's; and when it falls on the admin's own address, the admin lifts it
with ``pikdav bans lift`` while the server runs."""

from __future__ import annotations

import base64
import http.client
import re
import subprocess
from urllib.parse import urlsplit

import yaml

from tests.support.cluster import haproxy, instance_config
from tests.support.command import DAV_PASSWORD, DAV_USER, PIKDAV, start

GOOD = (DAV_USER, DAV_PASSWORD)
BAD = (DAV_USER, "wrong")


def ask(url: str, source: str, user: tuple[str, str], path: str = "/pikpak/") -> tuple[int, str]:
    """One request from the loopback address ``source``; the status and the body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0)
    )
    try:
        basic = base64.b64encode(":".join(user).encode()).decode()
        conn.request("GET", path, headers={"Authorization": f"Basic {basic}"})
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


def banned_on_the_page(url: str, source: str) -> list[str]:
    status, page = ask(url, source, GOOD, "/_pikdav/")
    assert status == 200, page
    table = page.partition('id="bans"')[2].partition("</table>")[0]
    return re.findall(r'name="address" value="([^"]+)"', table)


def lift(config, *what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIKDAV, "bans", "lift", "-c", str(config), *what],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bans_behind_a_local_proxy_fall_on_the_client_and_lift_without_a_restart(
    emulator, tmp_path
):
    config = instance_config(
        tmp_path / "gateway", emulator, None, server={"trusted_proxies": ["127.0.0.1"]}
    )
    data = yaml.safe_load(config.read_text())
    data["users"][DAV_USER]["admin"] = True
    config.write_text(yaml.safe_dump(data))
    gateway = start("serve", "-c", str(config), log_path=tmp_path / "gateway.log")
    try:
        with haproxy(tmp_path, [gateway.url], forwardfor=True) as front:
            # A client at 127.0.0.2 guesses five times through the proxy: it is banned.
            assert [ask(front, "127.0.0.2", BAD)[0] for _ in range(5)] == [401] * 5
            status, body = ask(front, "127.0.0.2", GOOD)
            assert status == 429 and "Too many failed logins" in body
            # The proxy's address is not: others come through it, and the admin sees the ban.
            assert ask(front, "127.0.0.3", GOOD)[0] == 200
            assert banned_on_the_page(front, "127.0.0.3") == ["127.0.0.2"]

            # A client on the proxy's machine guesses: the ban falls on 127.0.0.1, where the
            # admin's browser is too. The status page is closed to it.
            assert [ask(front, "127.0.0.1", BAD)[0] for _ in range(5)] == [401] * 5
            assert ask(front, "127.0.0.1", GOOD, "/_pikdav/")[0] == 429
            log = gateway.log()
            assert "pikdav bans lift -c CONFIG 127.0.0.1" in log
            assert "set server.trusted_proxies" not in log  # it is set; the hint says what helps

            # The admin lifts it from the command line; the server keeps running.
            lifted = lift(config, "127.0.0.1")
            assert lifted.returncode == 0, lifted.stderr
            assert "asked pikdav to lift the ban on 127.0.0.1" in lifted.stdout
            assert banned_on_the_page(front, "127.0.0.1") == ["127.0.0.2"]
            assert ask(front, "127.0.0.2", GOOD)[0] == 429  # only the named address

            assert lift(config, "--all").returncode == 0
            assert ask(front, "127.0.0.2", GOOD)[0] == 200
            assert banned_on_the_page(front, "127.0.0.3") == []
            assert "the ban on 127.0.0.1 was lifted by `pikdav bans lift`" in gateway.log()
        assert gateway.proc.poll() is None  # no restart
    finally:
        gateway.stop()


def test_bans_lift_refuses_what_is_no_address(emulator, tmp_path):
    config = instance_config(tmp_path / "gateway", emulator, None)
    wrong = lift(config, "not-an-address")
    assert wrong.returncode == 2 and "'not-an-address' is not an IP address" in wrong.stderr
    nothing = lift(config)
    assert nothing.returncode == 2 and "give the banned addresses, or --all" in nothing.stderr


def admin_config(path, emulator, redis_url):
    config = instance_config(path, emulator, redis_url)
    data = yaml.safe_load(config.read_text())
    data["users"][DAV_USER]["admin"] = True
    config.write_text(yaml.safe_dump(data))
    return config


def test_bans_on_redis_show_on_the_page_and_lift_for_every_instance(emulator, redis_url, tmp_path):
    configs = [admin_config(tmp_path / f"i{n}", emulator, redis_url) for n in range(2)]
    first, second = (
        start("serve", "-c", str(c), log_path=c.parent / "pikdav.log") for c in configs
    )
    try:
        for address in ("127.0.0.2", "127.0.0.4"):
            assert [ask(first.url, address, BAD)[0] for _ in range(5)] == [401] * 5
            assert ask(second.url, address, GOOD)[0] == 429  # banned on every instance
        assert banned_on_the_page(second.url, "127.0.0.3") == ["127.0.0.2", "127.0.0.4"]

        # The page's button on one instance lifts a ban for both.
        page = ask(second.url, "127.0.0.3", GOOD, "/_pikdav/")[1]
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        parts = urlsplit(second.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        basic = base64.b64encode(":".join(GOOD).encode()).decode()
        conn.request(
            "POST",
            "/_pikdav/bans/lift",
            body=f"csrf={csrf}&address=127.0.0.2",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        answer = conn.getresponse()
        assert answer.status == 200 and "the ban on 127.0.0.2 is lifted" in answer.read().decode()
        conn.close()
        assert ask(first.url, "127.0.0.2", GOOD)[0] == 200

        # The command, given one instance's config, lifts it for both too.
        assert lift(configs[1], "127.0.0.4").returncode == 0
        assert ask(second.url, "127.0.0.4", GOOD)[0] == 200
        assert ask(first.url, "127.0.0.4", GOOD)[0] == 200
        assert banned_on_the_page(first.url, "127.0.0.3") == []
    finally:
        first.stop()
        second.stop()
