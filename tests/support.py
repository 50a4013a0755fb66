"""Helpers shared by the tests: building readings, sending them over each
ingest shape through the generated stubs, and reading the tables back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import psycopg.sql
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from energy import Uploader
from energy.v1 import ingest_pb2, ingest_pb2_grpc, reading_pb2
from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.sql import DATA_TABLES
from energy_server.storage.sql.migrations import SELECT_CITUS_INSTALLED

SHAPES = ("unary", "upload", "stream")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@functools.cache
def is_citus_coordinator(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(SELECT_CITUS_INSTALLED).fetchone()
    return bool(row and row[0])


async def empty_tables(url: str) -> None:
    """Delete every row of every data table (not the schema, nor the partitions)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        if is_citus_coordinator(url):
            # TRUNCATE takes seconds there (every shard of every partition,
            # on every worker); a test's few rows go faster by DELETE.
            async with connection.transaction():
                for table in DATA_TABLES:
                    await connection.execute(
                        psycopg.sql.SQL("DELETE FROM {}").format(psycopg.sql.Identifier(table))
                    )
        else:
            await connection.execute(
                psycopg.sql.SQL("TRUNCATE {}").format(
                    psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(t) for t in DATA_TABLES)
                )
            )


def table_contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, in a stable order."""
    with psycopg.connect(url) as connection:
        return {
            table: connection.execute(
                psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(psycopg.sql.Identifier(table))
            ).fetchall()
            for table in DATA_TABLES
        }


def run_migrations(url: str) -> None:
    asyncio.run(apply_migrations(url, Settings().migrations_dir))


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def meter(
    meter_id: str = "METER-001",
    at: datetime = BASE_TIME,
    kwh_consumed_ac: float | None = 12.5,
    voltage: float | None = 230.4,
) -> reading_pb2.Reading:
    values: dict[str, Any] = {"meter_id": meter_id, "timestamp": timestamp(at)}
    if kwh_consumed_ac is not None:
        values["kwh_consumed_ac"] = kwh_consumed_ac
    if voltage is not None:
        values["voltage"] = voltage
    return reading_pb2.Reading(meter=reading_pb2.MeterReading(**values))


def vehicle(
    vehicle_id: str = "VEH-001",
    at: datetime = BASE_TIME,
    soc: float | None = 78.5,
    kwh_delivered_dc: float | None = 6.2,
    battery_temp: float | None = 32.1,
) -> reading_pb2.Reading:
    values: dict[str, Any] = {"vehicle_id": vehicle_id, "timestamp": timestamp(at)}
    for name, value in (("soc", soc), ("kwh_delivered_dc", kwh_delivered_dc), ("battery_temp", battery_temp)):
        if value is not None:
            values[name] = value
    return reading_pb2.Reading(vehicle=reading_pb2.VehicleReading(**values))


@dataclass
class Outcomes:
    """What a whole send reported, indexes counted across all its messages."""

    accepted: int = 0
    duplicates: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    rejections: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, summary: ingest_pb2.IngestSummary, offset: int) -> None:
        assert summary.duplicate_count == len(summary.duplicate_indexes)
        assert summary.stale_count == len(summary.stale_indexes)
        assert summary.rejected_count == len(summary.rejections)
        self.accepted += summary.accepted_count
        self.duplicates += [offset + i for i in summary.duplicate_indexes]
        self.stale += [offset + i for i in summary.stale_indexes]
        for rejection in summary.rejections:
            self.rejections[offset + rejection.index] = [
                (v.field, v.description) for v in rejection.field_violations
            ]

    def rejected_fields(self, index: int) -> list[str]:
        return [name for name, _ in self.rejections.get(index, [])]


def bad_request(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    """The BadRequest detail of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            found = error_details_pb2.BadRequest()
            detail.Unpack(found)
            return found
    raise AssertionError("no BadRequest detail")


def _is_all_invalid(error: grpc.aio.AioRpcError) -> bool:
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return False
    return all(v.field.startswith("readings[") for v in bad_request(error).field_violations)


