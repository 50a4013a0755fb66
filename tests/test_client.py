"""The shipped client against a real server: retries, errors, and an uploader that loses nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import psycopg
import pytest

from energy import ClientError, EnergyClient, RetryPolicy, SyncEnergyClient, meter, vehicle
from energy.client import channel_target
from energy.v1 import ingest_pb2, reading_pb2
from energy_server.app import RunningServer, create_server
from energy_server.settings import Settings
from tests.conftest import settings_for_tests
from tests.support import BASE_TIME, AckWatch, fetch, minutes


class Retries:
    """Records every retry a policy decides on, and can act on the first one."""

    def __init__(self) -> None:
        self.seen: list[tuple[grpc.StatusCode, float | None, float]] = []
        self.first = asyncio.Event()

    def __call__(self, error: ClientError, delay_s: float) -> None:
        self.seen.append((error.code, error.retry_delay_s, delay_s))
        self.first.set()


def _readings(count: int, device_prefix: str = "M") -> list[reading_pb2.Reading]:
    return [meter(f"{device_prefix}-{i % 50}", 0.25, 230.0, BASE_TIME + minutes(i)) for i in range(count)]


async def _count(url: str, table: str) -> int:
    rows = await fetch(url, f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


async def test_unavailable_is_retried_until_the_server_is_back(database_url: str) -> None:
    settings = settings_for_tests()
    first = await create_server(settings, database_url)
    port = first.port
    await first.stop(0)
    retries = Retries()
    policy = RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.2, on_retry=retries)
    async with EnergyClient(f"127.0.0.1:{port}", retry=policy, timeout_s=30) as client:
        call = asyncio.ensure_future(client.ingest([meter("M-1", 1.0, 230.0, BASE_TIME)]))
        await retries.first.wait()  # the call has failed once: nobody listens
        again = await create_server(replace(settings, port=port), database_url)
        try:
            summary = await call
        finally:
            await again.stop(0)
    assert summary.accepted_count == 1
    assert {code for code, _, _ in retries.seen} == {grpc.StatusCode.UNAVAILABLE}


async def test_retries_stop_at_the_deadline_with_the_last_error(database_url: str) -> None:
    first = await create_server(settings_for_tests(), database_url)
    port = first.port
    await first.stop(0)
    retries = Retries()
    policy = RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.1, on_retry=retries)
    timeout_s = 1.0
    async with EnergyClient(f"127.0.0.1:{port}", retry=policy, timeout_s=timeout_s) as client:
        with pytest.raises(ClientError) as raised:
            await client.ingest([meter("M-1", 1.0, 230.0, BASE_TIME)])
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(retries.seen) >= 2
    # No wait was started that would end past the deadline.
    assert sum(delay for _, _, delay in retries.seen) < timeout_s


async def test_invalid_argument_is_not_retried_and_names_the_field(server: RunningServer) -> None:
    retries = Retries()
    async with EnergyClient(f"127.0.0.1:{server.port}", retry=RetryPolicy(on_retry=retries)) as client:
        with pytest.raises(ClientError) as raised:
            await client.ingest([meter("M-1", 1.0, -5.0, BASE_TIME)])
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in raised.value.violations] == ["readings[0].meter.voltage"]
    assert retries.seen == []


async def test_overload_is_retried_after_the_servers_hint(database_url: str) -> None:
    # The request budget holds exactly the two blocked calls: the third finds it spent.
    budget = sum(
        ingest_pb2.IngestReadingsRequest(readings=_readings(10, f"B{n}")).ByteSize() for n in range(2)
    )
    running = await create_server(
        settings_for_tests(
            writers=1,
            max_readings_per_message=10,
            max_pending_readings=10,
            max_message_bytes=budget,
            max_pending_bytes=budget,
            overload_wait_s=0.1,
            retry_delay_ms=200,
        ),
        database_url,
    )
    retries = Retries()
    try:
        async with (
            EnergyClient(
                f"127.0.0.1:{running.port}", retry=RetryPolicy(on_retry=retries), timeout_s=30
            ) as client,
            await psycopg.AsyncConnection.connect(database_url) as blocker,
        ):
            await blocker.execute("LOCK TABLE meter_current IN EXCLUSIVE MODE")
            # One batch commits against the lock, the next fills the queue: the third is refused.
            blocked = [asyncio.ensure_future(client.ingest(_readings(10, f"B{n}"))) for n in range(2)]
            async with asyncio.timeout(30):
                await running.committer.until_submitted(20)
            refused_then_stored = asyncio.ensure_future(client.ingest(_readings(1, "C")))
            await retries.first.wait()
            await blocker.rollback()
            summaries = await asyncio.gather(*blocked, refused_then_stored)
    finally:
        await running.stop(0)
    assert [s.accepted_count for s in summaries] == [10, 10, 1]
    code, hint, delay = retries.seen[0]
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert hint == pytest.approx(0.2)
    assert delay >= 0.2


async def test_sync_facade_ingests_uploads_and_reads(server: RunningServer) -> None:
    def use_blocking_client() -> tuple[int, int, int]:
        with SyncEnergyClient(f"127.0.0.1:{server.port}") as client:
            summary = client.ingest([meter("M-S", 2.0, 230.0, BASE_TIME)])
            report = client.upload(
                vehicle("V-S", 50.0, 1.5, 30.0, BASE_TIME + minutes(i)) for i in range(1200)
            )
            client.run(lambda c: c.link_vehicle("V-S", "M-S"))
            metrics = client.get_server_metrics()
            return summary.accepted_count, report.accepted, metrics.readings.accepted

    # The server runs on this thread's event loop: block another thread instead.
    assert await asyncio.to_thread(use_blocking_client) == (1, 1200, 1201)


async def test_uploader_reports_rejections_by_the_index_they_were_added_at(server: RunningServer) -> None:
    async with (
        EnergyClient(f"127.0.0.1:{server.port}") as client,
        client.uploader(max_readings_per_message=7) as uploader,
    ):
        for index, reading in enumerate(_readings(30)):
            if index in (3, 17):
                reading.meter.voltage = 9999.0
            await uploader.add(reading)
    report = uploader.report
    assert (report.accepted, report.rejected) == (28, 2)
    assert [(index, [v.field for v in violations]) for index, violations in report.rejections] == [
        (3, ["meter.voltage"]),
        (17, ["meter.voltage"]),
    ]


async def test_uploader_fails_on_a_permanent_error_and_keeps_the_unacknowledged(database_url: str) -> None:
    running = await create_server(settings_for_tests(max_readings_per_message=5), database_url)
    try:
        async with EnergyClient(f"127.0.0.1:{running.port}") as client:
            uploader = client.uploader(max_readings_per_message=10)
            readings = _readings(10)
            await uploader.add_many(readings)
            with pytest.raises(ClientError) as raised:
                await uploader.flush()
            with pytest.raises(ClientError):
                await uploader.add(readings[0])
            assert uploader.unacknowledged() == readings
            await uploader.abort()
    finally:
        await running.stop(0)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 5 readings" in raised.value.message


@pytest.mark.slow
async def test_uploader_keeps_every_reading_across_server_restarts(database_url: str) -> None:
    total, cuts = 30_000, 4
    settings: Settings = settings_for_tests()
    running = await create_server(settings, database_url)
    settings = replace(settings, port=running.port)
    watch = AckWatch()

    async def cut_the_connection_repeatedly() -> int:
        nonlocal running
        done = 0
        for n in range(cuts):
            await watch.until(total * (n + 1) // (cuts + 2))
            await running.stop(0)  # in-flight streams are cancelled mid-upload
            running = await create_server(settings, database_url)
            done += 1
        return done

    readings = [
        meter(f"M-{i % 500}", 0.01 * (i % 7), 230.0, BASE_TIME + minutes(i // 500)) for i in range(total)
    ]
    policy = RetryPolicy(initial_backoff_s=0.02, max_backoff_s=0.2)
    cutter = asyncio.ensure_future(cut_the_connection_repeatedly())
    try:
        async with (
            EnergyClient(f"127.0.0.1:{settings.port}", retry=policy) as client,
            client.uploader(
                max_readings_per_message=100, max_unacknowledged_readings=3_000, on_ack=watch
            ) as uploader,
        ):
            await uploader.add_many(readings)
        async with asyncio.timeout(60):
            assert await cutter == cuts
    finally:
        cutter.cancel()
        await running.stop(0)

    report = uploader.report
    assert report.reconnects >= cuts
    # Each reading answered once; those committed just before a cut came back as duplicates.
    assert report.accepted + report.duplicate == total
    assert (report.stale, report.rejected) == (0, 0)
    stored = await fetch(database_url, "SELECT count(*), count(DISTINCT (meter_id, ts)) FROM meter_readings")
    assert stored == [(total, total)]


def test_several_targets_become_one_round_robin_list() -> None:
    assert channel_target("localhost:50051") == "localhost:50051"
    assert channel_target("dns:///energy.internal:50051") == "dns:///energy.internal:50051"
    assert channel_target("127.0.0.1:50051, 127.0.0.1:50052") == "ipv4:127.0.0.1:50051,127.0.0.1:50052"
    assert channel_target("[::1]:50051,[::1]:50052") == "ipv6:[::1]:50051,[::1]:50052"
    with pytest.raises(ValueError, match="'replica-a' in 'replica-a,replica-b' is not host:port"):
        channel_target("replica-a,replica-b")
    with pytest.raises(ValueError, match="do not all resolve"):
        channel_target("no-such-host.invalid:1,127.0.0.1:2")
