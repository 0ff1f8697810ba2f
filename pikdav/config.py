"""The YAML configuration: read once, checked completely, and turned into frozen dataclasses.

Every mistake is a `ConfigError` whose message names the file, the key and the problem, for example
``config.yaml: mounts[1].download: must be one of redirect, proxy, auto (got 'redir')``. Unknown
keys are mistakes too. ``${NAME}`` in a string is replaced from the environment
(``${NAME:-default}`` gives a default, ``$${`` a literal ``${``). See `config.example.yaml`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .configfile import Checker, ConfigError, fields, join, read_yaml, split_url
from .dav.auth import AuthSettings, DavUser, LoginFailures, parse_password_hash
from .dav.policy import DEFAULT_FORCE_PROXY_USER_AGENTS, MODES, IPAddress, IPNetwork, parse_ip
from .pikpak.http import API_DOMAIN, DRIVE_API, NO_PROXY, PROXY_SCHEMES, USER_API, api_hosts
from .pikpak.identity import PLATFORMS
from .pikpak.links import AUTO, KEEP, OFF
from .pikpak.memory import MEMORY_BUDGET
from .pikpak.segments import (
    ACCOUNT_CONNECTIONS,
    LINK_CONNECTIONS,
    STREAM_CACHE,
    STREAM_CONNECTIONS,
)
from .pikpak.shares import parse_share_link
from .pikpak.tokenstore import MEMORY, store_kind
from .pikpak.types import LINK_KINDS, ORIGINAL
from .vfs.disk import DISK_SIZE, SERVE_STALE_FOR
from .vfs.offline import LINKS_PER_FILE, LINKS_PER_MINUTE
from .vfs.sidefiles import FINDER_METADATA, KEEP_LOCAL
from .vfs.tree import LISTING_TTL

__all__ = ["Config", "ConfigError", "load_config", "parse_config", "prepare_state_dir"]

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "~/.local/state/pikdav"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    threads: int = 64
    trusted_proxies: tuple[IPNetwork, ...] = ()
    anonymous: bool = False
    anonymous_on_public_bind: bool = False
    max_upload_size: int | None = None  # bytes
    temp_dir: Path | None = None
    login_failures: LoginFailures = field(default_factory=LoginFailures)
    metrics_addr: tuple[str, int] | None = None  # /metrics without a login on this address
    stream_cache: int = STREAM_CACHE  # bytes of recently streamed pieces kept; 0: none
    max_threads: int | None = None  # the pool grows up to this while all threads are busy
    requests_per_user: int = 64  # requests one DAV user may have running at once
    requests_per_address: int = 128  # ... and one client address
    send_timeout: float = 300.0  # seconds a client may read nothing before it is dropped
    # bytes held on purpose in all: read-ahead of streams, the block cache, listing caches
    memory_budget: int = MEMORY_BUDGET


@dataclass(frozen=True)
class AccountConfig:
    name: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    platform: str = "web"
    token_store: str | None = field(default=None, repr=False)  # None: a file in state_dir/tokens
    user_api: str = ""  # empty: user.<api_domain>
    drive_api: str = ""  # empty: api-drive.<api_domain>
    ca_cert: Path | None = None
    api_domain: str = API_DOMAIN
    proxy: str | None = field(default=None, repr=False)  # a URL, "none", None: environment

    def __post_init__(self) -> None:
        user_api, drive_api = api_hosts(self.api_domain)
        object.__setattr__(self, "user_api", self.user_api or user_api)
        object.__setattr__(self, "drive_api", self.drive_api or drive_api)

    cdn_connections: int = ACCOUNT_CONNECTIONS  # at once to PikPak's download servers


@dataclass(frozen=True)
class MountConfig:
    name: str
    account: str
    root_folder_id: str = ""
    download: str = "auto"
    redirect_networks: tuple[IPNetwork, ...] = ()
    public_ip: IPAddress | None = None
    force_proxy_user_agents: tuple[str, ...] = DEFAULT_FORCE_PROXY_USER_AGENTS
    force_redirect_user_agents: tuple[str, ...] = ()
    use_trash: bool = True
    finder_metadata: str = KEEP_LOCAL
    background_uploads: bool = False
    read_only: bool = False
    listing_ttl: float = LISTING_TTL
    link: str = ORIGINAL  # which of a file's links is read (LINK_KINDS)
    download_domain: str = KEEP  # or a domain links' hosts are moved to
    cdn_node: str = OFF  # auto: the fastest node that answers; or a node's name or host
    cdn_nodes: tuple[str, ...] = ()  # probed with auto, beside those in pikpak/cdn_nodes.txt
    offline_folder: str | None = None  # where offline downloads land (None: "My Pack")
    offline_links_per_file: int = LINKS_PER_FILE  # tasks one file dropped there may start
    offline_links_per_minute: int = LINKS_PER_MINUTE  # tasks a user may start there a minute
    # A share mount (read-only, read without a login): a share link, or a file of them.
    share: str = ""
    share_list: Path | None = None
    pass_code: str | None = field(default=None, repr=False)  # None: the link's ?pwd=
    use_transcoding_address: bool = False
    save_to: str = ""  # an account whose drive keeps copies of the share's files
    save_folder: str = ""  # where in that drive ("" until checked: pikdav shares/<name>)
    # A share mount's connection settings, when no ``account`` gives them.
    platform: str = "web"
    user_api: str = USER_API
    drive_api: str = DRIVE_API
    ca_cert: Path | None = None
    stream_connections: int = STREAM_CONNECTIONS  # per proxied stream; 1: one connection
    finder_hints: bool = True  # Finder's hint files at the mount's root (see pikdav.dav.clients)

    @property
    def is_share(self) -> bool:
        return bool(self.share or self.share_list)


# Keys only a share mount takes, and keys only a mount of an own drive takes.
_SHARE_KEYS = ("pass_code", "use_transcoding_address", "save_to", "save_folder")
_CONNECTION_KEYS = ("platform", "user_api", "drive_api", "ca_cert")
_DRIVE_ONLY_KEYS = (
    "use_trash",
    "background_uploads",
    "finder_metadata",
    "offline_folder",
    "offline_links_per_file",
    "offline_links_per_minute",
    # Links of a share are read as PikPak gives them (its media links; see the README).
    "link",
)


UserConfig = DavUser  # a DAV user is what pikdav.dav.auth checks logins against


@dataclass(frozen=True)
class NotifyConfig:
    webhook: str | None = field(default=None, repr=False)  # its URL may carry a token


@dataclass(frozen=True)
class CacheConfig:
    dir: Path | None = None  # None: state_dir/cache
    disk_size: int = DISK_SIZE  # bytes; 0: no disk cache
    serve_stale_for: float = SERVE_STALE_FOR  # seconds


@dataclass(frozen=True)
class Config:
    source: str
    server: ServerConfig
    state_dir: Path
    accounts: Mapping[str, AccountConfig]
    mounts: tuple[MountConfig, ...]
    users: Mapping[str, UserConfig]
    notify: NotifyConfig = NotifyConfig()
    cache: CacheConfig = CacheConfig()
    # The Redis several instances share (redis://, rediss://, unix://); None: one instance.
    redis: str | None = field(default=None, repr=False)

    @property
    def cache_dir(self) -> Path:
        """Where the disk cache lives."""
        return self.cache.dir or self.state_dir / "cache"

    @property
    def tokens_dir(self) -> Path:
        return self.state_dir / "tokens"

    def mount(self, name: str) -> MountConfig:
        for mount in self.mounts:
            if mount.name == name:
                return mount
        raise KeyError(name)

    def account_for(self, mount: MountConfig | str) -> AccountConfig:
        """The account a mount reads (for a share mount: the one its connection settings
        come from; KeyError when it names none)."""
        if isinstance(mount, str):
            mount = self.mount(mount)
        return self.accounts[mount.account]

    def token_path(self, account: AccountConfig | str) -> Path:
        """Where the account's tokens are kept when its `token_store` is not Redis."""
        name = account if isinstance(account, str) else account.name
        return self.tokens_dir / f"{name}.json"

    def auth_settings(self) -> AuthSettings:
        """Who may log in to the DAV server, and the ban on guessing (`pikdav.dav.auth`)."""
        return AuthSettings(
            users=self.users,
            mounts=tuple(mount.name for mount in self.mounts),
            anonymous=self.server.anonymous,
            login_failures=self.server.login_failures,
            trusted_proxies=self.server.trusted_proxies,
            lift_requests=self.state_dir / "lift-bans",  # from `pikdav bans lift`
        )


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and check a YAML config file. Relative paths in it are relative to its folder."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty (see config.example.yaml)")
    return parse_config(data, str(path), env, base_dir=Path(path).parent)