def _unary_rejections(error: grpc.aio.AioRpcError) -> ingest_pb2.IngestSummary:
    """An all-invalid unary request fails; re-express its violations as a summary."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    rejected: dict[int, list[ingest_pb2.FieldViolation]] = {}
    for violation in bad_request(error).field_violations:
        head, _, rest = violation.field.partition("].")
        index = int(head.removeprefix("readings["))
        rejected.setdefault(index, []).append(
            ingest_pb2.FieldViolation(field=rest, description=violation.description)
        )
    return ingest_pb2.IngestSummary(
        rejected_count=len(rejected),
        rejections=[
            ingest_pb2.ReadingRejection(index=i, field_violations=v) for i, v in sorted(rejected.items())
        ],
    )


def split(readings: Sequence[reading_pb2.Reading], per_message: int) -> list[list[reading_pb2.Reading]]:
    return [list(readings[i : i + per_message]) for i in range(0, len(readings), per_message)]


async def send(
    stub: ingest_pb2_grpc.IngestServiceAsyncStub,
    shape: str,
    readings: Sequence[reading_pb2.Reading],
    per_message: int = 1000,
) -> Outcomes:
    """Send `readings` over one ingest shape; outcomes with indexes into `readings`."""
    return await send_messages(stub, shape, split(readings, per_message))


async def send_messages(
    stub: ingest_pb2_grpc.IngestServiceAsyncStub,
    shape: str,
    messages: Sequence[Sequence[reading_pb2.Reading]],
) -> Outcomes:
    outcomes = Outcomes()
    offsets = [sum(len(m) for m in messages[:i]) for i in range(len(messages))]
    if shape == "unary":
        for offset, message in zip(offsets, messages, strict=True):
            try:
                response = await stub.IngestReadings(ingest_pb2.IngestReadingsRequest(readings=message))
                summary = response.summary
            except grpc.aio.AioRpcError as error:
                if not _is_all_invalid(error):
                    raise
                summary = _unary_rejections(error)
            outcomes.add(summary, offset)
    elif shape == "upload":
        uploaded = await stub.UploadReadings(
            iter([ingest_pb2.UploadReadingsRequest(readings=m) for m in messages])
        )
        outcomes.add(uploaded.summary, 0)
    else:
        requests = [
            ingest_pb2.StreamReadingsRequest(sequence=i + 1, readings=m) for i, m in enumerate(messages)
        ]
        acks = [ack async for ack in stub.StreamReadings(iter(requests))]
        assert [ack.sequence for ack in acks] == [r.sequence for r in requests]
        for offset, ack in zip(offsets, acks, strict=True):
            outcomes.add(ack.summary, offset)
    return outcomes


async def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute(query.encode())
        return await cursor.fetchall()


async def meter_history(url: str) -> list[tuple[Any, ...]]:
    return await fetch(url, "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM meter_readings ORDER BY 1, 2")


async def vehicle_history(url: str) -> list[tuple[Any, ...]]:
    return await fetch(
        url,
        "SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp FROM vehicle_readings ORDER BY 1, 2",
    )


async def meter_current(url: str) -> list[tuple[Any, ...]]:
    return await fetch(url, "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM meter_current ORDER BY 1")


async def vehicle_current(url: str) -> list[tuple[Any, ...]]:
    return await fetch(
        url,
        "SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp FROM vehicle_current ORDER BY 1",
    )


async def _stored_rows(url: str) -> list[list[tuple[Any, ...]]]:
    return [
        await meter_history(url),
        await vehicle_history(url),
        await meter_current(url),
        await vehicle_current(url),
    ]


async def send_whole_and_one_at_a_time(
    stub: ingest_pb2_grpc.IngestServiceAsyncStub,
    shape: str,
    url: str,
    messages: Sequence[Sequence[reading_pb2.Reading]],
) -> tuple[Outcomes, Outcomes]:
    """Send `messages` as they are, then, into emptied tables, their readings one
    per message; asserts both left the same history and current rows and returns
    both sends' outcomes (the first's rows stay for the caller to inspect)."""
    await empty_tables(url)
    whole = await send_messages(stub, shape, messages)
    rows_of_whole = await _stored_rows(url)
    await empty_tables(url)
    one_at_a_time = await send_messages(stub, shape, [[r] for m in messages for r in m])
    assert rows_of_whole == await _stored_rows(url)
    return whole, one_at_a_time


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def retry_pushback_ms(error: grpc.aio.AioRpcError) -> int | None:
    """The retry delay a failed call carries, checking trailer and RetryInfo agree."""
    trailer = dict(error.trailing_metadata() or ()).get("grpc-retry-pushback-ms")
    status = rpc_status.from_call(error)
    info = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
    if trailer is None or info is None:
        return None
    assert int(trailer) == info.retry_delay.ToMilliseconds()
    return int(trailer)


async def next_status(updates: AsyncIterator[health_pb2.HealthCheckResponse], wanted: int) -> None:
    async with asyncio.timeout(30):
        async for update in updates:
            if update.status == wanted:
                return
    raise AssertionError("health stream ended")


class AckWatch:
    """Collects acknowledged reading indexes and wakes whoever waits for a count."""

    def __init__(self) -> None:
        self.acked: set[int] = set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self, ack: Uploader.Ack) -> None:
        self.acked.update(range(ack.first_index, ack.first_index + ack.reading_count))
        for wanted, reached in self._waiters:
            if len(self.acked) >= wanted and not reached.done():
                reached.set_result(None)

    async def until(self, count: int) -> None:
        if len(self.acked) >= count:
            return
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, reached))
        async with asyncio.timeout(120):
            await reached
