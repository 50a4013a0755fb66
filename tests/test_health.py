"""grpc.health.v1 follows the database: SERVING, NOT_SERVING while PostgreSQL
is down, SERVING again once it is back, without restarting the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from energy.v1 import ingest_pb2, ingest_pb2_grpc
from energy_server.app import INGEST_SERVICE, RunningServer, create_server
from energy_server.storage.embedded import EmbeddedPostgres
from tests.conftest import settings_for_tests
from tests.support import meter, next_status, retry_pushback_ms

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def server_on_own_postgres(own_postgres: tuple[EmbeddedPostgres, str]) -> AsyncIterator[RunningServer]:
    settings = settings_for_tests(health_probe_interval_s=0.2, pool_timeout_s=1.0)
    running = await create_server(settings, own_postgres[1])
    try:
        yield running
    finally:
        await running.stop(0)


@pytest.mark.parametrize("shutdown_mode", ["fast", "immediate"])
async def test_health_follows_the_database_and_recovers_by_itself(
    own_postgres: tuple[EmbeddedPostgres, str], server_on_own_postgres: RunningServer, shutdown_mode: str
) -> None:
    postgres, _ = own_postgres
    async with aio.insecure_channel(f"127.0.0.1:{server_on_own_postgres.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", INGEST_SERVICE):
            check = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert check.status == SERVING
        overall = health.Watch(health_pb2.HealthCheckRequest(service="")).__aiter__()
        await next_status(overall, SERVING)

        await asyncio.to_thread(postgres.halt, shutdown_mode)
        await next_status(overall, NOT_SERVING)
        check = await health.Check(health_pb2.HealthCheckRequest(service=INGEST_SERVICE))
        assert check.status == NOT_SERVING
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest(readings=[meter()]))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert retry_pushback_ms(raised.value) == 1000

        await asyncio.to_thread(postgres.resume)
        await next_status(overall, SERVING)
        response = await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest(readings=[meter()]))
        assert response.summary.accepted_count == 1
