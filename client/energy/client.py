"""EnergyClient: the typed asyncio client, and SyncEnergyClient, its blocking facade.

Every unary call has a deadline (the client's default unless the call names
one) and is retried on the retryable codes within that deadline, honouring
the server's retry hint. Failures surface as one exception type,
`ClientError`, with the status code and the offending fields.
"""

from __future__ import annotations

import asyncio
import enum
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from energy.readings import timestamp_of
from energy.retry import RetryPolicy, call_with_retries
from energy.uploader import Uploader, UploadReport
from energy.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
    reading_pb2,
)

__all__ = ["DEFAULT", "DEFAULT_TARGET", "EnergyClient", "SyncEnergyClient", "Timeout", "Tls", "Window"]

DEFAULT_TARGET = "localhost:50051"
_R = TypeVar("_R")
_Item = TypeVar("_Item")
# A half-open analytics window [start, end); both ends need a UTC offset.
Window = tuple[datetime, datetime]


class UseDefault(enum.Enum):
    """The type of DEFAULT: a call's deadline is the client's `timeout_s`."""

    DEFAULT = "default"


DEFAULT: Final = UseDefault.DEFAULT
# A call's deadline in seconds: a number, None for no deadline, or DEFAULT.
Timeout = float | None | UseDefault


@dataclass(frozen=True, slots=True)
class Tls:
    """Transport security: the CA that signed the server, and a client certificate for mutual TLS."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    # Name to check the server's certificate against, when it differs from the target's host.
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: Path | None = None,
        certificate: Path | None = None,
        key: Path | None = None,
        server_name: str | None = None,
    ) -> Tls:
        def read(path: Path | None) -> bytes | None:
            return None if path is None else path.read_bytes()

        return cls(read(ca), read(certificate), read(key), server_name)


# gRPC's own round_robin: one subchannel per address the target resolves to,
# calls spread over those that are ready. With one address it is pick_first.
ROUND_ROBIN: Final = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def channel_target(target: str) -> str:
    """The gRPC target for `target`: one address as it is (any gRPC target,
    `dns:///name` included), or several `host:port` joined by commas, which
    become gRPC's static `ipv4:` list (or `ipv6:` when some host has no IPv4
    address); names are resolved once, here."""
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) <= 1:
        return target
    hosts = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target {address!r} in {target!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    for family, scheme in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        try:
            ips = [
                str(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4][0])
                for host, port in hosts
            ]
        except socket.gaierror:
            continue
        listed = (
            f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
            for ip, (_, port) in zip(ips, hosts, strict=True)
        )
        return f"{scheme}:" + ",".join(listed)
    raise ValueError(f"the hosts of {target!r} do not all resolve to IPv4, nor all to IPv6, addresses")


def _channel(target: str, tls: Tls | None, options: Sequence[tuple[str, Any]]) -> aio.Channel:
    target = channel_target(target)
    merged: list[tuple[str, Any]] = [
        ("grpc.service_config", ROUND_ROBIN),
        # Find a dead connection within a minute instead of waiting on it.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        # What gRPC core actually enforces as the keepalive ping's timeout (grpc/grpc#39239).
        ("grpc.http2.ping_timeout_ms", 10_000),
        # Retries are ours (bounded by the deadline, honouring RetryInfo); gRPC's
        # transparent retry of unsent requests stays on.
        ("grpc.enable_retries", 0),
        *options,
    ]
    if tls is None:
        return aio.insecure_channel(target, options=merged)
    if tls.server_name:
        merged.append(("grpc.ssl_target_name_override", tls.server_name))
    credentials = grpc.ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
    return aio.secure_channel(target, credentials, options=merged)


def _window(window: Window | None) -> analytics_pb2.TimeWindow | None:
    if window is None:
        return None
    start, end = window
    return analytics_pb2.TimeWindow(start_time=timestamp_of(start), end_time=timestamp_of(end))


class EnergyClient:
    """An asyncio client for `energy.v1`; use it as an async context manager.

    `target` is one gRPC target, or several `host:port` separated by commas:
    calls, and each new stream, go to them in turn (gRPC's `round_robin`,
    set by service config), skipping any that is down. `timeout_s` is the
    default deadline of each unary call, retries included
    (None waits forever). `token` is sent as `authorization: Bearer <token>`.
    The generated stubs are available as `ingest_stub`, `analytics_stub` and
    `metrics_stub` for anything this class does not wrap.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: Tls | None = None,
        token: str | None = None,
        timeout_s: float | None = 10.0,
        retry: RetryPolicy | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self._channel = _channel(target, tls, channel_options)
        self._metadata: tuple[tuple[str, str], ...] = (
            () if token is None else (("authorization", f"Bearer {token}"),)
        )
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self.ingest_stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        self.analytics_stub = analytics_pb2_grpc.AnalyticsServiceStub(self._channel)
        self.metrics_stub = metrics_pb2_grpc.MetricsServiceStub(self._channel)
        self._health_stub = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> EnergyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata sent with every call (authentication)."""
        return self._metadata

    async def _unary(
        self,
        method: Callable[..., Awaitable[_R]],
        request: object,
        timeout_s: Timeout,
    ) -> _R:
        deadline_s = self._timeout_s if timeout_s is DEFAULT else timeout_s

        async def attempt(remaining_s: float | None) -> _R:
            return await method(request, timeout=remaining_s, metadata=self._metadata)

        return await call_with_retries(attempt, self._retry, deadline_s)

    async def _pages(
        self,
        fetch: Callable[[str], Awaitable[tuple[Sequence[_Item], str]]],
    ) -> AsyncIterator[_Item]:
        token = ""
        while True:
            items, token = await fetch(token)
            for item in items:
                yield item
            if not token:
                return

    # Ingest

    async def ingest(
        self, readings: Iterable[reading_pb2.Reading], *, timeout_s: Timeout = DEFAULT
    ) -> ingest_pb2.IngestSummary:
        """Store readings with one unary call; their outcomes, indexed as given.

        Raises ClientError(INVALID_ARGUMENT) when every reading is invalid.
        """
        request = ingest_pb2.IngestReadingsRequest(readings=readings)
        response = await self._unary(self.ingest_stub.IngestReadings, request, timeout_s)
        return response.summary

    def uploader(
        self,
        *,
        max_readings_per_message: int = 500,
        linger_s: float = 0.05,
        max_unacknowledged_readings: int = 50_000,
        on_ack: Callable[[Uploader.Ack], None] | None = None,
        on_reconnect: Callable[[BaseException], None] | None = None,
    ) -> Uploader:
        """A batching uploader over the acknowledged bidirectional stream (see Uploader)."""
        return Uploader(
            self.ingest_stub,
            metadata=self._metadata,
            retry=self._retry,
            max_readings_per_message=max_readings_per_message,
            linger_s=linger_s,
            max_unacknowledged_readings=max_unacknowledged_readings,
            on_ack=on_ack,
            on_reconnect=on_reconnect,
        )

    # Analytics

    async def get_vehicle_performance(
        self, vehicle_id: str, window: Window | None = None, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.GetVehiclePerformanceResponse:
        """AC from the linked meter, DC from the vehicle, and their ratio, over `window` (default 24 h)."""
        request = analytics_pb2.GetVehiclePerformanceRequest(vehicle_id=vehicle_id, window=_window(window))
        return await self._unary(self.analytics_stub.GetVehiclePerformance, request, timeout_s)

    async def link_vehicle(
        self, vehicle_id: str, meter_id: str, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.VehicleLink:
        """Record that `meter_id` charges `vehicle_id` (replacing an earlier link)."""
        request = analytics_pb2.LinkVehicleRequest(vehicle_id=vehicle_id, meter_id=meter_id)
        return (await self._unary(self.analytics_stub.LinkVehicle, request, timeout_s)).link

    async def get_vehicle_link(
        self, vehicle_id: str, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.VehicleLink:
        request = analytics_pb2.GetVehicleLinkRequest(vehicle_id=vehicle_id)
        return (await self._unary(self.analytics_stub.GetVehicleLink, request, timeout_s)).link

    def list_vehicle_links(self, *, page_size: int = 500) -> AsyncIterator[analytics_pb2.VehicleLink]:
        """Every link, in vehicle id order, fetched page by page."""

        async def fetch(token: str) -> tuple[Sequence[analytics_pb2.VehicleLink], str]:
            request = analytics_pb2.ListVehicleLinksRequest(page_size=page_size, page_token=token)
            response = await self._unary(self.analytics_stub.ListVehicleLinks, request, DEFAULT)
            return response.links, response.next_page_token

        return self._pages(fetch)

    async def get_meter_stats(
        self, meter_id: str, window: Window | None = None, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.GetMeterStatsResponse:
        request = analytics_pb2.GetMeterStatsRequest(meter_id=meter_id, window=_window(window))
        return await self._unary(self.analytics_stub.GetMeterStats, request, timeout_s)

    async def get_vehicle_stats(
        self, vehicle_id: str, window: Window | None = None, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.GetVehicleStatsResponse:
        request = analytics_pb2.GetVehicleStatsRequest(vehicle_id=vehicle_id, window=_window(window))
        return await self._unary(self.analytics_stub.GetVehicleStats, request, timeout_s)

    async def get_meter_fleet_summary(
        self, window: Window | None = None, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.GetMeterFleetSummaryResponse:
        request = analytics_pb2.GetMeterFleetSummaryRequest(window=_window(window))
        return await self._unary(self.analytics_stub.GetMeterFleetSummary, request, timeout_s)

    async def get_vehicle_fleet_summary(
        self, window: Window | None = None, *, timeout_s: Timeout = DEFAULT
    ) -> analytics_pb2.GetVehicleFleetSummaryResponse:
        request = analytics_pb2.GetVehicleFleetSummaryRequest(window=_window(window))
        return await self._unary(self.analytics_stub.GetVehicleFleetSummary, request, timeout_s)

    async def get_current_reading(
        self, kind: analytics_pb2.DeviceKind, device_id: str, *, timeout_s: Timeout = DEFAULT
    ) -> reading_pb2.Reading:
        request = analytics_pb2.GetCurrentReadingRequest(kind=kind, device_id=device_id)
        return (await self._unary(self.analytics_stub.GetCurrentReading, request, timeout_s)).reading

    def list_current_readings(
        self,
        kind: analytics_pb2.DeviceKind,
        *,
        seen_since: datetime | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[reading_pb2.Reading]:
        """The current reading of every device of `kind`, optionally only those seen since a time."""

        async def fetch(token: str) -> tuple[Sequence[reading_pb2.Reading], str]:
            request = analytics_pb2.ListCurrentReadingsRequest(
                kind=kind,
                seen_since=None if seen_since is None else timestamp_of(seen_since),
                page_size=page_size,
                page_token=token,
            )
            response = await self._unary(self.analytics_stub.ListCurrentReadings, request, DEFAULT)
            return response.readings, response.next_page_token

        return self._pages(fetch)

    async def get_time_series(
        self,
        kind: analytics_pb2.DeviceKind,
        device_id: str,
        bucket: analytics_pb2.TimeBucket,
        window: Window | None = None,
        *,
        timeout_s: Timeout = DEFAULT,
    ) -> analytics_pb2.GetTimeSeriesResponse:
        request = analytics_pb2.GetTimeSeriesRequest(
            kind=kind, device_id=device_id, bucket=bucket, window=_window(window)
        )
        return await self._unary(self.analytics_stub.GetTimeSeries, request, timeout_s)

    def list_efficiency_anomalies(
        self,
        window: Window | None = None,
        *,
        threshold: float | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[analytics_pb2.EfficiencyAnomaly]:
        """Vehicles whose DC/AC ratio is below `threshold` (server default 0.85) or above 1, worst first."""

        async def fetch(token: str) -> tuple[Sequence[analytics_pb2.EfficiencyAnomaly], str]:
            request = analytics_pb2.ListEfficiencyAnomaliesRequest(
                window=_window(window), threshold=threshold, page_size=page_size, page_token=token
            )
            response = await self._unary(self.analytics_stub.ListEfficiencyAnomalies, request, DEFAULT)
            return response.anomalies, response.next_page_token

        return self._pages(fetch)

    # Operations

    async def get_server_metrics(
        self, *, timeout_s: Timeout = DEFAULT
    ) -> metrics_pb2.GetServerMetricsResponse:
        """The server's counters (readings by outcome, commits, pools) since it started."""
        request = metrics_pb2.GetServerMetricsRequest()
        return await self._unary(self.metrics_stub.GetServerMetrics, request, timeout_s)

    async def check_health(
        self, service: str = "", *, timeout_s: Timeout = DEFAULT
    ) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
        """The standard health status of the server ("") or of one service, by full name."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = await self._unary(self._health_stub.Check, request, timeout_s)
        return response.status


class SyncEnergyClient:
    """A blocking facade over EnergyClient for scripts and notebooks.

    An event loop runs in a background thread; each method blocks until the
    asynchronous call it wraps is done. `run()` reaches any other method:
    `client.run(lambda c: c.get_meter_stats("M-1"))`.
    """

    def __init__(self, target: str = DEFAULT_TARGET, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="energy-client", daemon=True)
        self._thread.start()
        self._client: EnergyClient = self._submit(self._connect(target, options)).result()

    @staticmethod
    async def _connect(target: str, options: dict[str, Any]) -> EnergyClient:
        return EnergyClient(target, **options)

    def _submit(self, coroutine: Coroutine[Any, Any, _R]) -> Future[_R]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def __enter__(self) -> SyncEnergyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._submit(self._client.close()).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def run(self, operation: Callable[[EnergyClient], Awaitable[_R]]) -> _R:
        """Run `operation(async_client)` on the client's loop and return its result."""

        async def call() -> _R:
            return await operation(self._client)

        return self._submit(call()).result()

    def ingest(self, readings: Iterable[reading_pb2.Reading]) -> ingest_pb2.IngestSummary:
        readings = list(readings)
        return self.run(lambda client: client.ingest(readings))

    def upload(
        self, readings: Iterable[reading_pb2.Reading], *, max_readings_per_message: int = 500
    ) -> UploadReport:
        """Stream readings through an Uploader and return once every one is acknowledged."""

        async def upload(client: EnergyClient) -> UploadReport:
            async with client.uploader(max_readings_per_message=max_readings_per_message) as uploader:
                for reading in readings:
                    await uploader.add(reading)
            return uploader.report

        return self.run(upload)

    def get_vehicle_performance(
        self, vehicle_id: str, window: Window | None = None
    ) -> analytics_pb2.GetVehiclePerformanceResponse:
        return self.run(lambda client: client.get_vehicle_performance(vehicle_id, window))

    def get_server_metrics(self) -> metrics_pb2.GetServerMetricsResponse:
        return self.run(lambda client: client.get_server_metrics())
