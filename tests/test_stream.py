"""The bidirectional StreamReadings contract: ordered acks after commit, resumable."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import psycopg
import pytest

from energy.v1 import ingest_pb2, reading_pb2
from tests.support import (
    BASE_TIME,
    empty_tables,
    meter,
    meter_current,
    meter_history,
    minutes,
    vehicle,
    vehicle_current,
    vehicle_history,
)

if TYPE_CHECKING:
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Stub


def _requests(count: int, per_request: int) -> list[ingest_pb2.StreamReadingsRequest]:
    """Requests with gaps in their sequence numbers and a mix of devices."""
    requests = []
    for r in range(count):
        readings: list[reading_pb2.Reading] = []
        for i in range(per_request):
            n = r * per_request + i
            at = BASE_TIME + minutes(n)
            readings.append(meter(f"M-{n % 3}", at) if n % 2 else vehicle(f"V-{n % 5}", at))
        requests.append(ingest_pb2.StreamReadingsRequest(sequence=10 + 3 * r, readings=readings))
    return requests


async def _snapshot(url: str) -> tuple[list[Any], ...]:
    return (
        await meter_history(url),
        await vehicle_history(url),
        await meter_current(url),
        await vehicle_current(url),
    )


async def _stored_keys(connection: psycopg.AsyncConnection[Any]) -> set[tuple[str, Any]]:
    cursor = await connection.execute(
        "SELECT meter_id, ts FROM meter_readings UNION ALL SELECT vehicle_id, ts FROM vehicle_readings"
    )
    return {(device, ts) for device, ts in await cursor.fetchall()}


def _keys(request: ingest_pb2.StreamReadingsRequest) -> set[tuple[str, Any]]:
    keys = set()
    for reading in request.readings:
        device = reading.meter if reading.HasField("meter") else reading.vehicle
        device_id = reading.meter.meter_id if reading.HasField("meter") else reading.vehicle.vehicle_id
        keys.add((device_id, device.timestamp.ToDatetime().replace(tzinfo=BASE_TIME.tzinfo)))
    return keys


async def test_acks_arrive_in_sequence_order_and_only_after_commit(ingest: Stub, database_url: str) -> None:
    requests = _requests(count=40, per_request=25)
    acked: list[int] = []
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as observer:
        async for ack in ingest.StreamReadings(iter(requests)):
            request = requests[len(acked)]
            assert ack.sequence == request.sequence
            assert ack.summary.accepted_count + ack.summary.stale_count == len(request.readings)
            # Committed before the ack was sent: another session sees every reading.
            assert _keys(request) <= await _stored_keys(observer)
            acked.append(ack.sequence)
    assert acked == [r.sequence for r in requests]


async def test_resending_unacked_requests_after_a_drop_gives_the_same_database(
    ingest: Stub, database_url: str
) -> None:
    requests = _requests(count=30, per_request=20)
    async for _ in ingest.StreamReadings(iter(requests)):
        pass
    never_dropped = await _snapshot(database_url)
    await empty_tables(database_url)

    # Send everything, but drop the stream after the 7th ack: the server has
    # read (and may have committed) more than it acknowledged.
    acked: set[int] = set()
    call = ingest.StreamReadings(iter(requests))
    async for ack in call:
        acked.add(ack.sequence)
        if len(acked) == 7:
            call.cancel()
            break
    # A new stream with every request not acknowledged, keeping their numbers.
    resent = [r for r in requests if r.sequence not in acked]
    summaries = [ack.summary async for ack in ingest.StreamReadings(iter(resent))]
    assert len(summaries) == len(resent)
    assert await _snapshot(database_url) == never_dropped


async def test_sequence_that_does_not_increase_fails_the_stream_after_earlier_acks(
    ingest: Stub, database_url: str
) -> None:
    requests = [
        ingest_pb2.StreamReadingsRequest(sequence=5, readings=[meter(at=BASE_TIME)]),
        ingest_pb2.StreamReadingsRequest(sequence=5, readings=[meter(at=BASE_TIME + minutes(1))]),
    ]
    acks: list[int] = []

    async def consume() -> None:
        async for ack in ingest.StreamReadings(iter(requests)):
            acks.append(ack.sequence)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await consume()
    assert acks == [5]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sequence" in (raised.value.details() or "")
    assert len(await meter_history(database_url)) == 1


async def test_empty_request_is_acknowledged(ingest: Stub) -> None:
    acks = [ack async for ack in ingest.StreamReadings(iter([ingest_pb2.StreamReadingsRequest(sequence=1)]))]
    assert [(a.sequence, a.summary.accepted_count) for a in acks] == [(1, 0)]


async def test_many_streams_at_once_all_commit(ingest: Stub, database_url: str) -> None:
    async def one_stream(device: int) -> int:
        requests = [
            ingest_pb2.StreamReadingsRequest(
                sequence=s,
                readings=[meter(f"M-{device}", BASE_TIME + minutes(s * 10 + i)) for i in range(10)],
            )
            for s in range(20)
        ]
        return sum([a.summary.accepted_count async for a in ingest.StreamReadings(iter(requests))])

    accepted = await asyncio.gather(*(one_stream(d) for d in range(16)))
    assert accepted == [200] * 16
    assert len(await meter_history(database_url)) == 3200
