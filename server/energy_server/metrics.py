"""The service's own counters, and their export to Prometheus.

`ServerMetrics` is counted on the hot path (plain integers, no locks: every
writer runs on the event loop). `MetricsService.GetServerMetrics` and the
Prometheus exporter both read a `MetricsSnapshot`, so the two can never
disagree about a figure.
"""

from __future__ import annotations

import asyncio
import bisect
import importlib.metadata
import logging
import math
import platform
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
import prometheus_client
import psycopg_pool
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from energy_server.domain import Outcome
from energy_server.storage.partitions import MaintenanceReport

__all__ = ["MetricsExporter", "MetricsSnapshot", "PoolSnapshot", "ServerMetrics", "pool_snapshot"]

_log = logging.getLogger(__name__)

try:
    _VERSION = importlib.metadata.version("energy-ingestion-server")
except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
    _VERSION = "unknown"

COMMIT_SECONDS_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
BATCH_READINGS_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, math.inf)
# Prometheus' default buckets, as go-grpc-prometheus uses them for grpc_server_handling_seconds.
RPC_SECONDS_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
# (grpc_type, grpc_service, grpc_method): the labels of the ecosystem's gRPC server dashboards.
RpcKey = tuple[str, str, str]


class _Histogram:
    """Observation counts per bucket; cumulative only when read."""

    __slots__ = ("_bounds", "_counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self._counts = [0] * len(bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self.total += value

    def cumulative(self) -> tuple[tuple[float, int], ...]:
        running = 0
        buckets = []
        for bound, count in zip(self._bounds, self._counts, strict=True):
            running += count
            buckets.append((bound, running))
        return tuple(buckets)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One connection pool's state and counters."""

    name: str
    size: int
    available: int
    waiting: int
    requests: int
    requests_waited: int
    wait_seconds_total: float
    request_errors: int


@dataclass(frozen=True, slots=True)
class LimitSnapshot:
    """One server-wide limit: configured, taken now, taken at most."""

    name: str
    limit: int
    in_use: int
    high_water: int


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every figure of `ServerMetrics` at one moment, plus the pools and the queue."""

    start_time: datetime
    readings_by_outcome: dict[str, int]
    batches_committed: int
    batches_failed: int
    readings_committed: int
    commit_seconds_total: float
    commit_seconds: tuple[tuple[float, int], ...]
    batch_readings: tuple[tuple[float, int], ...]
    pools: tuple[PoolSnapshot, ...]
    pending_readings: int
    limits: tuple[LimitSnapshot, ...] = ()
    rpcs_started: dict[RpcKey, int] = field(default_factory=dict)
    # By (grpc_type, grpc_service, grpc_method, grpc_code).
    rpcs_handled: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    rpc_seconds: dict[RpcKey, tuple[tuple[tuple[float, int], ...], float]] = field(default_factory=dict)
    # The last partition maintenance run of this process (None before the first).
    maintenance: MaintenanceReport | None = None


class ServerMetrics:
    """Counters of one server process; they only grow."""

    def __init__(self) -> None:
        self.start_time = datetime.now(UTC)
        self._outcomes = {outcome.value: 0 for outcome in Outcome} | {"rejected": 0}
        self._batches_failed = 0
        self._commit_seconds = _Histogram(COMMIT_SECONDS_BOUNDS)
        self._batch_readings = _Histogram(BATCH_READINGS_BOUNDS)
        self._rpc_keys: dict[tuple[str, str], RpcKey] = {}
        self._rpcs_started: Counter[RpcKey] = Counter()
        self._rpcs_handled: Counter[tuple[str, str, str, str]] = Counter()
        self._rpc_seconds: dict[RpcKey, _Histogram] = {}

    def _rpc_key(self, path: str, kind: str) -> RpcKey:
        key = self._rpc_keys.get((path, kind))
        if key is None:
            service, _, method = path.strip("/").partition("/")
            key = self._rpc_keys[(path, kind)] = (kind, service, method)
            self._rpc_seconds[key] = _Histogram(RPC_SECONDS_BOUNDS)
        return key

    def record_call_started(self, path: str, kind: str) -> None:
        self._rpcs_started[self._rpc_key(path, kind)] += 1

    def record_call(self, path: str, kind: str, code: str, seconds: float) -> None:
        key = self._rpc_key(path, kind)
        self._rpcs_handled[(*key, code)] += 1
        self._rpc_seconds[key].observe(seconds)

    def record_rejected(self, count: int) -> None:
        if count:
            self._outcomes["rejected"] += count

    def record_commit(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        # Counted in C (Counter), not a Python loop: this runs for every committed batch.
        for outcome, count in Counter(outcomes).items():
            self._outcomes[outcome.value] += count
        self._commit_seconds.observe(seconds)
        self._batch_readings.observe(len(outcomes))

    def record_failed_commit(self) -> None:
        self._batches_failed += 1

    def snapshot(
        self,
        pools: Iterable[PoolSnapshot],
        pending_readings: int,
        limits: Iterable[LimitSnapshot] = (),
        maintenance: MaintenanceReport | None = None,
    ) -> MetricsSnapshot:
        commits = self._batch_readings.cumulative()
        return MetricsSnapshot(
            start_time=self.start_time,
            readings_by_outcome=dict(self._outcomes),
            batches_committed=commits[-1][1],
            batches_failed=self._batches_failed,
            readings_committed=round(self._batch_readings.total),
            commit_seconds_total=self._commit_seconds.total,
            commit_seconds=self._commit_seconds.cumulative(),
            batch_readings=commits,
            pools=tuple(pools),
            pending_readings=pending_readings,
            limits=tuple(limits),
            rpcs_started=dict(self._rpcs_started),
            rpcs_handled=dict(self._rpcs_handled),
            rpc_seconds={key: (h.cumulative(), h.total) for key, h in self._rpc_seconds.items()},
            maintenance=maintenance,
        )


def pool_snapshot(pool: psycopg_pool.AsyncConnectionPool[Any]) -> PoolSnapshot:
    # get_stats() leaves out counters that are still zero.
    stats = pool.get_stats()
    return PoolSnapshot(
        name=pool.name,
        size=stats.get("pool_size", 0),
        available=stats.get("pool_available", 0),
        waiting=stats.get("requests_waiting", 0),
        requests=stats.get("requests_num", 0),
        requests_waited=stats.get("requests_queued", 0),
        wait_seconds_total=stats.get("requests_wait_ms", 0) / 1000,
        request_errors=stats.get("requests_errors", 0),
    )


class _SnapshotCollector(Collector):
    """Presents a MetricsSnapshot in Prometheus' names and types."""

    def __init__(self, take_snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._take_snapshot = take_snapshot

    def collect(self) -> Iterator[Any]:
        snapshot = self._take_snapshot()
        readings = CounterMetricFamily(
            "energy_readings", "Readings received by ingest RPCs, by outcome.", labels=["outcome"]
        )
        for outcome, count in snapshot.readings_by_outcome.items():
            readings.add_metric([outcome], count)
        yield readings
        yield CounterMetricFamily(
            "energy_commit_failures", "Write transactions that failed.", value=snapshot.batches_failed
        )
        yield _histogram(
            "energy_commit_duration_seconds",
            "Seconds per committed write transaction.",
            snapshot.commit_seconds,
            snapshot.commit_seconds_total,
        )
        yield _histogram(
            "energy_commit_batch_readings",
            "Readings per committed write transaction.",
            snapshot.batch_readings,
            float(snapshot.readings_committed),
        )
        yield GaugeMetricFamily(
            "energy_pending_readings", "Valid readings waiting for a writer.", value=snapshot.pending_readings
        )
        yield from _pool_families(snapshot.pools)
        yield from _limit_families(snapshot.limits)
        yield from _rpc_families(snapshot)
        if snapshot.maintenance is not None:
            yield from _maintenance_families(snapshot.maintenance)
        build = GaugeMetricFamily(
            "energy_build_info",
            "The server's version and what it runs on (always 1).",
            labels=["version", "python", "grpcio"],
        )
        build.add_metric([_VERSION, platform.python_version(), grpc.__version__], 1)
        yield build


def _rpc_families(snapshot: MetricsSnapshot) -> Iterator[Any]:
    labels = ["grpc_type", "grpc_service", "grpc_method"]
    started = CounterMetricFamily("grpc_server_started", "RPCs started on the server.", labels=labels)
    for key, count in snapshot.rpcs_started.items():
        started.add_metric(list(key), count)
    yield started
    handled = CounterMetricFamily(
        "grpc_server_handled", "RPCs completed on the server, by status code.", labels=[*labels, "grpc_code"]
    )
    for coded, count in snapshot.rpcs_handled.items():
        handled.add_metric(list(coded), count)
    yield handled
    seconds = HistogramMetricFamily(
        "grpc_server_handling_seconds", "Seconds from the start of an RPC to its status.", labels=labels
    )
    for key, (buckets, total) in snapshot.rpc_seconds.items():
        seconds.add_metric(
            list(key), [("+Inf" if math.isinf(b) else repr(b), c) for b, c in buckets], sum_value=total
        )
    yield seconds


def _limit_families(limits: Sequence[LimitSnapshot]) -> Iterator[Any]:
    for name, documentation, attribute in (
        ("energy_limit", "A server-wide limit of work (readings or bytes).", "limit"),
        ("energy_limit_in_use", "Taken of a server-wide limit now.", "in_use"),
        ("energy_limit_high_water", "The most ever taken of a server-wide limit at once.", "high_water"),
    ):
        family = GaugeMetricFamily(name, documentation, labels=["limit"])
        for limit in limits:
            family.add_metric([limit.name], getattr(limit, attribute))
        yield family


def _maintenance_families(report: MaintenanceReport) -> Iterator[Any]:
    """The partitions as the last maintenance run found them, and how that run went."""
    partitions = GaugeMetricFamily(
        "energy_partitions", "Partitions of a time-partitioned table.", labels=["table"]
    )
    ahead = GaugeMetricFamily(
        "energy_partitions_ahead", "Partitions wholly after the one holding now.", labels=["table"]
    )
    oldest = GaugeMetricFamily(
        "energy_partition_oldest_timestamp_seconds",
        "Lower bound of a table's oldest partition, Unix seconds.",
        labels=["table"],
    )
    newest = GaugeMetricFamily(
        "energy_partition_newest_timestamp_seconds",
        "Upper bound of a table's newest partition, Unix seconds.",
        labels=["table"],
    )
    for table in report.inventory:
        partitions.add_metric([table.table], table.partitions)
        ahead.add_metric([table.table], table.ahead)
        if table.oldest is not None and table.newest is not None:
            oldest.add_metric([table.table], table.oldest.timestamp())
            newest.add_metric([table.table], table.newest.timestamp())
    yield from (partitions, ahead, oldest, newest)
    yield GaugeMetricFamily(
        "energy_maintenance_last_run_timestamp_seconds",
        "When this process last ran partition maintenance, Unix seconds.",
        value=report.started.timestamp(),
    )
    # A state set: 1 for the last run's outcome, 0 for the others.
    outcome = GaugeMetricFamily(
        "energy_maintenance_last_run_outcome",
        "Outcome of the last partition maintenance run: ok, skipped (another instance ran it) or failed.",
        labels=["outcome"],
    )
    for name in ("ok", "skipped", "failed"):
        outcome.add_metric([name], 1.0 if name == report.outcome else 0.0)
    yield outcome
    yield GaugeMetricFamily(
        "energy_maintenance_last_run_duration_seconds",
        "Seconds the last partition maintenance run took.",
        value=report.seconds,
    )


def _histogram(
    name: str, documentation: str, buckets: tuple[tuple[float, int], ...], total: float
) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[("+Inf" if math.isinf(bound) else repr(bound), count) for bound, count in buckets],
        sum_value=total,
    )


def _pool_families(pools: Sequence[PoolSnapshot]) -> Iterator[Any]:
    gauges = (
        ("energy_pool_connections", "Connections open now.", "size"),
        ("energy_pool_idle_connections", "Connections open and idle now.", "available"),
        ("energy_pool_waiting_requests", "Callers waiting for a connection now.", "waiting"),
    )
    counters = (
        ("energy_pool_requests", "Connection requests served.", "requests"),
        ("energy_pool_waits", "Connection requests that had to wait.", "requests_waited"),
        ("energy_pool_wait_seconds", "Seconds connection requests waited.", "wait_seconds_total"),
        ("energy_pool_request_errors", "Connection requests that failed.", "request_errors"),
    )
    for family_type, specs in ((GaugeMetricFamily, gauges), (CounterMetricFamily, counters)):
        for name, documentation, attribute in specs:
            family = family_type(name, documentation, labels=["pool"])
            for pool in pools:
                family.add_metric([pool.name], getattr(pool, attribute))
            yield family


class MetricsExporter:
    """Serves the snapshot at http://host:port/metrics from a thread of its own.

    The HTTP server is prometheus-client's; its thread only reads counters,
    so the event loop never waits on a scrape.
    """

    def __init__(self, take_snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._registry = prometheus_client.CollectorRegistry()
        self._registry.register(_SnapshotCollector(take_snapshot))
        # process_* (CPU, memory, open files) and python_info, under their standard names.
        prometheus_client.ProcessCollector(registry=self._registry)
        prometheus_client.PlatformCollector(registry=self._registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> int:
        """Start serving; returns the bound port (useful when `port` is 0)."""
        address = host.strip("[]") or "::"
        self._server, self._thread = prometheus_client.start_http_server(
            port, addr=address, registry=self._registry
        )
        return int(self._server.server_address[1])

    @property
    def bound_host(self) -> str | None:
        """The address it listens on, None when it does not."""
        return None if self._server is None else str(self._server.server_address[0])

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        # shutdown() blocks until the serving thread notices (up to its poll interval).
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
