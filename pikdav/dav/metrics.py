"""``/metrics`` in Prometheus' text format (prometheus-client).

Two kinds of numbers: events counted as they happen (DAV requests by method and status, every
exchange with PikPak by endpoint and outcome, with its latency), and state read at each scrape
from where it lives (the sessions' refreshes, sign-ins, pauses and back-offs; the mounts'
cache hits and misses, waiting uploads and offline tasks; the transfer registry's streams,
bytes and redirects). Each app has its own registry: two gateways in one process (the tests)
do not mix their numbers.

Served on the main port to admins (by :class:`pikdav.dav.status.StatusPages`), or without a
login on a separate address of its own (``server.metrics_addr``, rclone's habit).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from pikdav.pikpak.errors import PikPakError
from pikdav.vfs.errors import MountError

from .frontdoor import plain_answer
from .status import StatusSources
from .transfers import PUT, STREAM

METHODS = frozenset(
    "OPTIONS HEAD GET PUT POST DELETE PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK".split()
)
_ID = re.compile(r"[A-Za-z_:]+|v\d+")  # a path segment that names an endpoint, not an item
OFFLINE_TTL = 30.0  # seconds: offline tasks are listed at most this often for the metrics


_ITEMS = ("files", "tasks")  # PikPak's paths that name one item next: /drive/v1/files/<id>


def endpoint(method: str, path: str) -> str:
    """``GET /drive/v1/files/{id}``: the call without the ids it carries (few label values)."""
    segments: list[str] = []
    for segment in (s for s in path.split("/") if s):
        item = segments[-1:] in ([name] for name in _ITEMS)
        segments.append("{id}" if item or not _ID.fullmatch(segment) else segment)
    return f"{method} /{'/'.join(segments)}"


class Metrics:
    def __init__(self, sources: StatusSources) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "pikdav_dav_requests",
            "Requests answered, by method and status",
            ["method", "status"],
            registry=self.registry,
        )
        self.upstream = Counter(
            "pikdav_upstream_calls",
            "Calls to PikPak's API, by endpoint and outcome (ok, the HTTP status, transport)",
            ["account", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "pikdav_upstream_call_seconds",
            "How long calls to PikPak's API took",
            ["account", "endpoint"],
            registry=self.registry,
        )
        self.registry.register(_State(sources))
        for name, account in sources.accounts.items():
            account.on_exchange = self._exchange_of(name)

    def _exchange_of(self, account: str) -> Callable[[str, str, str, float], None]:
        def exchanged(method: str, path: str, outcome: str, seconds: float) -> None:
            call = endpoint(method, path)
            self.upstream.labels(account, call, outcome).inc()
            self.upstream_seconds.labels(account, call).observe(seconds)

        return exchanged

    def counting(self, app: Callable) -> Callable:
        """``app`` with every answer counted by method and status."""

        def counted(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
            method = environ.get("REQUEST_METHOD", "")
            label = method if method in METHODS else "other"

            def counting_start(status: str, headers: list, exc_info: Any = None):
                self.requests.labels(label, status[:3]).inc()
                if exc_info:
                    return start_response(status, headers, exc_info)
                return start_response(status, headers)

            return app(environ, counting_start)

        return counted

    def answer(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        body = generate_latest(self.registry)
        start_response(
            "200 OK",
            [
                ("Content-Type", CONTENT_TYPE_LATEST),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else []


class MetricsOnly:
    """The app of ``server.metrics_addr``: ``/metrics`` without a login, nothing else."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics" and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            return self.metrics.answer(environ, start_response)
        return plain_answer(start_response, 404, "only /metrics is served here")