def prepare_state_dir(config: Config) -> None:
    """Make ``state_dir`` (and ``cache.dir``, when the disk cache is on) if it does not exist
    yet, and see that files can be written in it; a `ConfigError` naming the file, the key
    and the problem otherwise (at start, not at the first request that needs it)."""
    folders = [("state_dir", config.state_dir)]
    if config.cache.disk_size:
        folders.append(("cache.dir", config.cache_dir))
    for key, where in folders:
        problem = f"{config.source}: {key}: {where}"
        if where.exists() and not where.is_dir():
            raise ConfigError(f"{problem} is not a folder (a file has that name)")
        try:
            where.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.TemporaryFile(dir=where):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"{problem} cannot be created or written to ({reason})") from None


def parse_config(
    data: Any,
    source: str,
    env: Mapping[str, str] | None = None,
    *,
    base_dir: Path | None = None,
) -> Config:
    """Check configuration data (as loaded from YAML); `source` names it in error messages."""
    reader = _Reader(source, os.environ if env is None else env, base_dir)
    return reader.config(reader.substitute(data, ""))


# --- checking ------------------------------------------------------------------------------------

_MOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _redis_url(text: str) -> bool:
    """A Redis URL that can be read (redis-py's own parsing raises on an unclosed ``[``)."""
    return store_kind(text) == "redis" and split_url(text) is not None


