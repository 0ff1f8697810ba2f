"""Assembly: the typed configuration turned into what runs — a PikPak session per account, a
vfs mount per configured mount, the DAV application over them, and the HTTP server.

This is the only place that reads the configuration to build things; the packages it builds
from (`pikdav.pikpak`, `pikdav.vfs`, `pikdav.dav`) never import `pikdav.config`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from .config import AccountConfig, Config, MountConfig
from .dav.app import build_dav_app
from .dav.policy import DownloadPolicy, IPNetwork
from .httpserver import Server, keep_memory_flat
from .pikpak import http, identity
from .pikpak.cdn import CdnSession
from .pikpak.drive import Drive
from .pikpak.retry import RetryPolicy
from .pikpak.session import Credentials, Session
from .pikpak.tokenstore import open_store
from .vfs.mount import Mount
from .vfs.shared import SharedState
from .vfs.sidefiles import RedisSideStore
from .vfs.source import DriveSource
from .vfs.spool import SpoolSettings


def login_command(config: Config, account: AccountConfig) -> str:
    """The `pikdav login` that signs this account in, for the messages that ask for it."""
    command = f"pikdav login -c {shlex.quote(config.source)}"
    return command + (f" --account {account.name}" if len(config.accounts) > 1 else "")


def session_for(
    account: AccountConfig,
    store_path: Path,
    *,
    login: str = "pikdav login",
    pool_size: int = 64,
    retry: RetryPolicy | None = None,
    captcha_token: str | None = None,
) -> Session:
    """The PikPak session of ``account`` (its tokens in its store, ``store_path`` when that is
    the default file); ``login`` is the command messages tell a person to run."""
    platform = identity.PLATFORMS[account.platform]
    store = open_store(account.token_store, store_path, account.name, login)
    return Session(
        Credentials(
            account.username or "",
            account.password,
            refresh_token=account.refresh_token,
            captcha_token=captcha_token,
        ),
        store,
        platform=platform,
        connection=http.Connection(
            user_api=account.user_api,
            drive_api=account.drive_api,
            user_agent=platform.user_agent,
            ca_cert=str(account.ca_cert) if account.ca_cert else None,
            pool_size=pool_size,
        ),
        retry=retry,
        name=account.name,
        login=login,
    )


def account_session(
    config: Config, account: AccountConfig, *, pool_size: int = 64, retry: RetryPolicy | None = None
) -> Session:
    """The session of one of the config's accounts, as `serve` and `check` use it."""
    return session_for(
        account,
        config.token_path(account),
        login=login_command(config, account),
        pool_size=pool_size,
        retry=retry,
    )


def download_policy(mount: MountConfig, trusted_proxies: tuple[IPNetwork, ...]) -> DownloadPolicy:
    """The download policy of one configured mount (``trusted_proxies``: the server's)."""
    return DownloadPolicy(
        mount.download,
        redirect_networks=mount.redirect_networks,
        public_ip=mount.public_ip,
        force_proxy_user_agents=mount.force_proxy_user_agents,
        force_redirect_user_agents=mount.force_redirect_user_agents,
        trusted_proxies=trusted_proxies,
    )


def build_mounts(config: Config, sessions: dict[str, Session] | None = None) -> list[Mount]:
    """A mount per configured mount; mounts of one account share its session, drive and CDN
    session (``sessions`` may hold sessions made already, and gets those made here)."""
    sessions = sessions if sessions is not None else {}
    sources: dict[str, tuple[DriveSource, CdnSession]] = {}
    spool = SpoolSettings(
        directory=str(config.server.temp_dir) if config.server.temp_dir else None,
        max_size=config.server.max_upload_size,
    )
    shared = SharedState(config.redis) if config.redis else None
    mounts = []
    for settings in config.mounts:
        account = config.account_for(settings)
        if account.name not in sources:
            session = sessions.get(account.name) or account_session(
                config, account, pool_size=config.server.threads
            )
            sessions[account.name] = session
            sources[account.name] = (
                DriveSource(Drive(session)),
                http.cdn_session(session.connection),
            )
        source, cdn = sources[account.name]
        background = settings.background_uploads
        mounts.append(
            Mount(
                settings.name,
                source,
                cdn=cdn,
                root_id=settings.root_folder_id,
                listing_ttl=settings.listing_ttl,
                read_only=settings.read_only,
                use_trash=settings.use_trash,
                spool=spool,
                uploads_dir=config.state_dir / "uploads" / settings.name if background else None,
                finder_metadata=settings.finder_metadata,
                shared=shared,
                side_files=RedisSideStore(shared, settings.name) if shared else None,
            )
        )
    if shared is not None:
        shared.start()  # every mount listens for the others' changes from now on
    return mounts


def shared_state(mounts: list[Mount]) -> SharedState | None:
    """The Redis state the mounts share with other instances (None: one instance alone);
    ``.status()`` says whether it answers, for the status page."""
    return next((m.shared for m in mounts if m.shared is not None), None)


def build_app(config: Config, mounts: list[Mount]) -> Callable:
    """The WSGI application serving ``mounts`` with the config's users and policies."""
    policies = {
        settings.name: download_policy(settings, config.server.trusted_proxies)
        for settings in config.mounts
    }
    return build_dav_app(mounts, policies, config.auth_settings(), shared_state(mounts))


def make_server(config: Config, app: Callable) -> Server:
    """The HTTP server for ``app`` on the config's address (not listening yet: ``prepare``)."""
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
