"""The download policy: which GETs are redirected to PikPak's CDN and which are proxied."""

from __future__ import annotations

import pytest

from pikdav.assembly import download_policy
from pikdav.config import MountConfig
from pikdav.dav.policy import Decision, Delivery, DownloadPolicy, client_ip, parse_networks

REDIRECT, PROXY = Delivery.REDIRECT, Delivery.PROXY
FINDER = "WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (x86_64)"
EXPLORER = "Microsoft-WebDAV-MiniRedir/10.0.19045"
INFUSE = "Infuse/7.7.6 CFNetwork/1408.0.4 Darwin/22.5.0"
KODI = "Kodi/20.2 (Linux; Android 11)"
LAN = ["192.168.1.0/24", "2001:db8:1::/48"]


def environ(ip: str = "192.168.1.20", ua: str = KODI, xff: str | None = None) -> dict[str, str]:
    env = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": ua, "REQUEST_METHOD": "GET"}
    if xff is not None:
        env["HTTP_X_FORWARDED_FOR"] = xff
    return env


def policy(mode: str = "auto", **kwargs) -> DownloadPolicy:
    kwargs.setdefault("redirect_networks", LAN)
    kwargs.setdefault("public_ip", "203.0.113.7")
    kwargs.setdefault("force_proxy_user_agents", ["Microsoft-WebDAV-MiniRedir", "WebDAVFS"])
    return DownloadPolicy(mode, **kwargs)


@pytest.mark.parametrize(
    ("mode", "ip", "ua", "delivery", "reason"),
    [
        # Mode redirect / proxy apply to everyone but the forced user agents.
        ("redirect", "10.9.9.9", KODI, REDIRECT, "mode=redirect"),
        ("proxy", "192.168.1.20", KODI, PROXY, "mode=proxy"),
        # Explorer and Finder are proxied whatever the mode.
        ("redirect", "10.9.9.9", EXPLORER, PROXY, "ua=Microsoft-WebDAV-MiniRedir"),
        ("redirect", "10.9.9.9", FINDER, PROXY, "ua=WebDAVFS"),
        ("auto", "192.168.1.20", FINDER, PROXY, "ua=WebDAVFS"),
        # Auto: redirect the LAN and the server's own egress address, proxy the rest.
        ("auto", "192.168.1.20", KODI, REDIRECT, "ip 192.168.1.20 in 192.168.1.0/24"),
        ("auto", "2001:db8:1::5", KODI, REDIRECT, "ip 2001:db8:1::5 in 2001:db8:1::/48"),
        ("auto", "203.0.113.7", KODI, REDIRECT, "ip 203.0.113.7 is public_ip"),
        ("auto", "198.51.100.4", KODI, PROXY, "ip 198.51.100.4 not in redirect_networks"),
        ("auto", "192.168.2.1", KODI, PROXY, "ip 192.168.2.1 not in redirect_networks"),
        # A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
        ("auto", "::ffff:192.168.1.20", KODI, REDIRECT, "ip 192.168.1.20 in 192.168.1.0/24"),
        ("auto", "::ffff:203.0.113.7", KODI, REDIRECT, "ip 203.0.113.7 is public_ip"),
        ("auto", "", KODI, PROXY, "ip '' unreadable"),
    ],
)
def test_mode_and_address_rules(mode, ip, ua, delivery, reason):
    assert policy(mode).decide(environ(ip, ua)) == Decision(delivery, reason)


def test_user_agent_rules_come_first_and_force_proxy_wins():
    both = policy(
        "proxy",
        force_proxy_user_agents=["WebDAVFS"],
        force_redirect_user_agents=["Infuse", "Darwin"],
    )
    assert both.decide(environ("198.51.100.4", ua=INFUSE)) == Decision(REDIRECT, "ua=Infuse")
    # Finder's UA also contains "Darwin", but force_proxy is checked first.
    assert both.decide(environ("198.51.100.4", ua=FINDER)) == Decision(PROXY, "ua=WebDAVFS")
    # Substrings match regardless of case.
    assert both.decide(environ(ua="infuse/8")).redirect


def test_no_user_agent_header_falls_through_to_the_mode():
    env = {"REMOTE_ADDR": "192.168.1.20"}
    assert policy("auto").decide(env) == Decision(REDIRECT, "ip 192.168.1.20 in 192.168.1.0/24")


def test_auto_without_networks_or_public_ip_proxies_everyone():
    bare = DownloadPolicy("auto")
    assert bare.decide(environ("127.0.0.1")).delivery is PROXY


PROXIES = parse_networks(["10.0.0.0/8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("remote", "xff", "expected"),
    [
        # No trusted proxy in front: X-Forwarded-For is whatever the client wrote, ignored.
        ("198.51.100.4", "192.168.1.20", "198.51.100.4"),
        # From a trusted proxy: the right-most untrusted address.
        ("127.0.0.1", "198.51.100.4", "198.51.100.4"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.4", "198.51.100.4"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.4, 10.1.2.3", "198.51.100.4"),
        ("127.0.0.1", " 198.51.100.4 ,10.1.2.3 ", "198.51.100.4"),
        # Only proxies all the way: the left-most one is the client.
        ("127.0.0.1", "10.1.2.3, 10.4.5.6", "10.1.2.3"),
        # A trusted proxy that sent no header: the proxy itself.
        ("127.0.0.1", None, "127.0.0.1"),
        # Ports and brackets, and IPv4-mapped peers.
        ("::ffff:127.0.0.1", "198.51.100.4:5123", "198.51.100.4"),
        ("127.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:198.51.100.4", None, "198.51.100.4"),
        # An unreadable untrusted hop is still the client, not the proxy.
        ("127.0.0.1", "unknown", "unknown"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(remote, xff, expected):
    assert client_ip(environ(remote, xff=xff), PROXIES) == expected


def test_spoofed_forwarded_for_does_not_earn_a_redirect():
    behind_proxy = policy(trusted_proxies=["127.0.0.1/32"])
    # The client claims to be on the LAN; the proxy appended its real address.
    spoofed = environ("127.0.0.1", xff="192.168.1.20, 198.51.100.4")
    assert behind_proxy.client_ip(spoofed) == "198.51.100.4"
    assert behind_proxy.decide(spoofed) == Decision(
        PROXY, "ip 198.51.100.4 not in redirect_networks"
    )
    # Without trusting the proxy, nobody's X-Forwarded-For counts.
    assert policy().decide(environ("198.51.100.4", xff="192.168.1.20")).delivery is PROXY


def test_built_from_a_configured_mount():
    mount = MountConfig(
        name="pikpak",
        account="main",
        download="auto",
        redirect_networks=parse_networks(["192.168.1.0/24"]),
        force_redirect_user_agents=("Infuse",),
    )
    built = download_policy(mount, parse_networks(["127.0.0.1/32"]))
    assert built.decide(environ("127.0.0.1", xff="192.168.1.9")).redirect
    assert built.decide(environ("198.51.100.4", ua=INFUSE)) == Decision(REDIRECT, "ua=Infuse")
    assert built.decide(environ("192.168.1.9", ua=EXPLORER)).delivery is PROXY


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="redirect, proxy, auto"):
        DownloadPolicy("redir")
    with pytest.raises(ValueError, match="public_ip"):
        DownloadPolicy("auto", public_ip="not-an-ip")