class _State:
    """What is read at each scrape."""

    def __init__(self, sources: StatusSources) -> None:
        self.sources = sources
        self._offline: dict[str, tuple[float, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        yield from self._transfers()
        yield from self._memory()
        yield from self._accounts()
        yield from self._mounts()
        yield from self._disk()

    def _transfers(self) -> Iterator[Metric]:
        transfers = self.sources.transfers
        yield _counter(
            "pikdav_proxied_bytes", "Bytes proxied to clients", transfers.streamed_bytes()
        )
        yield _counter("pikdav_redirects", "GETs redirected to PikPak's link", transfers.redirects)
        yield _gauge("pikdav_active_streams", "Proxied streams now", len(transfers.active(STREAM)))
        yield _gauge("pikdav_active_puts", "PUTs in progress now", len(transfers.active(PUT)))

    def _memory(self) -> Iterator[Metric]:
        memory = self.sources.memory
        if memory is not None:
            yield _gauge(
                "pikdav_memory_budget_bytes",
                "The memory budget of streams' read-ahead, the block cache and listing caches",
                memory.limit,
            )
            yield _gauge(
                "pikdav_memory_in_use_bytes", "Bytes of the memory budget held now", memory.in_use
            )
            yield _gauge(
                "pikdav_memory_peak_bytes", "The most bytes of the memory budget held", memory.peak
            )
            held = GaugeMetricFamily(
                "pikdav_memory_held_bytes",
                "Bytes of the memory budget held now, by holder",
                labels=["holder"],
            )
            refusals = CounterMetricFamily(
                "pikdav_memory_refusals",
                "Times a holder got less of the memory budget than it asked for",
                labels=["holder"],
            )
            for holder, count in dict(memory.held).items():
                held.add_metric([holder], count)
            for holder, count in dict(memory.refusals).items():
                refusals.add_metric([holder], count)
            yield held
            yield refusals

    def _accounts(self) -> Iterator[Metric]:
        """Per account: its token refreshes, sign-ins, pauses and waits, and whether it works."""
        per_account = {
            "refreshes": ("pikdav_refreshes", "Access-token refreshes"),
            "sign_ins": ("pikdav_sign_ins", "Sign-ins with the password"),
            "pauses": ("pikdav_sign_in_pauses", "Pauses on sign-ins that started"),
            "back_offs": ("pikdav_back_offs", "Waits PikPak asked for (rate limits)"),
        }
        families = {
            key: CounterMetricFamily(name, text, labels=["account"])
            for key, (name, text) in per_account.items()
        }
        signed_in = GaugeMetricFamily(
            "pikdav_signed_in", "1 while the account's login works", labels=["account"]
        )
        for name, account in self.sources.accounts.items():
            try:
                health = account.health()
            except (PikPakError, OSError):
                continue
            for key, family in families.items():
                family.add_metric([name], getattr(health, key))
            signed_in.add_metric([name], 1 if health.signed_in else 0)
        yield from families.values()
        yield signed_in

    def _mounts(self) -> Iterator[Metric]:
        """Per mount: its caches' hits and misses, its background uploads, and its account's
        offline tasks."""
        sources = self.sources
        hits = CounterMetricFamily(
            "pikdav_cache_hits", "Cache lookups answered without PikPak", labels=["mount", "cache"]
        )
        misses = CounterMetricFamily(
            "pikdav_cache_misses", "Cache lookups that asked PikPak", labels=["mount", "cache"]
        )
        uploads = GaugeMetricFamily(
            "pikdav_background_uploads", "Background uploads by state", labels=["mount", "state"]
        )
        sent_bytes = GaugeMetricFamily(
            "pikdav_background_upload_sent_bytes",
            "Bytes of the background upload going up now that PikPak's store has taken",
            labels=["mount"],
        )
        tasks = GaugeMetricFamily(
            "pikdav_offline_tasks", "Offline downloads by phase", labels=["account", "phase"]
        )
        counted_tasks: set[str] = set()
        for mount in sources.mounts:
            for cache, counts in (("listing", mount.tree.listings), ("link", mount.tree.links)):
                hits.add_metric([mount.name, cache], counts.hits)
                misses.add_metric([mount.name, cache], counts.misses)
            if mount.pending is not None:
                states = {"waiting": 0, "uploading": 0, "failed": 0}
                for item, going in mount.pending.uploads():
                    states["failed" if item.failed else "uploading" if going else "waiting"] += 1
                for state, count in states.items():
                    uploads.add_metric([mount.name, state], count)
                current, sent = mount.pending.sent()
                sent_bytes.add_metric([mount.name], sent if current else 0)
            account = sources.account_of.get(mount.name, mount.name)
            if account not in counted_tasks:  # mounts of one account share its tasks
                counted_tasks.add(account)
                for phase, count in self._phases(mount).items():
                    tasks.add_metric([account, phase], count)
        yield from (hits, misses, uploads, sent_bytes, tasks)

    def _disk(self) -> Iterator[Metric]:
        mounts = self.sources.mounts
        disk = next((m.tree.disk for m in mounts if m.tree.disk is not None), None)
        if disk is None:
            return
        yield _gauge("pikdav_disk_cache_bytes", "Bytes the disk cache takes", disk.volume())
        yield _gauge("pikdav_disk_cache_limit_bytes", "The disk cache's size", disk.size_limit)
        hits = CounterMetricFamily(
            "pikdav_disk_cache_hits", "Disk cache lookups that found", labels=["kind"]
        )
        misses = CounterMetricFamily(
            "pikdav_disk_cache_misses", "Disk cache lookups that did not", labels=["kind"]
        )
        hits.add_metric(["block"], disk.block_hits)
        hits.add_metric(["listing"], disk.listing_hits)
        misses.add_metric(["block"], disk.block_misses)
        misses.add_metric(["listing"], disk.listing_misses)
        yield from (hits, misses)
        yield _counter(
            "pikdav_disk_cache_stale_answers",
            "Listings served from the disk cache older than listing_ttl (after a restart, "
            "or while PikPak was away)",
            disk.stale_answers,
        )
        yield _counter(
            "pikdav_disk_cache_dropped", "Damaged disk cache entries dropped", disk.dropped
        )
        away = GaugeMetricFamily(
            "pikdav_serving_from_cache",
            "1 while PikPak is away and the mount serves from its disk cache",
            labels=["mount"],
        )
        for mount in mounts:
            away.add_metric([mount.name], 1 if mount.tree.outage.active else 0)
        yield away

    def _phases(self, mount: Any) -> dict[str, int]:
        if mount.offline is None:
            return {}
        with self._lock:
            cached = self._offline.get(mount.name)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        phases: dict[str, int] = {}
        try:
            for task in mount.offline_tasks():
                phase = task.phase.removeprefix("PHASE_TYPE_").lower() or "unknown"
                phases[phase] = phases.get(phase, 0) + 1
        except (PikPakError, MountError):  # MountError: PikPak is away, not asked
            return cached[1] if cached is not None else {}
        with self._lock:
            self._offline[mount.name] = (time.monotonic() + OFFLINE_TTL, phases)
        return phases


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)
