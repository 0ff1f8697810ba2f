"""The download policy: answer a GET with a redirect to PikPak's CDN, or stream the bytes through.

PikPak's download links work only from the IP address that asked for them. A redirect therefore
helps only a client that shares the server's egress address (the same LAN behind one router, or the
server's own host); everyone else must be proxied. Some client families are known to mishandle a
cross-host redirect (Windows' mini-redirector, Finder) and are proxied whatever the mode says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .clients import FORCE_PROXY

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MODES = ("redirect", "proxy", "auto")
# The clients proxied whatever the mode says, and why: see pikdav.dav.clients.
DEFAULT_FORCE_PROXY_USER_AGENTS = FORCE_PROXY


class Delivery(Enum):
    """How the bytes of a file reach the client."""

    REDIRECT = "redirect"  # 302 Found to the CDN link
    PROXY = "proxy"  # the server streams the bytes


@dataclass(frozen=True)
class Decision:
    """What to do with one GET, and why (for the request log)."""

    delivery: Delivery
    reason: str

    @property
    def redirect(self) -> bool:
        return self.delivery is Delivery.REDIRECT


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text` ("1.2.3.4", "1.2.3.4:80", "[::1]:80", "::ffff:1.2.3.4"), or None.

    An IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4 peer) becomes the
    IPv4 address, so that it matches IPv4 networks.
    """
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def parse_networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR strings or network objects (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(v) for v in values)


def client_ip(environ: Mapping[str, Any], trusted_proxies: Iterable[IPNetwork] = ()) -> str:
    """The client's address: REMOTE_ADDR, or, when REMOTE_ADDR is a trusted proxy, the right-most
    address of X-Forwarded-For that is not a trusted proxy.

    Only the right end of X-Forwarded-For is believed: each trusted proxy appends the peer it saw,
    while everything to the left of the first untrusted hop may be written by the client itself.
    """
    remote = environ.get("REMOTE_ADDR", "")
    trusted = tuple(trusted_proxies)
    hop = parse_ip(remote)
    if hop is None or not _in_any(hop, trusted):
        return str(hop) if hop is not None else remote
    forwarded = [
        part for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    for entry in reversed(forwarded):
        address = parse_ip(entry)
        if address is None:
            return entry.strip()  # an untrusted hop we cannot read: still the client, not the proxy
        hop = address
        if not _in_any(address, trusted):
            break
    return str(hop)


CLIENT = "pikdav.client"  # environ key: the client's address (X-Forwarded-For when trusted)


def request_client(
    environ: MutableMapping[str, Any], trusted_proxies: Iterable[IPNetwork] = ()
) -> str:
    """The request's client address (:func:`client_ip`), worked out once per request: the
    front door does it first, and every layer after it (bans, caps, the download policy, log
    lines) reads the same answer."""
    known = environ.get(CLIENT)
    if known is None:
        known = environ[CLIENT] = client_ip(environ, trusted_proxies)
    return known


def _in_any(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


class DownloadPolicy:
    """Decides, per request, whether a mount's file is redirected to the CDN or proxied.

    Rules, first match wins: a User-Agent in `force_proxy_user_agents`, then one in
    `force_redirect_user_agents` (case-insensitive substrings); then `mode` "redirect" or "proxy";
    in mode "auto", redirect exactly when the client's address equals `public_ip` or lies in
    `redirect_networks`.
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        redirect_networks: Iterable[str | IPNetwork] = (),
        public_ip: str | IPAddress | None = None,
        force_proxy_user_agents: Iterable[str] = (),
        force_redirect_user_agents: Iterable[str] = (),
        trusted_proxies: Iterable[str | IPNetwork] = (),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"download mode must be one of {', '.join(MODES)} (got {mode!r})")
        self.mode = mode
        self.redirect_networks = parse_networks(redirect_networks)
        self.public_ip = parse_ip(str(public_ip)) if public_ip is not None else None
        if public_ip is not None and self.public_ip is None:
            raise ValueError(f"public_ip is not an IP address (got {public_ip!r})")
        self.force_proxy_user_agents = tuple(ua for ua in force_proxy_user_agents if ua)
        self.force_redirect_user_agents = tuple(ua for ua in force_redirect_user_agents if ua)
        self.trusted_proxies = parse_networks(trusted_proxies)

    def client_ip(self, environ: MutableMapping[str, Any]) -> str:
        return request_client(environ, self.trusted_proxies)

    def decide(self, environ: Mapping[str, Any]) -> Decision:
        user_agent = environ.get("HTTP_USER_AGENT", "").casefold()
        for delivery, agents in (
            (Delivery.PROXY, self.force_proxy_user_agents),
            (Delivery.REDIRECT, self.force_redirect_user_agents),
        ):
            for agent in agents:
                if agent.casefold() in user_agent:
                    return Decision(delivery, f"ua={agent}")
        if self.mode != "auto":
            return Decision(Delivery(self.mode), f"mode={self.mode}")

        text = self.client_ip(environ)
        address = parse_ip(text)
        if address is None:
            return Decision(Delivery.PROXY, f"ip {text!r} unreadable")
        if address == self.public_ip:
            return Decision(Delivery.REDIRECT, f"ip {address} is public_ip")
        for network in self.redirect_networks:
            if address in network:
                return Decision(Delivery.REDIRECT, f"ip {address} in {network}")
        return Decision(Delivery.PROXY, f"ip {address} not in redirect_networks")
