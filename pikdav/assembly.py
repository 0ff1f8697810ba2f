"""Assembly: the typed configuration turned into what runs — a PikPak session per account, a
vfs mount per configured mount, the DAV application over them, and the HTTP server.

This is the only place that reads the configuration to build things; the packages it builds
from (`pikdav.pikpak`, `pikdav.vfs`, `pikdav.dav`) never import `pikdav.config`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .config import AccountConfig, Config, MountConfig
from .dav.app import build_dav_app
from .dav.policy import DownloadPolicy, IPNetwork
from .httpserver import Server, keep_memory_flat
from .pikpak import http, identity, links
from .pikpak.cdn import CdnSession
from .pikpak.drive import Drive
from .pikpak.retry import RetryPolicy
from .pikpak.segments import BlockCache, SegmentPlan, Streams
from .pikpak.session import Credentials, Session
from .pikpak.tokenstore import open_store
from .vfs.mount import Mount
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
            proxy=account.proxy,
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


def link_route(
    mount: MountConfig, account: AccountConfig, cdn: CdnSession
) -> links.LinkRoute | None:
    """How the mount's links are rewritten (None: as PikPak gives them). Not probed yet."""
    if mount.download_domain == links.KEEP and mount.cdn_node == links.OFF:
        return None
    return links.LinkRoute(
        cdn,
        download_domain=mount.download_domain,
        cdn_node=mount.cdn_node,
        probe_domain=account.api_domain,
        nodes=links.known_nodes(mount.cdn_nodes),
        scheme=urlsplit(account.drive_api).scheme or "https",
        name=mount.name,
    )


def build_mounts(config: Config, sessions: dict[str, Session] | None = None) -> list[Mount]:
    """A mount per configured mount; mounts of one account share its session, drive and CDN
    session (``sessions`` may hold sessions made already, and gets those made here)."""
    sessions = sessions if sessions is not None else {}
    sources: dict[tuple[str, str], DriveSource] = {}
    cdns: dict[str, CdnSession] = {}
    streams: dict[str, Streams] = {}
    # One cache for every stream: players re-read the same header and index blocks.
    cache = BlockCache(config.server.stream_cache) if config.server.stream_cache else None
    spool = SpoolSettings(
        directory=str(config.server.temp_dir) if config.server.temp_dir else None,
        max_size=config.server.max_upload_size,
    )
    mounts = []
    for settings in config.mounts:
        account = config.account_for(settings)
        if account.name not in cdns:
            session = sessions.get(account.name) or account_session(
                config, account, pool_size=config.server.threads
            )
            sessions[account.name] = session
            cdns[account.name] = http.cdn_session(session.connection)
            streams[account.name] = Streams(connections=account.cdn_connections, cache=cache)
        cdn = cdns[account.name]
        kind = (account.name, settings.link)
        if kind not in sources:
            sources[kind] = DriveSource(Drive(sessions[account.name]), link_kind=settings.link)
        source = sources[kind]
        route = link_route(settings, account, cdn)
        if route is not None:
            route.start()  # with cdn_node auto: the first probe, then one an hour
        background = settings.background_uploads
        mounts.append(
            Mount(
                settings.name,
                source,
                cdn=cdn,
                root_id=settings.root_folder_id,
                listing_ttl=settings.listing_ttl,
                # A transcoded view is not the stored file: a copy or a change of it would be
                # of bytes the client never saw.
                read_only=settings.read_only or settings.link == "transcoded",
                use_trash=settings.use_trash,
                spool=spool,
                uploads_dir=config.state_dir / "uploads" / settings.name if background else None,
                finder_metadata=settings.finder_metadata,
                route=route,
                streams=streams[account.name],
                stream_plan=SegmentPlan(connections=settings.stream_connections),
            )
        )
    return mounts


def build_app(config: Config, mounts: list[Mount]) -> Callable:
    """The WSGI application serving ``mounts`` with the config's users and policies."""
    policies = {
        settings.name: download_policy(settings, config.server.trusted_proxies)
        for settings in config.mounts
    }
    return build_dav_app(mounts, policies, config.auth_settings())


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
