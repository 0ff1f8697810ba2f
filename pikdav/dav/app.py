"""The WSGI application: WsgiDAV over the mounts, inside the layers of ours around it.

From the outside in: the front door (see :mod:`.frontdoor`: bad requests, HEAD, errors, the
stop, one log line per request), ``/healthz`` (no login), the check of every path a request
carries (see :mod:`.paths`), the ``Allow`` header on a 405, then WsgiDAV with our error
answers, the ban on password guessing, Basic authentication and the provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wsgidav import util as wsgidav_util
from wsgidav.dav_error import DAVError
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from pikdav.vfs.cluster import Cluster
from pikdav.vfs.mount import Mount

from .auth import (
    DAV_WRITE_METHODS,
    AuthSettings,
    BasicAuthenticator,
    LoginThrottle,
    PikdavDomainController,
)
from .deadprops import CappedPropertyManager
from .frontdoor import (
    ErrorAnswers,
    FrontDoor,
    plain_answer,
    plain_status_pages,
    quiet_client_errors,
)
from .limits import RequestCaps, RequestSlots
from .locks import SafeLockStorage
from .metrics import Metrics
from .paths import check_request
from .policy import DownloadPolicy
from .provider import GatewayProvider
from .status import StatusPages, StatusSources

BLOCK_SIZE = 1 << 20  # WsgiDAV's read size for GET bodies and PUT uploads
_READ_METHODS = "OPTIONS, HEAD, GET, PROPFIND"


def build_dav_app(
    mounts: list[Mount],
    policies: Mapping[str, DownloadPolicy],
    auth: AuthSettings,
    status: StatusSources | None = None,
    metrics: Metrics | None = None,
    cluster: Cluster | None = None,
    caps: RequestCaps | None = None,
) -> Callable:
    """The whole application for ``mounts`` (each with its download policy in ``policies``)
    and the DAV users of ``auth``; ``status``: what the admins' status page shows;
    ``metrics``: counted here, and served to admins at ``/metrics`` unless a mount has
    that name; with ``cluster``, locks, dead properties and bans are kept on the Redis that
    several instances share (see :mod:`.shared`); ``caps``: requests one user or address
    may have running at once (see :mod:`.limits`)."""
    provider = GatewayProvider(mounts, policies, status.transfers if status else None)
    state: dict[str, Any] = {
        "lock_storage": SafeLockStorage(),
        "property_manager": CappedPropertyManager(),
    }
    pikdav: dict[str, Any] = {
        "auth": auth,
        "caps": caps or RequestCaps(),
        "status": status,
        "metrics": metrics if "metrics" not in {m.name.casefold() for m in mounts} else None,
    }
    if cluster is not None:
        # Only a gateway with a Redis imports what keeps DAV state there (and the package).
        from .cluster import cluster_dav_state, cluster_locks

        on_redis = cluster_dav_state(cluster, auth.login_failures)
        logins = on_redis.pop("failed_logins")
        logins.lift_requests, logins.behind_proxy = auth.lift_requests, bool(auth.trusted_proxies)
        pikdav["failed_logins"] = logins
        pikdav["csrf_key"] = on_redis.pop("csrf_key")
        state = on_redis
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
            "middleware_stack": [
                ErrorAnswers,
                LoginThrottle,
                BasicAuthenticator,
                RequestSlots,
                StatusPages,
                RequestResolver,
            ],
            "pikdav": pikdav,
            **state,
            "dir_browser": {"enable": False},
            "block_size": BLOCK_SIZE,
            "hotfixes": {"emulate_win32_lastmod": True},
            "add_header_MS_Author_Via": True,
            "suppress_version_info": True,
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    if cluster is not None:
        cluster_locks(dav, provider)
    # WsgiDAV puts its version into error pages; say only its name.
    wsgidav_util.public_wsgidav_info = "WsgiDAV"
    allow = (
        _READ_METHODS if provider.is_readonly() else ", ".join((_READ_METHODS, *DAV_WRITE_METHODS))
    )
    quiet_client_errors()
    plain_status_pages()
    app = FrontDoor(Healthz(PathCheck(AllowOn405(dav, allow))), auth.trusted_proxies)
    return metrics.counting(app) if metrics is not None else app


class Healthz:
    """``GET /healthz`` → 200 without a login, for Docker and load balancers."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            return plain_answer(start_response, 200, "ok")
        return self.app(environ, start_response)


class PathCheck:
    """A path that is not a valid DAV path (see :mod:`.paths`: a ``..`` or ``.`` segment, also
    ``%2e%2e``, that WsgiDAV would fold into another place; control characters; not UTF-8),
    in the request line or in a header, is refused before WsgiDAV sees it."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            check_request(environ)
        except DAVError as exc:
            return plain_answer(start_response, exc.value, str(exc.context_info))
        return self.app(environ, start_response)


class AllowOn405:
    """A 405 says which methods are allowed (RFC 9110 §15.5.6)."""

    def __init__(self, app: Callable, allow: str) -> None:
        self.app = app
        self.allow = allow

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def with_allow(status: str, headers: list, exc_info: Any = None):
            if status.startswith("405") and not any(k.lower() == "allow" for k, _ in headers):
                headers = [*headers, ("Allow", self.allow)]
            if exc_info:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, with_allow)
