"""The one place that builds HTTP clients to PikPak: its API, its CDN, its object store.

How an account reaches PikPak (hosts, TLS trust, the client's User-Agent, pool sizes) is a
:class:`Connection`; the functions here turn it into a ``requests`` session for the API or
the CDN, or an S3 client for the object store, so that a setting added here (a proxy, a
domain) holds for every call to PikPak at once.

None of these clients retries by itself: :mod:`pikdav.pikpak.retry` is the only bound.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


_BOTO_LOCK = threading.Lock()  # boto3's sessions are not thread-safe to build clients with


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
    import boto3
    from botocore.config import Config

    scheme = urlsplit(connection.drive_api).scheme or "https"
    endpoint = endpoint or urlsplit(connection.drive_api).netloc
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
        style = "path"
    except ValueError:
        style = "path" if host == "localhost" else "virtual"
    config = Config(
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
        return boto3.session.Session().client(
            "s3",
            endpoint_url=f"{scheme}://{endpoint}",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=access_key_secret,
            aws_session_token=security_token or None,
            config=config,
            verify=connection.verify,
        )
