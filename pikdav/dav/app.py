"""Assembly: config → PikPak sessions → mounts → WsgiDAV app → cheroot server.

Around WsgiDAV sit two thin WSGI layers of ours: the front door (see :mod:`.frontdoor`: bad
requests, HEAD, errors, the stop, one log line per request) and ``/healthz`` (no login).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from typing import Any

from wsgidav import util as wsgidav_util
from wsgidav.dav_error import DAVError, get_http_status_string
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from pikdav.config import AccountConfig, Config
from pikdav.httpserver import Server
from pikdav.pikpak import identity
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.session import Credentials, RetryPolicy, Session
from pikdav.pikpak.tokenstore import open_store
from pikdav.vfs.pending import PendingUploads
from pikdav.vfs.tree import DriveTree

from .auth import BasicAuthenticator, LoginThrottle, PikdavDomainController
from .deadprops import CappedPropertyManager
from .frontdoor import ErrorAnswers, FrontDoor, quiet_client_errors
from .paths import check_request
from .policy import DownloadPolicy
from .provider import GatewayProvider, Mount
from .spool import SpoolSettings

BLOCK_SIZE = 1 << 20  # WsgiDAV's read size for GET bodies and PUT uploads


def login_command(config: Config, account: AccountConfig) -> str:
    """The `pikdav login` that signs this account in, for the messages that ask for it."""
    command = f"pikdav login -c {shlex.quote(config.source)}"
    return command + (f" --account {account.name}" if len(config.accounts) > 1 else "")


def session_for(
    config: Config,
    account: AccountConfig,
    pool_size: int = 64,
    retry: RetryPolicy | None = None,
) -> Session:
    login = login_command(config, account)
    store = open_store(account.token_store, config.token_path(account), account.name, login)
    return Session(
        Credentials(account.username or "", account.password, refresh_token=account.refresh_token),
        store,
        platform=identity.PLATFORMS[account.platform],
        user_api=account.user_api,
        drive_api=account.drive_api,
        ca_cert=str(account.ca_cert) if account.ca_cert else None,
        pool_size=pool_size,
        retry=retry,
        name=account.name,
        login=login,
    )


def build_mounts(config: Config, sessions: dict[str, Session] | None = None) -> list[Mount]:
    sessions = sessions if sessions is not None else {}
    drives: dict[str, Drive] = {}
    spool = SpoolSettings(
        directory=str(config.server.temp_dir) if config.server.temp_dir else None,
        max_size=config.server.max_upload_size,
    )
    mounts = []
    for mount in config.mounts:
        account = config.account_for(mount)
        if account.name not in drives:
            session = sessions.get(account.name) or session_for(
                config, account, config.server.threads
            )
            sessions[account.name] = session
            drives[account.name] = Drive(session)
        drive = drives[account.name]
        mounts.append(
            Mount(
                name=mount.name,
                drive=drive,
                tree=DriveTree(drive, mount.root_folder_id, mount.listing_ttl),
                policy=DownloadPolicy.for_mount(mount, config.server.trusted_proxies),
                read_only=mount.read_only,
                use_trash=mount.use_trash,
                spool=spool,
                finder_metadata=mount.finder_metadata,
            )
        )
    for mount, settings in zip(mounts, config.mounts, strict=True):
        if settings.background_uploads:
            directory = config.state_dir / "uploads" / mount.name
            mount.pending = PendingUploads(directory, mount.writer, mount.tree)
            mount.tree.pending = mount.pending
            # Bodies are spooled where they wait, so taking one over is a rename.
            mount.spool = SpoolSettings(directory=str(directory), max_size=spool.max_size)
            mount.pending.start()  # uploads left from before a restart
    return mounts


def build_app(config: Config, mounts: list[Mount]) -> Callable:
    provider = GatewayProvider(mounts)
    dav = WsgiDAVApp(
        {
            "provider_mapping": {"/": provider},
            "http_authenticator": {
                "domain_controller": PikdavDomainController,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
                "trusted_auth_header": None,
            },
            "middleware_stack": [ErrorAnswers, LoginThrottle, BasicAuthenticator, RequestResolver],
            "pikdav": config.dav_auth_settings(),
            "lock_storage": True,
            "property_manager": CappedPropertyManager(),
            "dir_browser": {"enable": False},
            "block_size": BLOCK_SIZE,
            "hotfixes": {"emulate_win32_lastmod": True},
            "add_header_MS_Author_Via": True,
            "suppress_version_info": True,
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    # WsgiDAV puts its version into error pages; say only its name.
    wsgidav_util.public_wsgidav_info = "WsgiDAV"
    allow = (
        "OPTIONS, HEAD, GET, PROPFIND"
        if provider.is_readonly()
        else (
            "OPTIONS, HEAD, GET, PROPFIND, PUT, DELETE, COPY, MOVE, MKCOL, PROPPATCH, LOCK, UNLOCK"
        )
    )
    quiet_client_errors()
    return FrontDoor(Healthz(dav, allow))


class Healthz:
    """``GET /healthz`` → 200 without a login, for Docker and load balancers; and the
    front door's checks: a path that is not a valid DAV path (see :mod:`.paths`: a ``..``
    or ``.`` segment, also ``%2e%2e``, that WsgiDAV would fold into another place; control
    characters; not UTF-8), in the request line or in a header, is refused before WsgiDAV
    sees it; a 405 says what is allowed."""

    def __init__(self, app: Callable, allow: str) -> None:
        self.app = app
        self.allow = allow

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            return _plain(start_response, "200 OK", "ok\n", environ)
        try:
            check_request(environ)
        except DAVError as exc:
            reason = f"{exc.context_info}\n"
            return _plain(start_response, get_http_status_string(exc), reason, environ)

        def with_allow(status: str, headers: list, exc_info: Any = None):
            if status.startswith("405") and not any(k.lower() == "allow" for k, _ in headers):
                headers = [*headers, ("Allow", self.allow)]
            if exc_info:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, with_allow)


def _plain(start_response: Callable, status: str, text: str, environ: dict) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body] if environ["REQUEST_METHOD"] != "HEAD" else []


def keep_memory_flat() -> None:
    """Make glibc return large freed buffers to the system at once.

    Streams and uploads allocate and free 1 MiB blocks in many threads, and glibc gives
    threads heaps of their own (up to 8 per core) that keep freed blocks: the gateway's RSS
    grew by 100+ MiB during one 1 GiB upload. Two heaps keep it near the working set; a
    fixed mmap threshold did too, but made every block a fresh mapping and cost a second
    per GiB (see BENCHMARKS.md)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_arena_max = -8
    libc.mallopt(m_arena_max, 2)


def make_server(config: Config, app: Callable) -> Server:
    keep_memory_flat()
    server = Server(
        (config.server.host, config.server.port),
        app,
        numthreads=config.server.threads,
        request_queue_size=128,
        timeout=300,  # how long an idle kept-alive connection stays open
        server_name="pikdav",
    )
    server.max_request_body_size = 0  # uploads are bounded by server.max_upload_size
    if config.server.tls_cert:
        server.use_tls(str(config.server.tls_cert), str(config.server.tls_key))
    return server
