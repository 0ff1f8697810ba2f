"""The one place that builds HTTP clients to PikPak: its API, its CDN, its object store.

How an account reaches PikPak (hosts, TLS trust, the client's User-Agent, pool sizes, the
proxy) is a :class:`Connection`; the functions here turn it into a ``requests`` session for
the API or the CDN, or an S3 client for the object store, so that a setting made here holds
for every call to PikPak at once.

The proxy: a URL (``http://``, ``https://``, ``socks5://``, ``socks5h://``, with
``user:password@`` when it wants a login) is used for every call; :data:`NO_PROXY` ignores
the environment; None (the default) takes ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/
``NO_PROXY`` from the environment as every Python HTTP tool does. Only the proxy is taken
from the environment: ``.netrc`` logins never reach PikPak.

None of these clients retries by itself: :mod:`pikdav.pikpak.retry` is the only bound.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, select_proxy

from .identity import WEB

API_DOMAIN = "mypikpak.com"
USER_API = f"https://user.{API_DOMAIN}"
DRIVE_API = f"https://api-drive.{API_DOMAIN}"
POOL_SIZE = 64  # connections kept to each host: as many as the server's default workers
NO_PROXY = "none"  # the proxy setting that ignores the environment's proxies
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def api_hosts(domain: str) -> tuple[str, str]:
    """The user and drive API of PikPak on ``domain`` (``mypikpak.com``, ``mypikpak.net``…)."""
    return f"https://user.{domain}", f"https://api-drive.{domain}"


# PikPak serves the same hosts under both: where one does not resolve or connect (a DNS block,
# a missing record: OpenList #707, #2431) the other often does.
_SIBLING_DOMAINS = {"mypikpak.com": "mypikpak.net", "mypikpak.net": "mypikpak.com"}


def other_domain(url: str) -> str | None:
    """``url`` on PikPak's other domain (``.com`` ↔ ``.net``), same subdomain, path and
    query; None when its host is not on either."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    for domain, other in _SIBLING_DOMAINS.items():
        if host == domain or host.endswith("." + domain):
            netloc = parts.netloc.replace(host, host[: -len(domain)] + other, 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return None


def host_of(url: str) -> str:
    """The host of a URL, for a log line (a link's path and query are signed: never logged)."""
    return urlsplit(url).hostname or ""


def shown_url(url: str) -> str:
    """A URL with a login (a proxy's, Redis') as it may be logged or shown: the user and
    password become ``***``, and so does a ``password=`` in the query (Redis takes one there).
    Read as text, so that a malformed URL is shown as safely as a good one."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    path, mark, query = tail.partition("?")
    fields = (
        "password=***" if field.partition("=")[0].lower() == "password" else field
        for field in query.split("&")
    )
    return scheme + sep + authority + slash + path + mark + "&".join(fields)


def proxy_in_words(proxy: str | None) -> str:
    """A proxy URL for a log line or ``pikdav check``: its login is never shown."""
    return shown_url(proxy) if proxy else "none"


@dataclass(frozen=True)
class Connection:
    """How one account reaches PikPak.

    ``user_agent`` is the platform's (the API checks it goes with the client id, and the
    CDN sees the same client); ``ca_cert`` a CA bundle to trust instead of the system's
    (behind a TLS-intercepting proxy, or the emulator over TLS)."""

    user_api: str = USER_API
    drive_api: str = DRIVE_API
    user_agent: str = WEB.user_agent
    ca_cert: str | None = None
    pool_size: int = POOL_SIZE
    timeout: tuple[float, float] = (10.0, 60.0)  # connect, read (seconds)
    proxy: str | None = field(default=None, repr=False)  # a URL, NO_PROXY, None: environment

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_api", self.user_api.rstrip("/"))
        object.__setattr__(self, "drive_api", self.drive_api.rstrip("/"))

    @property
    def verify(self) -> bool | str:
        """What ``requests`` and botocore take as ``verify``."""
        return self.ca_cert or True

    def proxy_for(self, url: str) -> str | None:
        """The proxy a call to ``url`` goes through (None: straight to PikPak)."""
        if self.proxy == NO_PROXY:
            return None
        if self.proxy:
            return self.proxy
        return select_proxy(url, get_environ_proxies(url))

    def proxy_origin(self) -> str:
        """Where the proxy setting comes from, in words (for ``pikdav check``)."""
        if self.proxy == NO_PROXY:
            return "none (the environment's proxies are ignored)"
        if self.proxy:
            return proxy_in_words(self.proxy)
        found = self.proxy_for(self.user_api)
        return f"{proxy_in_words(found)} (from the environment)" if found else "none"


class _PikPakHttp(requests.Session):
    """A ``requests`` session that takes its proxy from the :class:`Connection` and nothing
    else from the environment (no ``.netrc`` login, no CA bundle variable)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection
        self.trust_env = False

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        proxy = self.connection.proxy_for(url)
        scheme = urlsplit(url).scheme
        settings["proxies"] = {scheme: proxy} if proxy else {}
        return settings


