"""The unary shape: whole-request failures and group commit."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest

from energy.v1 import ingest_pb2, metrics_pb2, metrics_pb2_grpc, reading_pb2
from energy_server.app import RunningServer
from tests.support import BASE_TIME, bad_request, meter, meter_history, minutes

if TYPE_CHECKING:
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Stub


async def test_all_invalid_unary_request_fails_with_bad_request(ingest: Stub, database_url: str) -> None:
    request = ingest_pb2.IngestReadingsRequest(readings=[meter(voltage=math.inf), reading_pb2.Reading()])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestReadings(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = [(v.field, v.description) for v in bad_request(raised.value).field_violations]
    assert [field for field, _ in violations] == ["readings[0].meter.voltage", "readings[1].kind"]
    assert "finite" in violations[0][1]
    assert await meter_history(database_url) == []


async def test_empty_unary_request_fails_naming_readings(ingest: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(raised.value).field_violations] == ["readings"]


async def test_concurrent_unary_calls_share_transactions(
    ingest: Stub, metrics: metrics_pb2_grpc.MetricsServiceAsyncStub, server: RunningServer, database_url: str
) -> None:
    calls = 200
    submitted_before = server.committer.readings_submitted
    request = metrics_pb2.GetServerMetricsRequest()
    batches_before = (await metrics.GetServerMetrics(request)).commits.batches_committed
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        # Hold the current table so the first transactions cannot finish: the
        # other calls must pile up behind them, as they do when commits are slow.
        await blocker.execute("LOCK TABLE meter_current IN EXCLUSIVE MODE")
        pending = [
            asyncio.ensure_future(
                ingest.IngestReadings(
                    ingest_pb2.IngestReadingsRequest(readings=[meter(f"M-{i % 20}", BASE_TIME + minutes(i))])
                )
            )
            for i in range(calls)
        ]
        async with asyncio.timeout(30):
            await server.committer.until_submitted(submitted_before + calls)
        await blocker.rollback()
    responses = await asyncio.gather(*pending)
    transactions = (await metrics.GetServerMetrics(request)).commits.batches_committed - batches_before
    assert all(r.summary.accepted_count + r.summary.stale_count == 1 for r in responses)
    assert len(await meter_history(database_url)) == calls
    # At most one blocked transaction per writer, then the pile-up in a few batches.
    assert transactions <= 2 * server.committer.writer_count, transactions
