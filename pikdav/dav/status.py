"""The status page at ``/_pikdav/``: what the gateway is doing, for its admins.

A browser gets one HTML page (rendered here, readable without JavaScript, reloading itself):
each account's login (from its session: token, refreshes, the pause on sign-ins and what to
do), quota and mounts, transfers in progress, background uploads, offline downloads and the
addresses banned for password guessing. Every button is a form that POSTs with a CSRF token;
its answer is the page again with a notice on top. Only users with ``admin: true`` see it;
anyone else who logged in gets 403.

The state shown is read from where it lives (the session, the mount and its waiting uploads,
the `FailedLogins` of the ban, the transfer registry); the page keeps none of its own. No
secret reaches it: no token, password or signed URL. The one exception is the page of a human
check, which carries a captcha token: it is shown only in the answer to the admin's own
"sign in now", as `pikdav login` prints it to the terminal of the person who asked.

Wiring: `StatusPages` goes into WsgiDAV's ``middleware_stack`` right after the authenticator,
with a `StatusSources` as ``config["pikdav"]["status"]``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from wsgidav.mw.base_mw import BaseMiddleware

from pikdav.pikpak.errors import HumanCheckRequired, PikPakError
from pikdav.pikpak.memory import MemoryBudget
from pikdav.pikpak.types import Quota
from pikdav.vfs.cluster import Cluster, ClusterStatus
from pikdav.vfs.errors import MountError
from pikdav.vfs.mount import Mount

from .auth import REALM, AuthSettings, failed_logins
from .frontdoor import html_answer, plain_answer
from .logtext import client_text
from .policy import DownloadPolicy, request_client
from .transfers import Transfer, Transfers

log = logging.getLogger(__name__)

PREFIX = "/_pikdav/"
REFRESH_SECONDS = 10  # how often the page reloads itself
MAX_FORM = 64 * 1024  # bytes: a form of this page is far smaller


class Account(Protocol):
    """What the page needs of an account's session (`pikdav.pikpak.session.Session`)."""

    name: str
    on_exchange: Callable[[str, str, str, float], None] | None  # told of every PikPak call

    def health(self) -> Any: ...

    def login(self) -> Any: ...

    def sign_in_with_captcha(self, captcha_token: str) -> Any: ...


@dataclass
class StatusSources:
    """Where the page reads its state: the accounts' sessions by name, the mounts with their
    download policies, and the transfers in progress."""

    accounts: Mapping[str, Account]
    mounts: list[Mount]
    policies: Mapping[str, DownloadPolicy]
    transfers: Transfers = field(default_factory=Transfers)
    account_of: Mapping[str, str] = field(default_factory=dict)  # mount name → account name
    cluster: Cluster | None = None  # the Redis several instances share, if any
    memory: MemoryBudget | None = None  # what streams and caches hold within