_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # also a file name in state_dir/tokens
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")
_NODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_USER_NAME = re.compile(r"[^:\x00-\x1f\x7f]+")  # Basic auth ends the user name at the first ':'


class _Reader(Checker):
    """Turns the loaded YAML tree into a `Config`, raising `ConfigError` at the first mistake."""

    def ip(self, path: str, value: Any) -> IPAddress | None:
        text = self.string(path, value, optional=True)
        if text is None:
            return None
        try:
            ipaddress.ip_address(text)  # strict: no port, no brackets
        except ValueError:
            raise self.fail(
                path, f"must be an IP address such as 203.0.113.7{self.got(path, value)}"
            ) from None
        return parse_ip(text)  # an IPv4-mapped IPv6 address becomes IPv4

    def stream_cache(self, path: str, value: Any) -> int:
        if value in (0, None, False):
            return 0
        size = self.size(path, value)
        assert size is not None
        return size

    def memory_budget(self, path: str, value: Any) -> int:
        size = self.size(path, value)
        if size is None or size < 1 << 20:
            raise self.fail(path, f"must be a size of at least 1M{self.got(path, value)}")
        return size

    # -- sections --

    def config(self, data: Any) -> Config:
        top = self.mapping(
            "",
            data,
            ("server", "state_dir", "accounts", "mounts", "users", "notify", "redis", "cache"),
        )
        server = self.server(top.get("server"))
        state_dir = self.path("state_dir", top.get("state_dir", DEFAULT_STATE_DIR))
        assert state_dir is not None
        redis = self.redis(top.get("redis"))

        raw_mounts = self.items("mounts", top.get("mounts"))
        shares_only = bool(raw_mounts) and all(
            isinstance(m, dict) and ("share" in m or "share_list" in m) for m in raw_mounts
        )
        if not top.get("accounts") and not shares_only:
            # Share mounts are read without a login; a drive needs its account.
            raise self.fail("accounts", "at least one PikPak account is required")
        accounts = {
            name: self.account(join("accounts", name), name, value, redis)
            for name, value in self.named(
                "accounts", top.get("accounts") or {}, _ACCOUNT_NAME, "letters, digits, - _ ."
            ).items()
        }

        if not raw_mounts:
            raise self.fail("mounts", "at least one mount is required")
        mounts: list[MountConfig] = []
        for i, value in enumerate(raw_mounts):
            mount = self.mount(join("mounts", i), value, accounts)
            for j, other in enumerate(mounts):
                if other.name.casefold() == mount.name.casefold():
                    raise self.fail(
                        join(join("mounts", i), "name"),
                        f"{mount.name!r} is already the name of mounts[{j}]"
                        " (names are compared ignoring case)",
                    )
            mounts.append(mount)

        users_data = top.get("users")
        if not users_data and not server.anonymous:
            raise self.fail(
                "users", "at least one user is required (or set server.anonymous: true)"
            )
        users = {
            name: self.user(join("users", name), name, value, mounts)
            for name, value in self.named(
                "users", users_data or {}, _USER_NAME, "any character but ':'"
            ).items()
        }
        return Config(
            source=self.source,
            server=server,
            state_dir=state_dir,
            accounts=MappingProxyType(accounts),
            mounts=tuple(mounts),
            users=MappingProxyType(users),
            notify=self.notify(top.get("notify")),
            cache=self.cache(top.get("cache")),
            redis=redis,
        )

    def cache(self, value: Any) -> CacheConfig:
        data = self.mapping("cache", value, CacheConfig.__dataclass_fields__)
        size = data.get("disk_size", DISK_SIZE)
        return CacheConfig(
            dir=self.path("cache.dir", data.get("dir")),
            disk_size=0 if size in (0, False) else self.size("cache.disk_size", size) or 0,
            serve_stale_for=self.duration("cache.serve_stale_for", data.get("serve_stale_for")),
        )

    def duration(self, path: str, value: Any) -> float:
        """Seconds, or a number with s, m, h or d (``7d``); None: the default."""
        if value is None:
            return SERVE_STALE_FOR
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
            return float(match.group(1)) * units[match.group(2) or "s"]
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        raise self.fail(path, f"must be seconds, or like '12h' or '7d'{self.got(path, value)}")

    def notify(self, value: Any) -> NotifyConfig:
        data = self.mapping("notify", value, NotifyConfig.__dataclass_fields__)
        url = self.string("notify.webhook", data.get("webhook"), optional=True)
        if url is not None:
            parts = split_url(url)
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                # The URL itself is not repeated: it may carry a token.
                raise self.fail("notify.webhook", "must be an http:// or https:// URL")
        return NotifyConfig(webhook=url)

    def redis(self, value: Any) -> str | None:
        url = self.string("redis", value, optional=True)
        if url is not None and not _redis_url(url):
            raise self.fail(
                "redis",
                "must be a redis://host:port/db, rediss://host:port/db or "
                "unix:///path/to/redis.sock URL (or null for a single instance)",
            )
        return url

    def server(self, value: Any) -> ServerConfig:
        keys = ServerConfig.__dataclass_fields__
        data = self.mapping("server", value, keys)
        key = fields("server", data, ServerConfig())
        host = self.string(*key("host"))
        tls_cert = self.path(*key("tls_cert"), must_be="file")
        tls_key = self.path(*key("tls_key"), must_be="file")
        if bool(tls_cert) != bool(tls_key):
            missing = "tls_key" if tls_cert else "tls_cert"
            raise self.fail(
                f"server.{missing}", "tls_cert and tls_key go together: give both or neither"
            )
        anonymous = self.boolean(*key("anonymous"))
        on_public = self.boolean(*key("anonymous_on_public_bind"))
        if anonymous and not on_public and not _is_loopback(host):
            raise self.fail(
                "server.anonymous",
                f"anonymous access on host {host!r} would let anyone who can reach this address "
                "read your PikPak drive without a password; bind to 127.0.0.1, add users, or set "
                "server.anonymous_on_public_bind: true if that is really what you want",
            )
        failures = self.mapping(
            "server.login_failures", data.get("login_failures"), ("max", "window", "ban")
        )
        limit = fields("server.login_failures", failures, LoginFailures())
        threads = self.integer(*key("threads"), 1, 1024)
        return ServerConfig(
            host=host,
            port=self.integer(*key("port"), 0, 65535),
            tls_cert=tls_cert,
            tls_key=tls_key,
            threads=threads,
            trusted_proxies=self.networks(*key("trusted_proxies")),
            anonymous=anonymous,
            anonymous_on_public_bind=on_public,
            max_upload_size=self.size(*key("max_upload_size")),
            temp_dir=self.path(*key("temp_dir"), must_be="folder"),
            stream_cache=self.stream_cache(*key("stream_cache")),
            memory_budget=self.memory_budget(*key("memory_budget")),
            login_failures=LoginFailures(
                max=self.integer(*limit("max"), 0),
                window=self.integer(*limit("window"), 1),
                ban=self.integer(*limit("ban"), 1),
            ),
            metrics_addr=self._address(*key("metrics_addr")),
            max_threads=self._max_threads(*key("max_threads"), threads),
            requests_per_user=self.integer(*key("requests_per_user"), 1),
            requests_per_address=self.integer(*key("requests_per_address"), 1),
            send_timeout=self.number(*key("send_timeout"), 1),
        )

    def _max_threads(self, path: str, value: Any, threads: int) -> int:
        """Up to 1024, not below ``threads``; not given: four times ``threads``."""
        if value is None:
            return min(4 * threads, 1024)
        return self.integer(path, value, threads, 1024)

    def _address(self, path: str, value: Any) -> tuple[str, int] | None:
        """``host:port`` (``[::1]:port`` for IPv6); the host is required, so that metrics
        served without a login are never on every interface by accident."""
        text = self.string(path, value, optional=True)
        if text is None:
            return None
        host, _, port = text.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or int(port) > 65535:
            raise self.fail(
                path, "must be host:port such as 127.0.0.1:9100" + self.got(path, value)
            )
        return host, int(port)

    def account(self, path: str, name: str, value: Any, redis: str | None = None) -> AccountConfig:
        """One account; without a ``token_store`` of its own, its tokens (and its pause on
        signing in) live in the shared ``redis`` when there is one."""
        keys = [k for k in AccountConfig.__dataclass_fields__ if k != "name"]
        data = self.mapping(path, value, keys)
        key = fields(path, data, AccountConfig(name))
        username = self.string(*key("username"), optional=True)
        refresh_token = self.string(*key("refresh_token"), optional=True)
        if username is None and refresh_token is None:
            raise self.fail(
                join(path, "username"), "is required (or give a refresh_token to log in with)"
            )
        token_store = self.string(*key("token_store"), optional=True)
        if token_store is not None and (
            store_kind(token_store) == "file"
            or (store_kind(token_store) == "redis" and not _redis_url(token_store))
        ):
            raise self.fail(
                join(path, "token_store"),
                "must be null (a file in state_dir/tokens), a redis://host:port/db URL, or "
                f"'{MEMORY}' (nothing kept: a new sign-in at every start)",
            )
        return AccountConfig(
            name=name,
            username=username,
            password=self.string(*key("password"), optional=True),
            refresh_token=refresh_token,
            platform=self.choice(*key("platform"), PLATFORMS),
            token_store=token_store if token_store is not None else redis,
            user_api=self.url(*key("user_api")) if data.get("user_api") is not None else "",
            drive_api=self.url(*key("drive_api")) if data.get("drive_api") is not None else "",
            ca_cert=self.path(*key("ca_cert"), must_be="file"),
            api_domain=self.domain(*key("api_domain")),
            proxy=self.proxy(*key("proxy")),
            cdn_connections=self.integer(*key("cdn_connections"), 1, 64),
        )

    def domain(self, path: str, value: Any) -> str:
        text = self.string(path, value).strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(text):
            raise self.fail(
                path,
                "must be a domain name such as mypikpak.com or mypikpak.net"
                + self.got(path, value),
            )
        return text

    def proxy(self, path: str, value: Any) -> str | None:
        """A proxy URL, or "none"; an error never repeats the URL (it may hold a password)."""
        text = self.string(path, value, optional=True)
        if text is None or text.strip().lower() == NO_PROXY:
            return None if text is None else NO_PROXY
        parts = split_url(text)
        if parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
            raise self.fail(
                path,
                "must be none or a proxy URL such as http://host:3128, socks5://host:1080 or "
                "socks5h://user:password@host:1080 (schemes: " + ", ".join(PROXY_SCHEMES) + ")",
            )
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise self.fail(path, "must be a proxy URL without a path (scheme://host:port)")
        return text.strip()

    def mount(self, path: str, value: Any, accounts: Mapping[str, AccountConfig]) -> MountConfig:
        data = self.mapping(path, value, MountConfig.__dataclass_fields__)
        if "name" not in data:
            raise self.fail(join(path, "name"), "is required (the mount's folder at the root)")
        name = self.string(join(path, "name"), data["name"])
        if not _MOUNT_NAME.fullmatch(name) or name in (".", ".."):
            raise self.fail(
                join(path, "name"), f"may contain letters, digits, - _ . only (got {name!r})"
            )
        if name.casefold() == "_pikdav":
            raise self.fail(join(path, "name"), "_pikdav is pikdav's own (the status page)")
        key = fields(path, data, MountConfig(name, ""))
        if "share" in data or "share_list" in data:
            return self.share_mount(path, name, data, accounts)
        for only in (*_SHARE_KEYS, *_CONNECTION_KEYS):
            if only in data:
                where = "on the account" if only in _CONNECTION_KEYS else "with share:"
                raise self.fail(join(path, only), f"is a key of share mounts only (set it {where})")
        if "account" not in data and len(accounts) == 1:
            account = next(iter(accounts))
        else:
            account = self.string(*key("account"))
            if account not in accounts:
                raise self.fail(
                    join(path, "account"),
                    f"no account is named {account!r} (accounts: {', '.join(accounts)})",
                )
        return MountConfig(
            name=name,
            account=account,
            **self._mount_common(path, key),
            use_trash=self.boolean(*key("use_trash")),
            read_only=self.boolean(*key("read_only")),
            finder_metadata=self.choice(*key("finder_metadata"), FINDER_METADATA),
            background_uploads=self.boolean(*key("background_uploads")),
            link=self.choice(*key("link"), LINK_KINDS),
            offline_folder=self._offline_folder(*key("offline_folder")),
            offline_links_per_file=self.integer(*key("offline_links_per_file"), 1),
            offline_links_per_minute=self.integer(*key("offline_links_per_minute"), 1),
        )

    def _mount_common(self, path: str, key: Callable[[str], tuple[str, Any]]) -> dict[str, Any]:
        """What a mount of an own drive and a share mount read alike (their defaults are
        MountConfig's)."""
        return {
            "root_folder_id": self.string(*key("root_folder_id"), optional=True) or "",
            "download": self.choice(*key("download"), MODES),
            "redirect_networks": self.networks(*key("redirect_networks")),
            "public_ip": self.ip(*key("public_ip")),
            "force_proxy_user_agents": self.strings(*key("force_proxy_user_agents")),
            "force_redirect_user_agents": self.strings(*key("force_redirect_user_agents")),
            "listing_ttl": self.number(*key("listing_ttl"), 0),
            "stream_connections": self.integer(*key("stream_connections"), 1, LINK_CONNECTIONS),
            "download_domain": self.download_domain(*key("download_domain")),
            "cdn_node": self.cdn_node(*key("cdn_node")),
            "cdn_nodes": tuple(
                self.node(join(join(path, "cdn_nodes"), i), n)
                for i, n in enumerate(self.strings(*key("cdn_nodes")))
            ),
            "finder_hints": self.boolean(*key("finder_hints")),
        }

    def download_domain(self, path: str, value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() == KEEP:
            return KEEP
        return self.domain(path, value)

    def cdn_node(self, path: str, value: Any) -> str:
        if value is False:
            return OFF  # YAML reads a bare `off` as false
        text = self.string(path, value)
        if text.strip().lower() in (AUTO, OFF):
            return text.strip().lower()
        return self.node(path, text)

    def node(self, path: str, value: Any) -> str:
        """A CDN node: its name (``dl-a10b-0622``, on the link's domain) or a full host."""
        text = self.string(path, value).strip().lower().rstrip(".")
        if not (_DOMAIN.fullmatch(text) or _NODE.fullmatch(text)):
            raise self.fail(
                path,
                "must be auto, off, a node such as dl-a10b-0622 or a host such as "
                f"dl-a10b-0622.mypikpak.com{self.got(path, value)}",
            )
        return text

    def _offline_folder(self, path: str, value: Any) -> str | None:
        folder = self.string(path, value, optional=True)
        if folder is None:
            return None
        parts = folder.strip("/").split("/")
        if not folder.strip("/") or any(p in ("", ".", "..") for p in parts):
            raise self.fail(
                path,
                "must be a folder path below the mount's root such as Offline"
                + self.got(path, value),
            )
        return "/".join(parts)

    def share_mount(
        self, path: str, name: str, data: Mapping[str, Any], accounts: Mapping[str, AccountConfig]
    ) -> MountConfig:
        """A mount of a share link (``share``) or of a list of them (``share_list``)."""
        key = fields(path, data, MountConfig(name, ""))
        if "share" in data and "share_list" in data:
            raise self.fail(
                join(path, "share_list"), "give share (one link) or share_list (a file), not both"
            )
        for only in _DRIVE_ONLY_KEYS:
            if only in data:
                raise self.fail(
                    join(path, only), "is not a setting of a share mount (read-only); remove it"
                )
        share = self._share_link(path, data, key)
        account = self._share_account(path, data, key, accounts)
        save_to, save_folder = self._save_target(path, name, data, key, accounts)
        given = data.get("pass_code")
        # `pass_code: 1234` unquoted is a number to YAML; a pass code is its digits.
        pass_code = (
            str(given)
            if isinstance(given, int) and not isinstance(given, bool)
            else self.string(*key("pass_code"), optional=True)
        )
        transcoded = self.boolean(*key("use_transcoding_address"))
        common = self._mount_common(path, key)
        if transcoded and common["download"] != "redirect":
            # A transcoded copy has a length of its own that only the CDN knows; the listing
            # shows the original's, so only a client sent to the copy reads it right.
            raise self.fail(
                join(path, "use_transcoding_address"),
                "needs download: redirect (a transcoded copy is shorter than the original "
                "whose size the listing shows)",
            )
        return MountConfig(
            name=name,
            account=account,
            **common,
            read_only=True,
            share=share,
            share_list=self.path(*key("share_list"), must_be="file"),
            pass_code=None if pass_code is None else str(pass_code),
            use_transcoding_address=transcoded,
            save_to=save_to,
            save_folder=save_folder.strip("/"),
            platform=self.choice(*key("platform"), PLATFORMS),
            user_api=self.url(*key("user_api")),
            drive_api=self.url(*key("drive_api")),
            ca_cert=self.path(*key("ca_cert"), must_be="file"),
        )

    def _share_link(
        self, path: str, data: Mapping[str, Any], key: Callable[[str], tuple[str, Any]]
    ) -> str:
        """The checked ``share`` link ("" for a share_list, which takes no key of one share)."""
        if "share" in data:
            share = self.string(*key("share"))
            try:
                parse_share_link(share)
            except ValueError as e:
                raise self.fail(join(path, "share"), str(e)) from None
            return share
        for one in ("pass_code", "root_folder_id", *_SHARE_KEYS):
            if one in data:
                raise self.fail(
                    join(path, one),
                    "belongs to a mount of one share (share:), not to a share_list"
                    + ("; give a pass code after the link" if one == "pass_code" else ""),
                )
        return ""

    def _share_account(
        self,
        path: str,
        data: Mapping[str, Any],
        key: Callable[[str], tuple[str, Any]],
        accounts: Mapping[str, AccountConfig],
    ) -> str:
        """The account a share mount reaches PikPak as ("": none), whose connection settings
        it then takes instead of its own."""
        if "account" not in data:
            return ""
        account = self.string(*key("account"))
        if account not in accounts:
            raise self.fail(
                join(path, "account"),
                f"no account is named {account!r} (accounts: {', '.join(accounts) or 'none'})",
            )
        for own in _CONNECTION_KEYS:
            if own in data:
                raise self.fail(
                    join(path, own),
                    f"the connection settings come from account {account!r}; set them "
                    "there, or drop account:",
                )
        return account

    def _save_target(
        self,
        path: str,
        name: str,
        data: Mapping[str, Any],
        key: Callable[[str], tuple[str, Any]],
        accounts: Mapping[str, AccountConfig],
    ) -> tuple[str, str]:
        """``save_to`` (the account whose drive keeps saved files, "" for none) and the
        ``save_folder`` there."""
        save_to = self.string(*key("save_to"), optional=True) or ""
        if save_to and save_to not in accounts:
            raise self.fail(
                join(path, "save_to"),
                f"must name an account whose drive keeps the saved files (accounts: "
                f"{', '.join(accounts) or 'none'})",
            )
        if "save_folder" in data and not save_to:
            raise self.fail(join(path, "save_folder"), "goes with save_to: <account>")
        save_folder = self.string(*key("save_folder"), optional=True) or f"pikdav shares/{name}"
        if any(part in (".", "..") for part in save_folder.split("/")):
            raise self.fail(join(path, "save_folder"), "must be a folder path such as 'a/b'")
        return save_to, save_folder

    def user(self, path: str, name: str, value: Any, mounts: list[MountConfig]) -> UserConfig:
        data = self.mapping(path, value, ("password_hash", "mounts", "read_only", "admin"))
        hash_path = join(path, "password_hash")
        if "password_hash" not in data:
            raise self.fail(hash_path, "is required (make one with `pikdav hash-password`)")
        password_hash = self.string(hash_path, data["password_hash"])
        try:
            parse_password_hash(password_hash)
        except ValueError as e:
            raise self.fail(
                hash_path, f"is not a hash pikdav can check: {e} (use `pikdav hash-password`)"
            ) from None
        names = {m.name.casefold(): m.name for m in mounts}
        allowed = self.strings(join(path, "mounts"), data.get("mounts", ["*"]))
        for i, mount in enumerate(allowed):
            if mount != "*" and mount.casefold() not in names:
                raise self.fail(
                    join(join(path, "mounts"), i),
                    f"no mount is named {mount!r} (mounts: {', '.join(names.values())}; "
                    "'*' means all)",
                )
        return UserConfig(
            name=name,
            password_hash=password_hash,
            mounts=allowed,
            read_only=self.boolean(join(path, "read_only"), data.get("read_only", False)),
            admin=self.boolean(join(path, "admin"), data.get("admin", False)),
        )


def _is_loopback(host: str) -> bool:
    if host.casefold() == "localhost":
        return True
    address = parse_ip(host)
    return address is not None and address.is_loopback
