"""Busy is not down: a starved read pool answers RESOURCE_EXHAUSTED with a
retry hint, while health stays SERVING and ingest keeps committing."""

from __future__ import annotations

import asyncio

import grpc
import psycopg
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from energy.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from energy_server.app import create_server
from tests.conftest import settings_for_tests
from tests.support import meter, retry_pushback_ms


async def test_starved_read_pool_is_overload_not_outage(database_url: str) -> None:
    running = await create_server(
        settings_for_tests(pool_min_size=1, pool_max_size=1, pool_timeout_s=0.5), database_url
    )
    try:
        async with (
            aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            await psycopg.AsyncConnection.connect(database_url) as blocker,
        ):
            analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
            # The only read connection waits behind this lock.
            await blocker.execute("LOCK TABLE vehicle_meter_map IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.ensure_future(
                analytics.GetVehicleLink(analytics_pb2.GetVehicleLinkRequest(vehicle_id="V"))
            )
            # Until the stuck call holds the connection, a call on another table
            # gets one and answers NOT_FOUND; from then on it cannot get one.
            refused = None
            async with asyncio.timeout(30):
                while refused is None:
                    try:
                        await analytics.GetCurrentReading(
                            analytics_pb2.GetCurrentReadingRequest(
                                kind=analytics_pb2.DEVICE_KIND_METER, device_id="M-none"
                            )
                        )
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.NOT_FOUND:
                            refused = error
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_pushback_ms(refused) == 1000

            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            written = await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
                ingest_pb2.IngestReadingsRequest(readings=[meter()])
            )
            assert written.summary.accepted_count == 1

            await blocker.rollback()
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stuck
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await running.stop(0)