_templates = Environment(
    loader=PackageLoader("pikdav.dav", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class StatusPages(BaseMiddleware):
    """``/_pikdav/`` for admins (see the module docstring); everything else passes on."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        settings = config["pikdav"]
        self.sources: StatusSources | None = settings.get("status")
        self.auth: AuthSettings = settings["auth"]
        self.bans = failed_logins(config)
        self.metrics = settings.get("metrics")  # pikdav.dav.metrics.Metrics, or None
        # A callable giving the key CSRF tokens are signed with: the instances' shared one
        # on Redis (see :class:`pikdav.dav.cluster.cluster_dav_state`), or this process's own.
        own = secrets.token_bytes(32)
        self._csrf_key: Callable[[], bytes] = settings.get("csrf_key") or (lambda: own)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        metrics = path == "/metrics" and self.metrics is not None
        if path != PREFIX.rstrip("/") and not path.startswith(PREFIX) and not metrics:
            return self.next_app(environ, start_response)
        environ["wsgidav.some_input_read"] = environ["wsgidav.all_input_read"] = 1
        user_name = environ.get("wsgidav.auth.user_name")
        if not user_name:
            # Anonymous reads are allowed elsewhere; the page always wants an admin's login.
            return plain_answer(
                start_response,
                401,
                "the status page needs an admin's login",
                [("WWW-Authenticate", f'Basic realm="{REALM}"')],
            )
        user = self.auth.users.get(user_name)
        if user is None or not user.admin:
            return plain_answer(
                start_response,
                403,
                "the status page is for admins (users.<name>.admin: true in the config)",
            )
        if metrics:
            return self.metrics.answer(environ, start_response)
        if self.sources is None:
            return plain_answer(start_response, 404, "the status page is not set up")
        method = environ["REQUEST_METHOD"]
        if path in (PREFIX, PREFIX.rstrip("/")) and method in ("GET", "HEAD"):
            return self._page(environ, start_response, user_name)
        action = _ACTIONS.get(path[len(PREFIX) :])
        if action is None:
            return plain_answer(start_response, 404, "no such page")
        if method != "POST":
            return plain_answer(start_response, 405, "use the page's button", [("Allow", "POST")])
        form = _read_form(environ)
        if form is None:
            return plain_answer(start_response, 413, "the form is too large")
        if not hmac.compare_digest(form.get("csrf", ""), self._csrf(user_name)):
            log.warning(
                "status page: a POST from %s without this page's CSRF token was refused",
                client_text(request_client(environ)),
            )
            return plain_answer(start_response, 403, "the form is stale; reload the page")
        notice = action(self, form)
        log.info("status page: %s: %s", client_text(user_name), client_text(notice.text))
        return self._page(environ, start_response, user_name, notice)

    # ------------------------------------------------------------------ the page
    def _csrf(self, user_name: str) -> str:
        return hmac.new(self._csrf_key(), user_name.encode(), hashlib.sha256).hexdigest()

    def _page(
        self,
        environ: dict[str, Any],
        start_response: Callable,
        user_name: str,
        notice: Notice | None = None,
    ) -> list[bytes]:
        assert self.sources is not None
        body = (
            _templates.get_template("status.html")
            .render(
                csrf=self._csrf(user_name),
                refresh=REFRESH_SECONDS,
                prefix=PREFIX,
                notice=notice,
                now=_clock(time.time()),
                **_view(self.sources, self.bans.banned()),
            )
            .encode()
        )
        return html_answer(start_response, body, head=environ["REQUEST_METHOD"] == "HEAD")

    # ------------------------------------------------------------------ the buttons
    def _account(self, form: Mapping[str, str]) -> Account | None:
        assert self.sources is not None
        return self.sources.accounts.get(form.get("account", ""))

    def sign_in(self, form: Mapping[str, str]) -> Notice:
        account = self._account(form)
        if account is None:
            return Notice("no such account", error=True)
        try:
            account.login()
        except HumanCheckRequired as exc:
            # Shown to the admin who asked, on this answer alone (it carries a captcha token).
            return Notice(
                f"{account.name}: PikPak asks for a human check. Open the page below, solve "
                "the puzzle, then paste the token it gives you into the form of the account.",
                error=True,
                human_check=exc.url,
            )
        except PikPakError as exc:
            return Notice(f"{account.name}: signing in failed: {exc.problem}", error=True)
        return Notice(f"{account.name}: signed in")

    def captcha(self, form: Mapping[str, str]) -> Notice:
        account = self._account(form)
        token = form.get("captcha_token", "").strip()
        if account is None or not token:
            return Notice("give the account and the solved captcha token", error=True)
        try:
            account.sign_in_with_captcha(token)
        except PikPakError as exc:
            return Notice(f"{account.name}: signing in failed: {exc.problem}", error=True)
        return Notice(f"{account.name}: signed in with the solved captcha")

    def lift_ban(self, form: Mapping[str, str]) -> Notice:
        address = form.get("address", "")
        if self.bans.lift(address):
            return Notice(f"the ban on {address} is lifted")
        return Notice(f"{address} is not banned", error=True)

    def _mount(self, form: Mapping[str, str]) -> Mount | None:
        assert self.sources is not None
        return next((m for m in self.sources.mounts if m.name == form.get("mount")), None)

    def retry_upload(self, form: Mapping[str, str]) -> Notice:
        mount = self._mount(form)
        if (
            mount is None
            or mount.pending is None
            or not mount.pending.retry_now(form.get("id", ""))
        ):
            return Notice("no failed upload with that id", error=True)
        return Notice("the upload is tried again")

    def discard_upload(self, form: Mapping[str, str]) -> Notice:
        mount = self._mount(form)
        if mount is None or mount.pending is None or not mount.pending.discard(form.get("id", "")):
            return Notice("no failed upload with that id", error=True)
        return Notice("the upload is discarded and its content deleted")

    def add_offline(self, form: Mapping[str, str]) -> Notice:
        mount = self._mount(form)
        urls = [line.strip() for line in form.get("url", "").splitlines() if line.strip()]
        if mount is None or not urls:
            return Notice("give a mount and at least one link", error=True)
        folder = form.get("folder", "").strip() or None
        started = []
        try:
            for url in urls:
                started.append(mount.add_offline(url, folder).name or "a task")
        except (PikPakError, MountError) as exc:
            done = f" ({len(started)} started before it)" if started else ""
            if isinstance(exc, MountError):  # the gateway's refusal, not PikPak's
                return Notice(f"{exc}{done}", error=True)
            return Notice(f"PikPak refused the link{done}: {exc.problem}", error=True)
        return Notice(f"offline download started: {', '.join(started)}")

    def _offline_of(self, form: Mapping[str, str]) -> Mount | None:
        mount = self._mount(form)
        return mount if mount is not None and mount.offline is not None else None

    def delete_offline(self, form: Mapping[str, str]) -> Notice:
        mount = self._offline_of(form)
        if mount is None or mount.offline is None:
            return Notice("no such mount", error=True)
        try:
            unknown = mount.offline.delete([form.get("id", "")])
        except PikPakError as exc:
            return Notice(f"deleting the task failed: {exc.problem}", error=True)
        if unknown:
            return Notice("no offline task has that id (nothing deleted)", error=True)
        return Notice("the offline task is deleted (its files stay)")

    def retry_offline(self, form: Mapping[str, str]) -> Notice:
        mount = self._offline_of(form)
        if mount is None or mount.offline is None:
            return Notice("no such mount", error=True)
        try:
            mount.offline.retry(form.get("id", ""))
        except PikPakError as exc:
            return Notice(f"retrying the task failed: {exc.problem}", error=True)
        return Notice("the offline task is started again")


@dataclass(frozen=True)
class Notice:
    """What a button did, shown on top of the page it answers with."""

    text: str
    error: bool = False
    human_check: str = ""  # the page of a human check, for the admin who asked


_ACTIONS: dict[str, Callable[[StatusPages, Mapping[str, str]], Notice]] = {
    "sign-in": StatusPages.sign_in,
    "captcha": StatusPages.captcha,
    "bans/lift": StatusPages.lift_ban,
    "uploads/retry": StatusPages.retry_upload,
    "uploads/discard": StatusPages.discard_upload,
    "offline/add": StatusPages.add_offline,
    "offline/delete": StatusPages.delete_offline,
    "offline/retry": StatusPages.retry_offline,
}


def _read_form(environ: dict[str, Any]) -> dict[str, str] | None:
    """The urlencoded form of a POST (one value per name); None when it is too large."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM:
        return None
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


# --- what the template shows ---------------------------------------------------------------------


def _view(sources: StatusSources, bans: list[tuple[str, int]]) -> dict[str, Any]:
    mounts, quotas, uploads, offline = [], [], [], []
    seen_accounts: set[str] = set()
    for mount in sources.mounts:
        account = sources.account_of.get(mount.name, "")
        mounts.append(_mount_row(mount, sources.policies.get(mount.name), account))
        if account not in seen_accounts:  # the first mount of its account
            seen_accounts.add(account)
            quota = mount.quota()
            if quota is not None:
                quotas.append(_quota_row(account or mount.name, quota))
            if mount.offline is not None:
                offline.append(_offline(mount))
        uploads.extend(_upload_rows(mount))
    # Read last: the quota and the tasks above may have just signed in.
    now = time.time()
    accounts = [_account_row(name, session, now) for name, session in sources.accounts.items()]
    cluster = sources.cluster.status() if sources.cluster is not None else None
    return {
        "accounts": accounts,
        "quotas": quotas,
        "mounts": mounts,
        "cluster": _cluster_row(cluster) if cluster is not None else None,
        "offline_mounts": [m for m in sources.mounts if m.offline is not None],
        "transfers": [_transfer_row(t) for t in sources.transfers.active()],
        "uploads": uploads,
        "offline": offline,
        "bans": [{"address": ip, "left": f"{left} s"} for ip, left in bans],
        "disk": _disk(sources.mounts),
        "memory": _memory(sources.memory),
    }


def _mount_row(mount: Mount, policy: DownloadPolicy | None, account: str) -> dict[str, Any]:
    return {
        "name": mount.name,
        "kind": mount.source.kind,
        "account": account,
        "download": policy.mode if policy else "",
        "read_only": mount.read_only,
        # A share has no offline downloads; an own drive's land in My Pack by default.
        "offline_folder": "none" if mount.offline is None else mount.offline_folder or "My Pack",
        "share_status": _share_status(mount),
        "cdn_node": _cdn_node(mount),
        "from_cache": mount.tree.outage.describe(),
    }


def _quota_row(account: str, quota: Quota) -> dict[str, Any]:
    return {
        "account": account,
        "used": _size(quota.usage),
        "total": "unlimited" if quota.unlimited else _size(quota.limit),
        "trash": _size(quota.usage_in_trash),
    }


def _upload_rows(mount: Mount) -> list[dict[str, Any]]:
    """The mount's uploads that wait, go or failed, with what is sent of the one going."""
    if mount.pending is None:
        return []
    rows = []
    current, sent = mount.pending.sent()
    for item, going in mount.pending.uploads():
        state = "failed" if item.failed else "uploading" if going else "waiting"
        if going and item.id == current and item.size:
            state += f", {_size(sent)} sent ({sent * 100 // item.size} %)"
        rows.append(
            {
                "mount": mount.name,
                "id": item.id,
                "name": item.name,
                "size": _size(item.size),
                "state": state,
                "attempts": item.attempts,
                "last_error": item.last_error,
                "failed": item.failed,
            }
        )
    return rows


def _account_row(name: str, session: Account, now: float) -> dict[str, Any]:
    try:
        health = session.health()
    except (PikPakError, OSError) as exc:
        return {"name": name, "error": f"cannot read the token store: {exc}"}
    paused = health.paused
    return {
        "name": name,
        "platform": health.platform,
        "signed_in": health.signed_in,
        "valid_until": _when(health.token_valid_until, now),
        "token_refused": health.token_refused,
        "last_refresh": _when(health.last_refresh, now),
        "last_outcome": health.last_outcome,
        "refreshes_24h": health.refreshes_24h,
        "sign_ins_24h": health.sign_ins_24h,
        "failed_24h": health.failed_24h,
        "problem": paused.problem if paused else "",
        "remedy": paused.remedy if paused else "",
        "pause_until": _when(paused.until, now) if paused else "",
        "human_check": bool(paused and paused.kind == "human_check"),
    }


def _cluster_row(cluster: ClusterStatus) -> dict[str, Any]:
    return {
        "where": cluster.where,
        "up": cluster.up,
        "since": _clock(cluster.since) if cluster.since else "",
        "problem": cluster.problem,
    }


def _transfer_row(t: Transfer) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "client": t.client,
        "path": t.path,
        "bytes": _size(t.done),
        "total": _size(t.total) if t.total is not None else "",
        "phase": t.phase,
        "rate": f"{_size(int(t.rate()))}/s",
    }


def _disk(mounts: list[Mount]) -> dict[str, Any] | None:
    """The disk cache's size and how well it answers (one cache for every mount)."""
    disk = next((m.tree.disk for m in mounts if m.tree.disk is not None), None)
    if disk is None:
        return None

    def ratio(hits: int, misses: int) -> str:
        return f"{hits * 100 // (hits + misses)} % of {hits + misses}" if hits + misses else "-"

    return {
        "where": str(disk.directory),
        "size": _size(disk.volume()),
        "limit": _size(disk.size_limit),
        "blocks": ratio(disk.block_hits, disk.block_misses),
        "listings": ratio(disk.listing_hits, disk.listing_misses),
        "stale": disk.stale_answers,
        "dropped": disk.dropped,
    }


def _memory(memory: MemoryBudget | None) -> dict[str, Any] | None:
    if memory is None:
        return None
    return {
        "limit": _size(memory.limit),
        "in_use": _size(memory.in_use),
        "percent": memory.in_use * 100 // memory.limit,
        "peak": _size(memory.peak),
        "held": {holder: _size(count) for holder, count in dict(memory.held).items()},
        "refused": memory.refused,
    }


def _offline(mount: Mount) -> dict[str, Any]:
    assert mount.offline is not None
    try:
        tasks = mount.offline_tasks()
    except PikPakError as exc:
        return {"mount": mount.name, "error": exc.problem, "tasks": []}
    except MountError as exc:  # PikPak is away: the mount says so without asking it
        return {"mount": mount.name, "error": str(exc), "tasks": []}
    return {
        "mount": mount.name,
        "error": "",
        "tasks": [
            {
                "id": task.id,
                "name": task.name or task.file_name,
                "phase": task.phase.removeprefix("PHASE_TYPE_").lower(),
                "progress": task.progress,
                "message": task.message,
                "failed": task.failed,
            }
            for task in tasks
        ],
    }


def _share_status(mount: Mount) -> str:
    """Each share's state, and what to do when it is not open (none for an own drive)."""
    shown = []
    for status in mount.share_statuses():
        text = f"{status.name}: {status.state}"
        if not status.ok and status.advice:
            text += f" ({status.advice})"
        shown.append(text)
    return "; ".join(shown)


def _cdn_node(mount: Mount) -> str:
    """The download node the mount's links go to, when it rewrites them."""
    route = mount.reading.route
    if route is None:
        return ""
    choice = route.choice
    if choice is not None:
        return f"{choice.host} ({choice.latency * 1000:.0f} ms)"
    return "PikPak's own (no node chosen yet)"


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _when(at: float | None, now: float) -> str:
    if at is None:
        return ""
    delta = at - now
    words = f"in {_span(delta)}" if delta >= 0 else f"{_span(-delta)} ago"
    return f"{_clock(at)} ({words})"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