def _session(connection: Connection, pools: int, per_pool: int) -> requests.Session:
    session = _PikPakHttp(connection)
    # Retries are the retry policy's.
    adapter = HTTPAdapter(pool_connections=pools, pool_maxsize=per_pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = connection.verify
    session.headers["User-Agent"] = connection.user_agent
    return session


def api_session(connection: Connection) -> requests.Session:
    """For the user and drive hosts: a few hosts, many threads at once."""
    return _session(connection, 8, connection.pool_size)


def cdn_session(connection: Connection) -> requests.Session:
    """For download links: many CDN hosts (one per node), many streams at once."""
    return _session(connection, 16, 128)


_BOTO_LOCK = threading.Lock()  # boto3's sessions are not thread-safe to build clients with


@functools.cache
def _boto_session() -> Any:
    """One boto3 session for every client (built under ``_BOTO_LOCK``): a new session per
    upload parsed botocore's S3 model again, 0.1-0.5 s of CPU before each upload's first
    byte, with the lock held; a client of a shared one is made in about 15 ms."""
    import boto3

    return boto3.session.Session()


def object_store_client(
    connection: Connection,
    endpoint: str,
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str = "",
    pool_size: int = 8,
) -> Any:
    """An S3 client for the store an upload ticket names (``endpoint``: host[:port]; empty:
    the drive host). OSS refuses ``aws-chunked`` bodies, so checksums are computed only
    when an operation requires them (rclone #8629); botocore's own retries are off."""
    from botocore.config import Config

    scheme = urlsplit(connection.drive_api).scheme or "https"
    endpoint = endpoint or urlsplit(connection.drive_api).netloc
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
        style = "path"
    except ValueError:
        style = "path" if host == "localhost" else "virtual"
    endpoint_url = f"{scheme}://{endpoint}"
    proxy = connection.proxy_for(endpoint_url)
    socks = bool(proxy) and urlsplit(proxy).scheme.startswith("socks")
    config = Config(
        # An empty map, not None: botocore would read the environment itself.
        proxies={"http": proxy, "https": proxy} if proxy and not socks else {},
        region_name="pikpak",
        signature_version="s3v4",
        s3={"addressing_style": style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=connection.timeout[0],
        read_timeout=120,
    )
    with _BOTO_LOCK:
        client = _boto_session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=access_key_secret,
            aws_session_token=security_token or None,
            config=config,
            verify=connection.verify,
        )
    if socks:
        _through_socks(client, proxy, config, connection.verify)
    return client


def _through_socks(client: Any, proxy: str, config: Any, verify: bool | str) -> None:
    """botocore speaks to HTTP proxies only (it would read ``socks5://`` as a host name):
    the client's HTTP session is swapped for one whose connections go through urllib3's
    SOCKS pool, the one ``requests[socks]`` uses for the API and the CDN."""
    from botocore.httpsession import URLLib3Session
    from urllib3.contrib.socks import SOCKSProxyManager

    class SocksSession(URLLib3Session):
        def _get_connection_manager(self, url, proxy_url=None):
            if proxy not in self._proxy_managers:
                manager = SOCKSProxyManager(proxy, **self._get_pool_manager_kwargs())
                self._proxy_managers[proxy] = manager
            return self._proxy_managers[proxy]

    endpoint = client._endpoint  # botocore has no public hook for the HTTP session
    endpoint.http_session.close()
    endpoint.http_session = SocksSession(
        verify=verify,
        proxies={},
        timeout=(config.connect_timeout, config.read_timeout),
        max_pool_connections=config.max_pool_connections,
    )
