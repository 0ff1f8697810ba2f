"""The one place that builds HTTP clients to PikPak: its API, its CDN, its object store.

How an account reaches PikPak (hosts, TLS trust, the client's User-Agent, pool sizes) is a
:class:`Connection`; the functions here turn it into a ``requests`` session for the API or
the CDN, so that a setting added here (a proxy, a domain) holds for every call to PikPak at
once.

None of these clients retries by itself: :mod:`pikdav.pikpak.retry` is the only bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from .identity import WEB

USER_API = "https://user.mypikpak.com"
DRIVE_API = "https://api-drive.mypikpak.com"


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
    pool_size: int = 64
    timeout: tuple[float, float] = (10.0, 60.0)  # connect, read (seconds)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_api", self.user_api.rstrip("/"))
        object.__setattr__(self, "drive_api", self.drive_api.rstrip("/"))

    @property
    def verify(self) -> bool | str:
        """What ``requests`` and botocore take as ``verify``."""
        return self.ca_cert or True


def _session(connection: Connection, pools: int, per_pool: int) -> requests.Session:
    session = requests.Session()
    # Retries are the retry policy's; the environment's proxies are not pikdav's settings.
    adapter = HTTPAdapter(pool_connections=pools, pool_maxsize=per_pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    session.verify = connection.verify
    session.headers["User-Agent"] = connection.user_agent
    return session


def api_session(connection: Connection) -> requests.Session:
    """For the user and drive hosts: a few hosts, many threads at once."""
    return _session(connection, 8, connection.pool_size)


def cdn_session(connection: Connection) -> requests.Session:
    """For download links: many CDN hosts (one per node), many streams at once."""
    return _session(connection, 16, 128)
