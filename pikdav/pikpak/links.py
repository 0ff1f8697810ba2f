"""Which host a download link is read from: the mount's download domain, the fastest CDN node,
and the way back to the host PikPak gave when a rewritten one fails.

A signed link works on any of PikPak's download hosts: the signature covers the path and the
query, not the host. So a link's domain can be swapped (``download_domain``: AList's 2026 rule,
the subdomain, path and query are kept) and its node too (``cdn_node``): with ``auto`` the known
``dl-*`` nodes are probed with ``/generate_204`` in parallel at start and hourly, and links go
to the fastest that answered. A rewritten link carries the original as its ``fallback``; when a
rewritten host fails, the reader goes back to the original and the route stops using that host
until the next probe, so the next link handed out (a redirect too) is the original's.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from .http import host_of
from .types import Link

log = logging.getLogger(__name__)

KEEP = "keep"
AUTO, OFF = "auto", "off"
NODES_FILE = Path(__file__).with_name("cdn_nodes.txt")
PROBE_EVERY = 3600.0  # seconds between probes of the nodes
PROBE_TIMEOUT = 3.0  # a node slower than this to answer is no faster path


def known_nodes(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The nodes in :data:`NODES_FILE`, then ``extra``, each once."""
    lines = NODES_FILE.read_text(encoding="utf-8").splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return tuple(dict.fromkeys([*names, *extra]))


def _with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=host + port))


def with_domain(url: str, domain: str) -> str:
    """``url`` with its host's domain (its last two labels) replaced by ``domain``."""
    host = host_of(url)
    labels = host.split(".")
    if len(labels) < 3 or host.replace(".", "").isdigit():
        return url  # no subdomain to keep, or an address
    return _with_host(url, ".".join([*labels[:-2], domain]))


def with_node(url: str, node: str) -> str:
    """``url`` read from ``node``: a full host name, or a node's name on the link's domain."""
    if "." in node:
        return _with_host(url, node)
    host = host_of(url)
    labels = host.split(".")
    if len(labels) < 3 or host.replace(".", "").isdigit():
        return url
    return _with_host(url, ".".join([node, *labels[1:]]))


@dataclass(frozen=True)
class NodeChoice:
    host: str
    latency: float  # seconds to answer /generate_204
    answered: int  # nodes that answered
    probed: int


class LinkRoute:
    """How a mount's links are rewritten (see the module's text). ``http`` is the account's
    CDN session (its proxy, its TLS trust); ``probe_domain`` the domain nodes are probed on
    when ``download_domain`` keeps the link's own."""

    def __init__(
        self,
        http: requests.Session,
        *,
        download_domain: str = KEEP,
        cdn_node: str = OFF,
        probe_domain: str = "mypikpak.com",
        nodes: tuple[str, ...] = (),
        scheme: str = "https",
        probe_every: float = PROBE_EVERY,
        name: str = "",
    ) -> None:
        self.http = http
        self.domain = download_domain
        self.cdn_node = cdn_node
        self.probe_domain = probe_domain if download_domain == KEEP else download_domain
        self.nodes = nodes or known_nodes()
        self.scheme = scheme
        self.probe_every = probe_every
        self.name = name
        self.choice: NodeChoice | None = None
        self._failed: dict[str, float] = {}  # host → when it failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ links
    def route(self, link: Link) -> Link:
        """``link`` as it is read: rewritten, with the original as its fallback."""
        url = link.url
        if self.domain != KEEP:
            url = with_domain(url, self.domain)
        node = self._node()
        if node is not None:
            url = with_node(url, node)
        if url == link.url or self._is_failed(host_of(url)):
            return link
        return replace(link, url=url, fallback=link.url)

    def _node(self) -> str | None:
        if self.cdn_node == AUTO:
            choice = self.choice
            return choice.host if choice is not None else None
        return None if self.cdn_node == OFF else self.cdn_node

    def _is_failed(self, host: str) -> bool:
        with self._lock:
            when = self._failed.get(host)
            if when is not None and time.monotonic() - when > self.probe_every:
                del self._failed[host]
                return False
            return when is not None

    def failed(self, url: str) -> None:
        """A read from ``url``'s host failed: links go to their original hosts instead
        until the next probe (or, without probes, for as long)."""
        host = host_of(url)
        with self._lock:
            known = host in self._failed
            self._failed[host] = time.monotonic()
        if not known:
            log.warning(
                "mount %s: download host %s failed; links go to the hosts PikPak gives "
                "until the next probe",
                self.name,
                host,
            )

    # ------------------------------------------------------------------ probing
    def probe(self) -> NodeChoice | None:
        """Ask every known node for ``/generate_204`` at once; keep the fastest."""
        hosts = [n if "." in n else f"{n}.{self.probe_domain}" for n in self.nodes]
        # Fewer probes at once than the CDN session keeps pools: a probe's second request
        # finds its connection still open.
        with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
            timings = list(pool.map(self._time, hosts))
        answered = sorted((t, h) for h, t in zip(hosts, timings, strict=True) if t is not None)
        if not answered:
            log.warning(
                "mount %s: none of %d CDN nodes answered; links keep PikPak's hosts",
                self.name,
                len(hosts),
            )
            self.choice = None
            return None
        latency, host = answered[0]
        choice = NodeChoice(host, latency, len(answered), len(hosts))
        with self._lock:
            self._failed.clear()
        self.choice = choice
        log.info(
            "mount %s: CDN node %s (%.0f ms; %d of %d nodes answered)",
            self.name,
            host,
            latency * 1000,
            choice.answered,
            choice.probed,
        )
        return choice

    def _time(self, host: str) -> float | None:
        """How long the node takes to answer, on an open connection: the first request
        opens it (TCP, the proxy, TLS: the same cost for every node), the quicker of the
        next two is the node's time (one late answer is this machine's, not the node's)."""
        times = []
        for _ in range(3):
            started = time.perf_counter()
            try:
                resp = self.http.get(
                    f"{self.scheme}://{host}/generate_204", timeout=(PROBE_TIMEOUT, PROBE_TIMEOUT)
                )
            except (requests.RequestException, OSError):
                return None
            if resp.status_code != 204:
                return None
            times.append(time.perf_counter() - started)
        return min(times[1:])

    def start(self) -> None:
        """With ``cdn_node: auto``: probe now, then every ``probe_every`` seconds."""
        if self.cdn_node != AUTO or self._thread is not None:
            return
        self.probe()
        self._thread = threading.Thread(
            target=self._probe_hourly, name=f"cdn-probe:{self.name}", daemon=True
        )
        self._thread.start()

    def _probe_hourly(self) -> None:
        while not self._stop.wait(self.probe_every):
            self.probe()

    def close(self) -> None:
        """Stop probing (a probe under way ends within its timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * PROBE_TIMEOUT)
