"""Assembly: the typed configuration turned into what runs — a PikPak session per account, a
vfs mount per configured mount, the DAV application over them, and the HTTP server.

This is the only place that reads the configuration to build things; the packages it builds
from (`pikdav.pikpak`, `pikdav.vfs`, `pikdav.dav`) never import `pikdav.config`.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import AccountConfig, Config, MountConfig
from .dav.app import build_dav_app
from .dav.limits import RequestCaps
from .dav.metrics import Metrics, MetricsOnly
from .dav.policy import DownloadPolicy, IPNetwork
from .dav.status import StatusSources
from .httpserver import Server, keep_memory_flat
from .notify import Webhook, pause_event
from .pikpak import http, identity, links
from .pikpak.cdn import CdnSession
from .pikpak.drive import Drive
from .pikpak.http import API_DOMAIN
from .pikpak.memory import MemoryBudget
from .pikpak.offline import OfflineTasks
from .pikpak.retry import RetryPolicy
from .pikpak.segments import BlockCache, SegmentPlan, Streams
from .pikpak.session import Credentials, Session
from .pikpak.shares import SharedFolder, parse_share_link
from .pikpak.tokenstore import MemoryTokenStore, open_store
from .pikpak.types import ORIGINAL
from .vfs.cluster import Cluster
from .vfs.disk import DiskCache
from .vfs.mount import Mount
from .vfs.offline import Offline
from .vfs.parts import Reading, Writing
from .vfs.pending import PendingUploads
from .vfs.share import ShareSaver, ShareSource
from .vfs.sharelist import ShareListSource
from .vfs.sidefiles import RedisSideStore
from .vfs.source import DriveSource
from .vfs.spool import SpoolSettings
from .vfs.temporaries import Temporaries


def login_command(config: Config, account: AccountConfig) -> str:
    """The `pikdav login` that signs this account in, for the messages that ask for it."""
    command = f"pikdav login -c {shlex.quote(config.source)}"
    return command + (f" --account {account.name}" if len(config.accounts) > 1 else "")


def session_for(
    account: AccountConfig,
    store_path: Path,
    *,
    login: str = "pikdav login",
    pool_size: int = http.POOL_SIZE,
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
        connection=_connection(
            platform,
            account.user_api,
            account.drive_api,
            str(account.ca_cert) if account.ca_cert else None,
            pool_size,
            account.proxy,
        ),
        retry=retry,
        name=account.name,
        login=login,
    )


def account_session(
    config: Config,
    account: AccountConfig,
    *,
    pool_size: int = http.POOL_SIZE,
    retry: RetryPolicy | None = None,
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
    mount: MountConfig, connection: AccountConfig | MountConfig, cdn: CdnSession
) -> links.LinkRoute | None:
    """How the mount's links are rewritten (None: as PikPak gives them). Not probed yet.
    ``connection``: the account whose hosts the mount reaches PikPak by (for a share mount
    without an account, the mount's own connection settings)."""
    if mount.download_domain == links.KEEP and mount.cdn_node == links.OFF:
        return None
    return links.LinkRoute(
        cdn,
        download_domain=mount.download_domain,
        cdn_node=mount.cdn_node,
        # A share mount without an account reaches PikPak's own domain.
        probe_domain=connection.api_domain if isinstance(connection, AccountConfig) else API_DOMAIN,
        nodes=links.known_nodes(mount.cdn_nodes),
        scheme=urlsplit(connection.drive_api).scheme or "https",
        name=mount.name,
    )


def temporaries(config: Config, settings: MountConfig, drive: Drive) -> Temporaries | None:
    """Where the mount's uploads write down their temporaries on PikPak (see
    :mod:`pikdav.vfs.temporaries`); None, said in the log, when state_dir cannot hold them."""
    directory = config.state_dir / "temporaries" / settings.name
    try:
        return Temporaries(directory, drive)
    except OSError as exc:
        logging.getLogger("pikdav").warning(
            "mount %s: cannot keep upload records in %s (%s); uploads cut by a stop may "
            "leave hidden temporaries on PikPak",
            settings.name,
            directory,
            exc.strerror or exc,
        )
        return None


def writing(
    config: Config,
    settings: MountConfig,
    source: DriveSource,
    spool: SpoolSettings,
    cluster: Cluster | None,
    *,
    background: bool = True,
) -> Writing:
    """How a writable drive mount writes: its background uploads (``background=False``: none,
    for a command beside a running server), the temporaries of its uploads, Finder's files."""
    waits = background and settings.background_uploads
    return Writing(
        use_trash=settings.use_trash,
        spool=spool,
        pending=PendingUploads(
            config.state_dir / "uploads" / settings.name, cluster=cluster, channel=settings.name
        )
        if waits
        else None,
        # Only the server writes down and removes its uploads' temporaries: a command beside
        # it must not remove those of the server's uploads in flight.
        temporaries=temporaries(config, settings, source.drive) if background else None,
        finder_metadata=settings.finder_metadata,
        side_files=RedisSideStore(cluster, settings.name) if cluster else None,
    )


def build_mounts(
    config: Config, sessions: dict[str, Session] | None = None, *, background: bool = True
) -> list[Mount]:
    """A mount per configured mount; mounts of one account share its session, drive and CDN
    session (``sessions`` may hold sessions made already, and gets those made here).
    ``background=False``: no mount takes up background uploads (a command beside a
    running server must not upload what the server's uploads folder holds)."""
    keep_memory_flat()  # before any thread: the heaps glibc makes before it stay
    sessions = sessions if sessions is not None else {}
    # One memory budget for every stream's read-ahead, the block cache and listing caches.
    memory = MemoryBudget(config.server.memory_budget)
    # One cache for every stream: players re-read the same header and index blocks.
    disk = disk_cache(config, memory)
    cache = (
        BlockCache(config.server.stream_cache, memory, tier=disk)
        if config.server.stream_cache
        else None
    )
    spool = SpoolSettings(
        directory=str(config.server.temp_dir) if config.server.temp_dir else None,
        max_size=config.server.max_upload_size,
    )
    cluster = Cluster(config.redis) if config.redis else None
    accounts = _Accounts(config, sessions, cache, memory)
    mounts = []
    for settings in config.mounts:
        if settings.is_share:
            mounts.append(
                share_mount(config, settings, accounts.own_drive, memory, cache=cache, disk=disk)
            )
        else:
            mounts.append(
                _drive_mount(
                    config,
                    settings,
                    accounts,
                    spool=spool,
                    cluster=cluster,
                    disk=disk,
                    background=background,
                )
            )
    if cluster is not None:
        cluster.start()  # every mount listens for the others' changes from now on
    return mounts


class _Accounts:
    """What the mounts of one account share, made at its first mount: its session, CDN
    session, offline tasks and streams; and a drive source per kind of link."""

    def __init__(
        self,
        config: Config,
        sessions: dict[str, Session],
        cache: BlockCache | None,
        memory: MemoryBudget,
    ) -> None:
        self._config, self._sessions, self._cache, self._memory = config, sessions, cache, memory
        self._sources: dict[tuple[str, str], DriveSource] = {}
        self._cdns: dict[str, CdnSession] = {}
        self.offline_tasks: dict[str, OfflineTasks] = {}
        self.streams: dict[str, Streams] = {}

    def own_drive(
        self, account: AccountConfig, link_kind: str = ORIGINAL
    ) -> tuple[DriveSource, CdnSession]:
        config, sessions = self._config, self._sessions
        if account.name not in self._cdns:
            session = sessions.get(account.name) or account_session(
                config, account, pool_size=config.server.threads
            )
            sessions[account.name] = session
            self._cdns[account.name] = http.cdn_session(session.connection)
            self.offline_tasks[account.name] = OfflineTasks(session)
            self.streams[account.name] = Streams(
                connections=account.cdn_connections, cache=self._cache, memory=self._memory
            )
        kind = (account.name, link_kind)
        if kind not in self._sources:
            self._sources[kind] = DriveSource(Drive(sessions[account.name]), link_kind=link_kind)
        return self._sources[kind], self._cdns[account.name]


def _drive_mount(
    config: Config,
    settings: MountConfig,
    accounts: _Accounts,
    *,
    spool: SpoolSettings,
    cluster: Cluster | None,
    disk: DiskCache | None,
    background: bool,
) -> Mount:
    """A mount of an account's own drive."""
    account = config.account_for(settings)
    source, cdn = accounts.own_drive(account, settings.link)
    route = link_route(settings, account, cdn)
    if route is not None:
        route.start()  # with cdn_node auto: the first probe, then one an hour
    return Mount(
        settings.name,
        source,
        reading=Reading(
            cdn,
            route=route,
            streams=accounts.streams[account.name],
            plan=SegmentPlan(connections=settings.stream_connections),
            disk=disk,
            disk_scope=f"{settings.name}|{account.username or account.name}"
            f"|{settings.root_folder_id}",
            same_bytes_by_hash=settings.link == ORIGINAL,
        ),
        # Read-only too, it finishes the uploads and removes the temporaries an
        # earlier writable run left.
        writing=writing(config, settings, source, spool, cluster, background=background),
        offline=Offline(
            accounts.offline_tasks[account.name],
            settings.offline_folder,
            links_per_file=settings.offline_links_per_file,
            links_per_minute=settings.offline_links_per_minute,
        ),
        root_id=settings.root_folder_id,
        listing_ttl=settings.listing_ttl,
        finder_hints=settings.finder_hints,
        cluster=cluster,
        # A transcoded view is not the stored file: a copy or a change of it would be
        # of bytes the client never saw.
        read_only=settings.read_only or settings.link == "transcoded",
    )


def disk_cache(config: Config, memory: MemoryBudget | None = None) -> DiskCache | None:
    """The disk cache of listings and blocks (None when ``cache.disk_size`` is 0); the blocks
    waiting to be written count in ``memory``."""
    if not config.cache.disk_size:
        return None
    return DiskCache(
        config.cache_dir,
        config.cache.disk_size,
        serve_stale_for=config.cache.serve_stale_for,
        memory=memory,
    )


def share_session(
    config: Config, mount: MountConfig, pool_size: int = 16, retry: RetryPolicy | None = None
) -> Session:
    """An anonymous session for reading a share mount: the connection settings of the
    account it names (never its login: its hosts, proxy and CA), or those written on the
    mount (and the environment's proxies)."""
    account = config.account_for(mount) if mount.account else None
    source: AccountConfig | MountConfig = account or mount
    return anonymous_session(
        source.platform,
        source.user_api,
        source.drive_api,
        str(source.ca_cert) if source.ca_cert else None,
        name=f"share {mount.name}",
        pool_size=pool_size,
        retry=retry,
        proxy=account.proxy if account is not None else None,
    )


def anonymous_session(
    platform_name: str,
    user_api: str,
    drive_api: str,
    ca_cert: str | None,
    *,
    name: str,
    pool_size: int = 16,
    retry: RetryPolicy | None = None,
    proxy: str | None = None,
) -> Session:
    """A session that never signs in (it reads shares): the platform's identity, a device
    id of this process, and nothing kept."""
    platform = identity.PLATFORMS[platform_name]
    return Session(
        Credentials(),
        MemoryTokenStore(),
        platform=platform,
        connection=_connection(platform, user_api, drive_api, ca_cert, pool_size, proxy),
        retry=retry,
        name=name,
    )


def _connection(
    platform: identity.Platform,
    user_api: str,
    drive_api: str,
    ca_cert: str | None,
    pool_size: int,
    proxy: str | None,
) -> http.Connection:
    """How a session reaches PikPak: its hosts, CA and proxy, as the platform's client."""
    return http.Connection(
        user_api=user_api,
        drive_api=drive_api,
        user_agent=platform.user_agent,
        ca_cert=ca_cert,
        pool_size=pool_size,
        proxy=proxy,
    )


def share_source(
    config: Config,
    mount: MountConfig,
    own_drive: Callable[[AccountConfig], tuple[DriveSource, CdnSession]] | None = None,
    session: Session | None = None,
) -> ShareSource:
    """The source of a share mount (``share:``); ``own_drive`` gives the drive of the
    ``save_to`` account."""
    session = session or share_session(config, mount, config.server.threads)
    link = parse_share_link(mount.share)
    folder = SharedFolder(
        session, link.share_id, link.pass_code if mount.pass_code is None else mount.pass_code
    )
    saver = None
    if mount.save_to and own_drive is not None:
        drive = own_drive(config.accounts[mount.save_to])[0].drive
        saver = ShareSaver(folder, drive, mount.save_folder)
    return ShareSource(
        mount.name,
        folder,
        root_id=mount.root_folder_id or link.folder_id,
        transcoded=mount.use_transcoding_address,
        saver=saver,
    )


def share_mount(
    config: Config,
    mount: MountConfig,
    own_drive: Callable[[AccountConfig], tuple[DriveSource, CdnSession]],
    memory: MemoryBudget | None = None,
    *,
    cache: BlockCache | None = None,
    disk: DiskCache | None = None,
) -> Mount:
    """A read-only mount of one share link, or of the shares of a list file; ``memory``: the
    gateway's memory budget its streams and caches hold within, ``cache``: the block cache
    streams share, ``disk``: the disk cache."""
    session = share_session(config, mount, config.server.threads)
    source: ShareSource | ShareListSource
    if mount.share_list is not None:
        source = share_list_source(mount, session)
        root_id = ""
    else:
        source = share_source(config, mount, own_drive, session)
        root_id = source.root_id
    cdn = http.cdn_session(session.connection)
    # A share's links are on PikPak's download hosts too: download_domain and cdn_node apply.
    route = link_route(mount, config.account_for(mount) if mount.account else mount, cdn)
    if route is not None:
        route.start()
    return Mount(
        mount.name,
        source,
        reading=Reading(
            cdn,
            route=route,
            # A share's links are throttled as an own drive's are: its streams get segments
            # too, within a budget of their own (the share is read without an account).
            streams=Streams(cache=cache, memory=memory),
            plan=SegmentPlan(connections=mount.stream_connections),
            disk=disk,
            disk_scope=f"{mount.name}|{mount.share or mount.share_list}|{root_id}",
            same_bytes_by_hash=not mount.use_transcoding_address,
        ),
        root_id=root_id,
        listing_ttl=mount.listing_ttl,
        finder_hints=mount.finder_hints,
    )


def share_list_source(mount: MountConfig, session: Session) -> ShareListSource:
    """The source of a ``share_list`` mount: its shares read through one anonymous session."""
    assert mount.share_list is not None
    return ShareListSource(
        mount.name,
        mount.share_list,
        lambda entry: SharedFolder(session, entry.link.share_id, entry.link.pass_code),
    )


def cluster_of(mounts: list[Mount]) -> Cluster | None:
    """The Redis state the mounts share with other instances (None: one instance alone);
    ``.status()`` says whether it answers, for the status page."""
    return next((m.cluster for m in mounts if m.cluster is not None), None)


def memory_budget(mounts: list[Mount]) -> MemoryBudget | None:
    """The memory budget the mounts' streams and caches hold within (one for all)."""
    return next((m.reading.memory for m in mounts if m.reading.memory is not None), None)


def build_app(config: Config, mounts: list[Mount]) -> Callable:
    """The WSGI application serving ``mounts`` with the config's users and policies."""
    return build_app_and_metrics(config, mounts)[0]


def build_app_and_metrics(config: Config, mounts: list[Mount]) -> tuple[Callable, Metrics]:
    """The application (see `build_app`) and its metrics, for ``server.metrics_addr``."""
    policies = {
        settings.name: download_policy(settings, config.server.trusted_proxies)
        for settings in config.mounts
    }
    accounts = {}
    for mount in mounts:
        session = mount.source.signed_in_session()
        if session is not None:
            accounts.setdefault(session.name, session)
    status = StatusSources(
        accounts=accounts,
        mounts=mounts,
        policies=policies,
        account_of={settings.name: settings.account for settings in config.mounts},
        cluster=cluster_of(mounts),
        memory=memory_budget(mounts),
    )
    metrics = Metrics(status)
    if config.notify.webhook:
        notify_to(Webhook(config.notify.webhook), accounts, mounts)
    caps = RequestCaps(
        per_user=config.server.requests_per_user, per_address=config.server.requests_per_address
    )
    app = build_dav_app(
        mounts, policies, config.auth_settings(), status, metrics, cluster_of(mounts), caps
    )
    return app, metrics


def notify_to(webhook: Webhook, sessions: dict[str, Session], mounts: list[Mount]) -> None:
    """Tell ``webhook`` of the sessions' pauses on sign-ins and of the mounts' background
    uploads that fail for good (see :mod:`pikdav.notify`)."""
    for name, session in sessions.items():

        def told(event: str, *, account: str = name, **fields: Any) -> None:
            if event == "pause_started":
                kind = fields.get("kind", "other")
                webhook.send(pause_event(kind), account=account, message=fields.get("message"))
            elif event == "pause_ended":
                webhook.send(
                    "sign_in_resumed", account=account, message=f"{account}: signed in again"
                )

        session.on_event = told
    for mount in mounts:
        if mount.pending is not None:

            def failed(file: str, attempts: int, reason: str, *, where: str = mount.name) -> None:
                webhook.send(
                    "upload_failed",
                    mount=where,
                    file=file,
                    attempts=attempts,
                    message=f"the background upload of {file} failed for good: {reason}",
                )

            mount.pending.on_failed = failed


def make_metrics_server(config: Config, metrics: Metrics) -> Server | None:
    """The server of ``/metrics`` alone on ``server.metrics_addr`` (None when not set)."""
    if config.server.metrics_addr is None:
        return None
    server = Server(config.server.metrics_addr, MetricsOnly(metrics), numthreads=2)
    server.max_request_body_size = 1 << 16
    return server


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
        max_threads=config.server.max_threads,
    )
    server.send_timeout = config.server.send_timeout
    server.max_request_body_size = 0  # uploads are bounded by server.max_upload_size
    if config.server.tls_cert:
        server.use_tls(str(config.server.tls_cert), str(config.server.tls_key))
    return server
