"""The unary shape: whole-request failures and group commit."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
from grpc import aio

from energy.v1 import ingest_pb2, ingest_pb2_grpc, metrics_pb2, metrics_pb2_grpc, reading_pb2
from energy_server.app import RunningServer, create_server
from tests.conftest import settings_for_tests
from tests.support import BASE_TIME, bad_request, meter, meter_history, minutes, run_migrations

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


@pytest.fixture
def rejecting_database_url(new_database: Callable[[], str]) -> str:
    """A migrated database with a rule of its own that validation cannot know of."""
    url = new_database()
    run_migrations(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            """
            CREATE FUNCTION reject_marked() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.meter_id = 'REJECTED' THEN RAISE EXCEPTION 'rejected by a trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER reject_marked BEFORE INSERT ON meter_readings
                FOR EACH ROW EXECUTE FUNCTION reject_marked();
            """
        )
    return url


async def test_a_call_the_database_rejects_fails_alone_not_the_calls_sharing_its_transaction(
    rejecting_database_url: str,
) -> None:
    url = rejecting_database_url
    running = await create_server(settings_for_tests(writers=1), url)

    def call(*meter_ids: str) -> asyncio.Future[ingest_pb2.IngestReadingsResponse]:
        readings = [meter(meter_id, BASE_TIME) for meter_id in meter_ids]
        return asyncio.ensure_future(
            ingest.IngestReadings(ingest_pb2.IngestReadingsRequest(readings=readings))
        )

    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            async with await psycopg.AsyncConnection.connect(url) as blocker:
                # Held, so that the rejected call and the others pile up into one transaction.
                await blocker.execute("LOCK TABLE meter_current IN EXCLUSIVE MODE")
                first = call("M-1")
                async with asyncio.timeout(30):
                    await running.committer.until_submitted(1)
                rejected, *others = [call("M-2", "REJECTED"), call("M-3"), call("M-4", "M-5")]
                async with asyncio.timeout(30):
                    await running.committer.until_submitted(6)
                await blocker.rollback()
            accepted = [(await answer).summary.accepted_count for answer in (first, *others)]
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await rejected
    finally:
        await running.stop(0)
    assert accepted == [1, 1, 2]
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "trigger" not in (raised.value.details() or "")  # the database's words stay in the log
    # The rejected call's other reading shared its transaction: not stored, as its answer said.
    assert sorted(row[0] for row in await meter_history(url)) == ["M-1", "M-3", "M-4", "M-5"]
