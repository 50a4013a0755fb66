"""Composition root and lifecycle: pool -> repository -> servicers -> server.

`create_server()` builds and starts everything on the configured port (0 in
tests) and returns a handle whose `stop()` drains in the documented order:
health NOT_SERVING, open calls finish within the grace period, writers stop,
the pool closes last.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import psycopg_pool
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from energy.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
)
from energy_server.admission import Capacity
from energy_server.auth import Authorizer, load_tokens
from energy_server.call_boundary import CallBoundary
from energy_server.collector import tune_collector
from energy_server.errors import DatabaseUnavailable, DomainError
from energy_server.group_commit import GroupCommitter
from energy_server.health import DatabaseHealth, HealthServicer
from energy_server.limits import raise_open_files_limit
from energy_server.metrics import MetricsExporter, MetricsSnapshot, ServerMetrics, pool_snapshot
from energy_server.reflection import REFLECTION_SERVICES, add_reflection_to_server
from energy_server.servicers.analytics import AnalyticsServicer
from energy_server.servicers.ingest import IngestLimits, IngestServicer
from energy_server.servicers.metrics import MetricsServicer
from energy_server.settings import Settings, SettingsError
from energy_server.storage.migrate import apply_migrations, check_schema, citus_installed
from energy_server.storage.partitions import Horizons, Maintenance, PartitionLayout
from energy_server.storage.pools import RenewablePool
from energy_server.storage.repository import (
    AnalyticsRepository,
    DatabaseProbe,
    ReadingRepository,
    configure_read_connection,
)
from energy_server.storage.sql.readings import FLEET_SHARDS
from energy_server.tracing import start_tracing

__all__ = ["RunningServer", "create_server", "serve"]

_log = logging.getLogger(__name__)

INGEST_SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
ANALYTICS_SERVICE = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
METRICS_SERVICE = metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Their health follows the database's; the health and reflection services need none.
DATABASE_SERVICES = (INGEST_SERVICE, ANALYTICS_SERVICE, METRICS_SERVICE)


@dataclass(slots=True)
class RunningServer:
    """A started server and what it owns, in the order `stop()` releases them."""

    server: aio.Server
    port: int
    health: DatabaseHealth
    committer: GroupCommitter
    pools: tuple[RenewablePool, ...]
    # The database probe, the horizons' refresh and the maintenance timer.
    background: tuple[asyncio.Task[None], ...]
    metrics: ServerMetrics
    exporter: MetricsExporter
    # Port of the Prometheus exporter; None when it is off.
    metrics_port: int | None
    # Bytes of requests read but not yet committed, over every call.
    request_budget: Capacity
    maintenance: Maintenance
    # Where large messages are validated, off the event loop.
    validation_thread: ThreadPoolExecutor

    def metrics_snapshot(self) -> MetricsSnapshot:
        return self.metrics.snapshot(
            (pool_snapshot(pool.pool) for pool in self.pools),
            self.committer.pending_readings,
            (limit.snapshot() for limit in (self.committer.pending, self.request_budget)),
            self.maintenance.last,
        )

    async def stop(self, grace_s: float) -> None:
        await self.health.shut_down()
        await self.server.stop(grace_s)
        # The calls are over: what they left queued for validation was told to nobody.
        self.validation_thread.shutdown(wait=False, cancel_futures=True)
        await self.exporter.stop()
        await self.committer.close()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.health.close()
        for pool in self.pools:
            await pool.close()


async def _fleet_shards(readings: ReadingRepository, writers: int) -> int:
    """The first of this process's fleet-rollup shards: disjoint from every other
    process on the database (workers and replicas alike), so their writers never
    add to the same fleet rows. Without the database at start, a random range:
    a collision then only makes two writers wait for each other on a row."""
    try:
        first = await readings.claim_fleet_shards(writers)
        _log.info("this process adds to fleet-rollup shards %d-%d", first, first + writers - 1)
        return first
    except DomainError as error:
        first = random.randrange(FLEET_SHARDS // writers) * writers  # noqa: S311 (not a secret)
        _log.warning(
            "could not number this process (%s); fleet-rollup shards from %d at random", error, first
        )
        return first


async def create_server(settings: Settings, database_url: str) -> RunningServer:
    """Open the pools, migrate if configured, and start serving."""
    # First: a bad certificate or tokens file fails the start before anything is opened.
    credentials, authorizer = await asyncio.to_thread(_security, settings)
    metrics = ServerMetrics()
    # The port first: when it is taken, nothing has been opened that must be closed.
    keepalive_ms = round(settings.keepalive_time_s * 1000)
    server = aio.server(
        interceptors=[CallBoundary(settings.retry_delay_ms, authorizer, metrics)],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Dead peers are found by keepalive pings, not left holding streams.
            ("grpc.keepalive_time_ms", keepalive_ms),
            ("grpc.keepalive_timeout_ms", round(settings.keepalive_timeout_s * 1000)),
            # gRPC core enforces the ping timeout, not keepalive_timeout_ms (grpc/grpc#39239).
            ("grpc.http2.ping_timeout_ms", round(settings.keepalive_timeout_s * 1000)),
            ("grpc.http2.min_ping_interval_without_data_ms", min(10_000, keepalive_ms)),
            ("grpc.keepalive_permit_without_calls", 1),
            # Keep pinging an open stream that carries no data: that is exactly a dead peer.
            ("grpc.http2.max_pings_without_data", 0),
            # Workers of one supervisor share the port; a lone server must fail to
            # start on a port in use rather than silently share it with a stranger.
            ("grpc.so_reuseport", 1 if settings.processes > 1 else 0),
        ],
    )
    address = f"{settings.host}:{settings.port}"
    try:
        port = (
            server.add_insecure_port(address)
            if credentials is None
            else server.add_secure_port(address, credentials)
        )
    except RuntimeError:
        # gRPC says only "Failed to bind to address"; nothing else is open yet.
        raise SettingsError(
            f"ENERGY_PORT={settings.port}: cannot listen on {address} (in use by another process?); "
            "stop it or choose another port"
        ) from None
    try:
        if settings.migrate_on_start:
            await apply_migrations(database_url, settings.migrations_dir)
        else:
            # Never SERVING on a schema older than the code: every call would fail.
            await check_schema(database_url, settings.migrations_dir)
    except BaseException:
        await server.stop(None)  # gives the port back
        raise
    # Writes and reads get pools of their own: slow analytics never hold the
    # connections group commit needs.
    ingest_pool = RenewablePool(
        database_url, "energy-ingest", settings.writers, settings.writers, settings.pool_timeout_s
    )
    # Every analytics statement stands alone (reads, and the one-statement link
    # upsert): autocommit spares each call a COMMIT round trip.
    read_pool = RenewablePool(
        database_url,
        "energy-analytics",
        settings.pool_min_size,
        settings.pool_max_size,
        settings.pool_timeout_s,
        autocommit=True,
        configure=configure_read_connection,
    )
    for pool in (ingest_pool, read_pool):
        await pool.open()
    async with ingest_pool.connection() as connection:
        on_citus = await citus_installed(connection)
    layout = PartitionLayout.from_settings(settings)
    # Partitions ahead before the first call (another instance may be doing it).
    horizons = Horizons()
    maintenance = Maintenance(database_url, layout, horizons=horizons)
    await maintenance.run()
    health_servicer = HealthServicer()
    # Services that need no database are SERVING until shutdown; the probe sets the others.
    for name in (HEALTH_SERVICE, *(REFLECTION_SERVICES if settings.reflection else ())):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    database_health = DatabaseHealth(
        DatabaseProbe(database_url, timeout_s=max(settings.health_probe_interval_s, 1.0)),
        health_servicer,
        DATABASE_SERVICES,
        settings.health_probe_interval_s,
        recover=lambda: _renew((ingest_pool, read_pool)),
    )
    reachable = database_health.database_reachable
    readings = ReadingRepository(ingest_pool, reachable, layout=layout)
    committer = GroupCommitter(
        readings,
        writers=settings.writers,
        batch_max_readings=settings.batch_max_readings,
        linger_s=settings.batch_linger_ms / 1000,
        max_pending_readings=settings.max_pending_readings,
        # Requests are admitted (or refused) once, at the door, by the request budget
        # below; admitted readings then wait their turn for a lane, however long.
        overload_wait_s=None,
        metrics=metrics,
        database_reachable=reachable,
        first_shard=await _fleet_shards(readings, settings.writers),
    )
    request_budget = Capacity(
        "pending_bytes",
        settings.max_pending_bytes,
        settings.overload_wait_s,
        "bytes of requests not yet stored",
    )
    # One thread: validation holds the GIL, so more would only contend for it.
    validation_thread = ThreadPoolExecutor(1, thread_name_prefix="energy-validation")
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(
            committer,
            IngestLimits(
                clock_skew_allowance=settings.clock_skew_allowance,
                max_readings_per_message=settings.max_readings_per_message,
                stream_window=settings.stream_window,
                stream_idle_timeout_s=settings.stream_idle_timeout_s,
                earliest_reading=lambda now: horizons.earliest_reading(now, settings.raw_retention),
            ),
            metrics,
            request_budget,
            validation_thread,
        ),
        server,
    )
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(
            AnalyticsRepository(read_pool, reachable, horizons=horizons, share_snapshots=not on_citus)
        ),
        server,
    )
    # Bound late: the snapshot reads the RunningServer built below.
    metrics_servicer = MetricsServicer(lambda: running.metrics_snapshot())
    metrics_pb2_grpc.add_MetricsServiceServicer_to_server(metrics_servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        add_reflection_to_server(server, (*DATABASE_SERVICES, HEALTH_SERVICE))
    committer.start()
    await database_health.probe()
    running = RunningServer(
        server,
        port,
        database_health,
        committer,
        (ingest_pool, read_pool),
        (
            asyncio.create_task(database_health.run(), name="database-health"),
            asyncio.create_task(horizons.keep_fresh(read_pool), name="retention-horizons"),
            *(
                [
                    asyncio.create_task(
                        maintenance.run_forever(settings.maintenance_interval_s), name="maintenance"
                    )
                ]
                if settings.maintenance_interval_s > 0
                else []
            ),
        ),
        metrics,
        MetricsExporter(lambda: running.metrics_snapshot()),
        None,
        request_budget,
        maintenance,
        validation_thread,
    )
    if settings.metrics_port is not None:
        try:
            running.metrics_port = running.exporter.start(settings.metrics_host, settings.metrics_port)
        except OSError as error:
            await running.stop(0)
            raise SettingsError(
                f"ENERGY_METRICS_PORT={settings.metrics_port}: cannot listen ({error.strerror}); "
                "choose another port or set it to off"
            ) from None
    await server.start()
    return running


async def _renew(pools: tuple[RenewablePool, ...]) -> None:
    """Fresh pools after an outage; DatabaseUnavailable while PostgreSQL refuses them."""
    try:
        for pool in pools:
            await pool.renew()
    except psycopg_pool.PoolTimeout as error:
        raise DatabaseUnavailable("the database does not accept connections yet") from error


def _security(settings: Settings) -> tuple[grpc.ServerCredentials | None, Authorizer]:
    """TLS credentials and the token table, read from the configured files."""
    try:
        principals = None if settings.auth_tokens_file is None else load_tokens(settings.auth_tokens_file)
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            return None, Authorizer(principals)
        client_ca = None if settings.tls_client_ca_file is None else settings.tls_client_ca_file.read_bytes()
        credentials = grpc.ssl_server_credentials(
            [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
    except (OSError, ValueError) as error:
        raise SettingsError(f"security settings: {error}") from None
    return credentials, Authorizer(principals)


def describe_security(settings: Settings) -> str:
    """How the server is secured, for its start-up line (names files, never their contents)."""
    if settings.tls_cert_file is None:
        transport = "plaintext"
    elif settings.tls_client_ca_file is None:
        transport = "TLS"
    else:
        transport = "mutual TLS (client certificates required)"
    if settings.auth_tokens_file is None:
        access = "no authentication"
    else:
        access = f"bearer tokens from {settings.auth_tokens_file}"
    warning = ": for local development" if transport == "plaintext" and access == "no authentication" else ""
    reflection_state = "" if settings.reflection else ", reflection off"
    return f"{transport}, {access}{reflection_state}{warning}"


async def serve(
    settings: Settings, database_url: str, on_serving: Callable[[int], None] = lambda port: None
) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop; `on_serving` hears the bound port."""
    raise_open_files_limit(settings)
    tune_collector()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    # Before the gRPC server exists: the instrumentation wraps its creation.
    tracing = start_tracing(settings)
    try:
        await _serve_until_stopped(settings, database_url, on_serving, stopping)
    finally:
        if tracing is not None:
            tracing.stop()


async def _serve_until_stopped(
    settings: Settings, database_url: str, on_serving: Callable[[int], None], stopping: asyncio.Event
) -> None:
    running = await create_server(settings, database_url)
    on_serving(running.port)
    _log.info(
        "serving energy.v1 on %s:%d%s (%s); %s",
        settings.host,
        running.port,
        ""
        if settings.worker_index is None
        else f" as worker {settings.worker_index + 1} of {settings.processes}",
        describe_security(settings),
        "Prometheus metrics off"
        if running.metrics_port is None
        else f"Prometheus metrics on http://{settings.metrics_host}:{running.metrics_port}/metrics",
    )
    if settings.auth_tokens_file is not None and settings.tls_cert_file is None:
        _log.warning(
            "bearer tokens are required but the transport is plaintext: tokens cross the network "
            "in clear; set ENERGY_TLS_CERT_FILE and ENERGY_TLS_KEY_FILE"
        )
    await stopping.wait()
    _log.info("stopping: draining calls for up to %g s", settings.shutdown_grace_s)
    await running.stop(settings.shutdown_grace_s)
    final = running.metrics_snapshot()
    _log.info(
        "stopped after committing %d readings in %d transactions",
        final.readings_committed,
        final.batches_committed,
    )
