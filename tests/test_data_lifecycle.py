"""Data lifecycle (DESIGN.md section 6): the conversion of an unpartitioned
database, partition maintenance, partitions made on demand, retention's
rejections and drops, answers past the raw horizon, and the plans of every
analytics statement. On the configured PostgreSQL and on the embedded 16."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from grpc import aio
from psycopg import sql

from energy.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2_grpc
from energy_server.app import RunningServer, create_server
from energy_server.domain import Window
from energy_server.settings import Settings, SettingsError
from energy_server.storage import repository
from energy_server.storage.embedded import EmbeddedPostgres
from energy_server.storage.migrate import apply_migrations, load_migrations
from energy_server.storage.partitions import (
    TABLES,
    Maintenance,
    PartitionLayout,
    Tier,
    partitions_of,
)
from energy_server.storage.sql import QUARTER_MINUTES
from energy_server.storage.sql import analytics as analytics_sql
from energy_server.storage.sql import partitions as partitions_sql
from energy_server.storage.sql import readings as readings_sql
from tests.conftest import TABLES as ALL_TABLES
from tests.conftest import database_url_for, drop_database, settings_for_tests
from tests.support import BASE_TIME, bad_request, meter, send, table_contents, timestamp, vehicle

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIGRATIONS = Settings().migrations_dir
PARTITIONED = [table for tables in TABLES.values() for table in tables]


@pytest.fixture(scope="module", params=["configured", "embedded-16"])
def lifecycle_server(
    request: pytest.FixtureRequest, server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The configured PostgreSQL (15 in CI), then the embedded 16."""
    if request.param == "configured":
        yield server_url
        return
    if not Settings.from_env().database_url:
        pytest.skip("the configured server is the embedded one: covered by the first parameter")
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded16") / "pgdata")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


@pytest.fixture
def fresh_database(lifecycle_server: str) -> Iterator[str]:
    """An empty database on the lifecycle server, dropped afterwards."""
    name = f"energy_lifecycle_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(lifecycle_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url_for(lifecycle_server, name)
    finally:
        drop_database(lifecycle_server, name)


@pytest.fixture
def migrated(fresh_database: str) -> str:
    asyncio.run(apply_migrations(fresh_database, MIGRATIONS))
    return fresh_database


def _rows(url: str, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(query.encode(), params).fetchall()


# -- conversion --------------------------------------------------------------------------------------

_FILL_OLD_SCHEMA = [
    """INSERT INTO meter_readings
       SELECT 'M-' || d, timestamptz '2026-11-20 05:03' + m * interval '7 minutes' + d * interval '1 second',
              (d * m % 97) / 10.0, 200 + m % 40
       FROM generate_series(1, 12) AS d, generate_series(0, 700) AS m""",
    """INSERT INTO vehicle_readings
       SELECT 'V-' || d, timestamptz '2026-11-20 05:03' + m * interval '11 minutes' + d * interval '1 second',
              m % 100, (d * m % 89) / 10.0, 20 + m % 30
       FROM generate_series(1, 12) AS d, generate_series(0, 500) AS m""",
    """INSERT INTO meter_current
       SELECT DISTINCT ON (meter_id) * FROM meter_readings ORDER BY meter_id, ts DESC""",
    """INSERT INTO vehicle_current
       SELECT DISTINCT ON (vehicle_id) * FROM vehicle_readings ORDER BY vehicle_id, ts DESC""",
    """INSERT INTO vehicle_meter_map (vehicle_id, meter_id)
       SELECT 'V-' || d, 'M-' || d FROM generate_series(1, 12) AS d""",
]


# The hourly rollups as the schema of migrations 0001-0004 has them (no quarter-hour sums).
_OLD_METER_HOURLY_FROM_HISTORY = b"""
INSERT INTO meter_hourly
SELECT meter_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(kwh_consumed_ac), min(kwh_consumed_ac), max(kwh_consumed_ac),
       sum(voltage), min(voltage), max(voltage), min(ts), max(ts)
FROM meter_readings GROUP BY 1, 2"""
_OLD_VEHICLE_HOURLY_FROM_HISTORY = b"""
INSERT INTO vehicle_hourly
SELECT vehicle_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(soc), min(soc), max(soc), sum(kwh_delivered_dc), min(kwh_delivered_dc), max(kwh_delivered_dc),
       sum(battery_temp), min(battery_temp), max(battery_temp), min(ts), max(ts)
FROM vehicle_readings GROUP BY 1, 2"""


def test_conversion_keeps_every_row_and_rollup(
    fresh_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for path in sorted(MIGRATIONS.glob("000[1-4]_*.sql")):
        shutil.copy(path, old / path.name)
    asyncio.run(apply_migrations(fresh_database, old))
    with psycopg.connect(fresh_database) as connection:
        for statement in _FILL_OLD_SCHEMA:
            connection.execute(statement.encode())
        # The rollups as that version kept them, rebuilt from history; plus a fleet shard of another writer.
        for rollup in (
            _OLD_METER_HOURLY_FROM_HISTORY,
            readings_sql.INSERT_METER_FLEET_FROM_HISTORY,
            _OLD_VEHICLE_HOURLY_FROM_HISTORY,
            readings_sql.INSERT_VEHICLE_FLEET_FROM_HISTORY,
        ):
            connection.execute(rollup)
        connection.execute(
            b"INSERT INTO meter_fleet_minutely SELECT minute, 7, reading_count, kwh_consumed_ac_sum,"
            b" kwh_consumed_ac_min, kwh_consumed_ac_max, voltage_sum, voltage_min, voltage_max,"
            b" first_ts, last_ts FROM meter_fleet_minutely WHERE shard = 0"
        )
    before = table_contents(fresh_database)
    assert all(before[table] for table in ALL_TABLES), "every table has rows to convert"

    with caplog.at_level(logging.INFO, logger="energy_server"):
        applied = asyncio.run(apply_migrations(fresh_database, MIGRATIONS))
    assert [m.version for m in applied] == [m.version for m in load_migrations(MIGRATIONS) if m.version >= 5]
    after = table_contents(fresh_database)
    # Migration 0007 adds the quarter-hour energies to the hourly rows: unknown (NULL) for these.
    for table in ("meter_hourly", "vehicle_hourly"):
        width = len(before[table][0])
        assert {row[width:] for row in after[table]} == {(None,) * len(QUARTER_MINUTES)}
        after[table] = [row[:width] for row in after[table]]
    assert after == before
    # Progress of the copy reached the log.
    assert any("meter_readings: 8412 rows copied" in r.getMessage() for r in caplog.records)

    kinds = dict(
        _rows(
            fresh_database,
            "SELECT relname, relkind::text FROM pg_class WHERE relname = ANY(%(t)s)",
            {"t": PARTITIONED},
        )
    )
    assert kinds == dict.fromkeys(PARTITIONED, "p")
    # History: one partition a day from 2026-11-20 (the last reading is on 2026-11-23);
    # hourly rollups: one a week, aligned on the epoch.
    with psycopg.connect(fresh_database) as connection:
        days = connection.execute(
            partitions_sql.SELECT_PARTITIONS.encode(), {"parent": "meter_readings"}
        ).fetchall()
        weeks = connection.execute(
            partitions_sql.SELECT_PARTITIONS.encode(), {"parent": "meter_hourly"}
        ).fetchall()
    assert [name for name, *_ in days][:4] == [f"meter_readings_202611{d}" for d in range(20, 24)]
    assert all(upper - lower == DAY for _, lower, upper, _ in days)
    # And the partition holding now with three after it, for servers of the previous version.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert {today + n * DAY for n in range(4)} <= {lower for _, lower, _, _ in days}
    assert all(
        upper - lower == 7 * DAY and (lower - EPOCH) % (7 * DAY) == timedelta(0)
        for _, lower, upper, _ in weeks
    )


# -- maintenance -------------------------------------------------------------------------------------


def _layout(**changes: Any) -> PartitionLayout:
    values: dict[str, Any] = {
        "raw_span": DAY,
        "hourly_span": 7 * DAY,
        "ahead": 3,
        "raw_retention": None,
        "hourly_retention": None,
    }
    values.update(changes)
    return PartitionLayout(**values)


async def test_maintenance_creates_partitions_ahead_once(migrated: str) -> None:
    # Far from the real now, whose partitions the migration made.
    now = datetime(2030, 6, 5, 10, 30, tzinfo=UTC)
    maintenance = Maintenance(migrated, _layout(ahead=2), clock=lambda: now)
    first = await maintenance.run()
    assert first.outcome == "ok"
    # The partition holding now and two after it, in each of the six tables.
    assert len(first.created) == 6 * 3
    async with await psycopg.AsyncConnection.connect(migrated) as connection:
        days = [p for p in await partitions_of(connection, "vehicle_readings") if p.upper > now]
        weeks = [p for p in await partitions_of(connection, "vehicle_hourly") if p.upper > now]
    assert [p.name for p in days] == [f"vehicle_readings_203006{d:02d}" for d in (5, 6, 7)]
    assert weeks[0].lower <= now < weeks[0].upper
    assert len(weeks) == 3
    assert {t.table: t.ahead for t in first.inventory} == dict.fromkeys(PARTITIONED, 2)
    second = await maintenance.run()
    assert second.outcome == "ok"
    assert second.created == ()
    # A day later the next one is made.
    later = Maintenance(migrated, _layout(ahead=2), clock=lambda: now + DAY)
    assert "meter_readings_20300608" in (await later.run()).created


async def test_one_instance_at_a_time_and_a_warning_when_too_few_lie_ahead(
    migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await psycopg.AsyncConnection.connect(migrated, autocommit=True) as other_instance:
        await other_instance.execute(
            partitions_sql.TRY_LOCK_MAINTENANCE, {"key": partitions_sql.MAINTENANCE_LOCK_KEY}
        )
        with caplog.at_level(logging.WARNING, logger="energy_server"):
            report = await Maintenance(migrated, _layout(ahead=5)).run()
        assert report.outcome == "skipped"
        assert report.created == ()
        assert any(
            "meter_readings has 3 partitions ahead of now, fewer than ENERGY_PARTITIONS_AHEAD=5"
            in r.getMessage()
            for r in caplog.records
        )
    assert (await Maintenance(migrated, _layout()).run()).outcome == "ok"


async def test_server_reports_partitions_in_its_metrics(migrated: str) -> None:
    running = await create_server(settings_for_tests(partitions_ahead=5, metrics_port=0), migrated)
    try:
        report = running.metrics_snapshot().maintenance
        assert report is not None
        assert report.outcome == "ok"
        assert {t.table: t.ahead for t in report.inventory} == dict.fromkeys(PARTITIONED, 5)
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    finally:
        await running.stop(0)
    assert 'energy_partitions{table="meter_readings"} 6.0' in text
    assert 'energy_partitions_ahead{table="vehicle_hourly"} 5.0' in text
    assert 'energy_maintenance_last_run_outcome{outcome="ok"} 1.0' in text
    assert 'energy_partition_oldest_timestamp_seconds{table="meter_readings"}' in text


def test_maintain_command_prints_the_partitions(migrated: str) -> None:
    environment = {**os.environ, "DATABASE_URL": migrated, "ENERGY_PARTITIONS_AHEAD": "5"}
    result = subprocess.run(
        [sys.executable, "-m", "energy_server", "maintain"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "created partition meter_readings_" in result.stdout
    assert "vehicle_fleet_minutely       6 partitions (5 ahead)" in result.stdout


# -- partitions on demand ----------------------------------------------------------------------------


@pytest.fixture
async def running(migrated: str) -> AsyncIterator[RunningServer]:
    server = await create_server(settings_for_tests(), migrated)
    try:
        yield server
    finally:
        await server.stop(0)


@pytest.fixture
async def channel(running: RunningServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{running.port}") as opened:
        yield opened


async def test_late_readings_get_their_partition_on_demand(migrated: str, channel: aio.Channel) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    # Far outside the partitions made ahead, spread over years, in every shape.
    instants = [datetime(2003, 5, 1, 12, tzinfo=UTC), datetime(2019, 2, 28, 23, 59, tzinfo=UTC), BASE_TIME]
    readings = [meter(f"M-{i}", at, 1.0 + i, 230.0) for i, at in enumerate(instants)]
    readings += [vehicle(f"V-{i}", at, 50.0, 2.0, 25.0) for i, at in enumerate(instants)]
    first = await send(ingest, "unary", readings)
    assert first.rejections == {}
    assert first.accepted == 6
    for shape in ("upload", "stream"):  # the same again: stored once, duplicates after
        assert len((await send(ingest, shape, readings)).duplicates) == 6
    assert len(_rows(migrated, "SELECT 1 FROM meter_readings")) == 3
    assert len(_rows(migrated, "SELECT 1 FROM vehicle_hourly")) == 3
    # Without retention, late readings below every partition share one partition per gap.
    with psycopg.connect(migrated) as connection:
        bounds = connection.execute(
            partitions_sql.SELECT_PARTITIONS.encode(), {"parent": "meter_readings"}
        ).fetchall()
    assert bounds[0][1] == datetime(2003, 5, 1, tzinfo=UTC)
    assert bounds[0][2] > BASE_TIME  # reaching up to the partitions made ahead of now
    assert len(bounds) <= 1 + 4 + 1  # the late one, today with 3 ahead (and a midnight passed)


async def test_concurrent_servers_creating_one_partition_both_store(migrated: str) -> None:
    servers = [await create_server(settings_for_tests(), migrated) for _ in range(2)]
    try:
        channels = [aio.insecure_channel(f"127.0.0.1:{s.port}") for s in servers]
        stubs = [ingest_pb2_grpc.IngestServiceStub(c) for c in channels]
        day = datetime(2024, 7, 1, tzinfo=UTC)
        batches = [
            [meter(f"M-{n}-{i}", day + i * timedelta(minutes=1), 1.0, 230.0) for i in range(200)]
            for n in range(8)
        ]
        results = await asyncio.gather(
            *(send(stubs[n % 2], "unary", batch) for n, batch in enumerate(batches))
        )
        for channel in channels:
            await channel.close()
    finally:
        for server in servers:
            await server.stop(0)
    assert sum(r.accepted for r in results) == 1600
    assert _rows(migrated, "SELECT count(*) FROM meter_readings") == [(1600,)]


async def test_a_partition_dropped_behind_the_servers_back_is_made_again(
    migrated: str, channel: aio.Channel
) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    day = datetime(2025, 3, 3, tzinfo=UTC)
    assert (await send(ingest, "unary", [meter("M-1", day, 1.0, 230.0)])).accepted == 1
    with psycopg.connect(migrated, autocommit=True) as connection:
        for table in ("meter_readings", "meter_hourly", "meter_fleet_minutely"):
            for name, *_ in connection.execute(partitions_sql.SELECT_PARTITIONS.encode(), {"parent": table}):
                connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    # The server still believes that day is covered: the batch fails on the
    # missing partition, which is made again, and the batch is stored.
    assert (await send(ingest, "unary", [meter("M-2", day + HOUR, 2.0, 231.0)])).accepted == 1
    assert _rows(migrated, "SELECT meter_id FROM meter_readings") == [("M-2",)]


# -- retention ---------------------------------------------------------------------------------------

# Three linked pairs; every reading of a meter is 1 kWh, of its vehicle 0.5, 0.9 and 1.2 kWh:
# V-1 is below the 0.85 threshold, V-3 above 1, at any window.
_DC_KWH = {"V-1": 0.5, "V-2": 0.9, "V-3": 1.2}
_STEP = timedelta(minutes=15)


def _history(now: datetime) -> list[tuple[str, datetime, float]]:
    """(device, ts, kWh) every 15 minutes over the 10 days before `now` (plus a second per device)."""
    start = now - 10 * DAY
    steps = int((10 * DAY - HOUR) / _STEP)
    rows = []
    for n in (1, 2, 3):
        offset = timedelta(seconds=n)
        rows += [(f"M-{n}", start + i * _STEP + offset, 1.0) for i in range(steps)]
        rows += [(f"V-{n}", start + i * _STEP + offset, _DC_KWH[f"V-{n}"]) for i in range(steps)]
    return rows


def _in(rows: list[tuple[str, datetime, float]], device: str, start: datetime, end: datetime) -> list[float]:
    return [kwh for d, ts, kwh in rows if d == device and start <= ts < end]


def _window(start: datetime, end: datetime) -> analytics_pb2.TimeWindow:
    return analytics_pb2.TimeWindow(start_time=timestamp(start), end_time=timestamp(end))


def _as_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


async def test_retention_drops_partitions_and_answers_past_the_horizon(migrated: str) -> None:
    now = datetime.now(UTC)
    history = _history(now)
    loader_settings = settings_for_tests(
        raw_retention=30 * DAY, rollup_retention=60 * DAY, rollup_partition_interval=DAY
    )
    loader = await create_server(loader_settings, migrated)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{loader.port}") as opened:
            ingest = ingest_pb2_grpc.IngestServiceStub(opened)
            links = analytics_pb2_grpc.AnalyticsServiceStub(opened)
            for n in (1, 2, 3):
                await links.LinkVehicle(
                    analytics_pb2.LinkVehicleRequest(vehicle_id=f"V-{n}", meter_id=f"M-{n}")
                )
            readings = [
                meter(d, ts, kwh, 230.0) if d.startswith("M") else vehicle(d, ts, 50.0, kwh, 25.0)
                for d, ts, kwh in history
            ]
            assert (await send(ingest, "unary", readings, per_message=1000)).accepted == len(history)
    finally:
        await loader.stop(0)

    # Raw data is kept 5 days, hourly rollups 8: a first run moves the horizons and drops nothing.
    layout = _layout(hourly_span=DAY, raw_retention=5 * DAY, hourly_retention=8 * DAY)
    first = await Maintenance(migrated, layout, clock=lambda: now).run()
    assert first.outcome == "ok"
    assert first.dropped == ()
    horizons = dict(_rows(migrated, "SELECT tier, kept_since FROM retention_horizons"))
    raw_floor, hourly_floor = horizons["raw"], horizons["hourly"]
    assert raw_floor <= now - 5 * DAY < raw_floor + DAY
    assert raw_floor.time() == datetime.min.time()
    assert hourly_floor <= now - 8 * DAY < hourly_floor + DAY
    assert _rows(migrated, "SELECT count(*) FROM meter_readings WHERE ts < %(f)s", {"f": raw_floor}) != [(0,)]
    # Past the drop delay the partitions behind the horizons go, whole.
    past_delay = datetime.now(UTC) + timedelta(seconds=61)
    second = await Maintenance(migrated, layout, clock=lambda: past_delay).run()
    assert second.outcome == "ok"
    assert len(second.dropped) >= 4 * 4 + 2 * 1
    with psycopg.connect(migrated) as connection:
        for tier, floor in ((Tier.RAW, raw_floor), (Tier.HOURLY, hourly_floor)):
            for table in TABLES[tier]:
                bounds = connection.execute(
                    partitions_sql.SELECT_PARTITIONS.encode(), {"parent": table}
                ).fetchall()
                assert min(lower for _, lower, _, _ in bounds) >= floor, table
    assert _rows(migrated, "SELECT count(*) FROM meter_readings WHERE ts < %(f)s", {"f": raw_floor}) == [(0,)]
    assert _rows(migrated, "SELECT count(*) FROM meter_hourly WHERE hour < %(f)s", {"f": hourly_floor}) == [
        (0,)
    ]
    assert _rows(migrated, "SELECT count(*) FROM meter_hourly WHERE hour < %(f)s", {"f": raw_floor}) != [(0,)]

    settings = settings_for_tests(
        raw_retention=5 * DAY, rollup_retention=8 * DAY, rollup_partition_interval=DAY
    )
    server = await create_server(settings, migrated)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.port}") as opened:
            await _check_answers_past_the_horizon(opened, history, now, raw_floor, hourly_floor)
    finally:
        await server.stop(0)


async def _check_answers_past_the_horizon(
    channel: aio.Channel,
    history: list[tuple[str, datetime, float]],
    now: datetime,
    raw_floor: datetime,
    hourly_floor: datetime,
) -> None:
    analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)

    # Wholly before the raw horizon: whole hours only, both ends trimmed to them.
    asked_start, asked_end = (
        raw_floor - 2 * DAY + timedelta(minutes=20),
        raw_floor - DAY + timedelta(minutes=10),
    )
    covered_start, covered_end = raw_floor - 2 * DAY + HOUR, raw_floor - DAY
    stats = await analytics.GetMeterStats(
        analytics_pb2.GetMeterStatsRequest(meter_id="M-1", window=_window(asked_start, asked_end))
    )
    assert stats.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert (_as_datetime(stats.window.start_time), _as_datetime(stats.window.end_time)) == (
        covered_start,
        covered_end,
    )
    expected = _in(history, "M-1", covered_start, covered_end)
    assert stats.aggregate.reading_count == len(expected)
    assert stats.aggregate.kwh_consumed_ac.sum == pytest.approx(sum(expected))

    # Crossing the horizon: hourly before it, every reading after it, exact.
    crossing_start = raw_floor - DAY + timedelta(minutes=30)
    vehicle_stats = await analytics.GetVehicleStats(
        analytics_pb2.GetVehicleStatsRequest(vehicle_id="V-2", window=_window(crossing_start, now))
    )
    assert vehicle_stats.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert _as_datetime(vehicle_stats.window.start_time) == raw_floor - DAY + HOUR
    expected = _in(history, "V-2", raw_floor - DAY + HOUR, now)
    assert vehicle_stats.aggregate.reading_count == len(expected)
    assert vehicle_stats.aggregate.kwh_delivered_dc.sum == pytest.approx(sum(expected))

    # Inside raw history: as asked.
    inside = await analytics.GetMeterStats(
        analytics_pb2.GetMeterStatsRequest(
            meter_id="M-3", window=_window(raw_floor + timedelta(minutes=7), now)
        )
    )
    assert inside.resolution == analytics_pb2.RESOLUTION_RAW
    assert inside.aggregate.reading_count == len(_in(history, "M-3", raw_floor + timedelta(minutes=7), now))

    # The fleet, from the devices' hourly rollups (its minute rollups went with raw history).
    fleet = await analytics.GetMeterFleetSummary(
        analytics_pb2.GetMeterFleetSummaryRequest(window=_window(asked_start, asked_end))
    )
    assert fleet.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert fleet.device_count == 3
    assert fleet.aggregate.reading_count == sum(
        len(_in(history, f"M-{n}", covered_start, covered_end)) for n in (1, 2, 3)
    )

    performance = await analytics.GetVehiclePerformance(
        analytics_pb2.GetVehiclePerformanceRequest(vehicle_id="V-1", window=_window(asked_start, asked_end))
    )
    assert performance.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert performance.efficiency_ratio == pytest.approx(0.5)

    anomalies = await analytics.ListEfficiencyAnomalies(
        analytics_pb2.ListEfficiencyAnomaliesRequest(window=_window(asked_start, asked_end))
    )
    assert anomalies.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert [a.vehicle_id for a in anomalies.anomalies] == ["V-1", "V-3"]

    hourly_series = await analytics.GetTimeSeries(
        analytics_pb2.GetTimeSeriesRequest(
            kind=analytics_pb2.DEVICE_KIND_METER,
            device_id="M-2",
            window=_window(asked_start, asked_end),
            bucket=analytics_pb2.TIME_BUCKET_ONE_HOUR,
        )
    )
    assert hourly_series.resolution == analytics_pb2.RESOLUTION_HOURLY
    assert [p.meter.reading_count for p in hourly_series.points] == [4] * 23

    # Refused, naming the horizon: minute buckets past the raw horizon, anything past the hourly one.
    with pytest.raises(grpc.aio.AioRpcError) as minutes:
        await analytics.GetTimeSeries(
            analytics_pb2.GetTimeSeriesRequest(
                kind=analytics_pb2.DEVICE_KIND_METER,
                device_id="M-2",
                window=_window(asked_start, asked_end),
                bucket=analytics_pb2.TIME_BUCKET_ONE_MINUTE,
            )
        )
    assert minutes.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert raw_floor.isoformat() in (minutes.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as too_old:
        await analytics.GetMeterFleetSummary(
            analytics_pb2.GetMeterFleetSummaryRequest(window=_window(hourly_floor - HOUR, now))
        )
    assert too_old.value.code() == grpc.StatusCode.OUT_OF_RANGE
    violations = bad_request(too_old.value).field_violations
    assert [v.field for v in violations] == ["window.start_time"]
    assert hourly_floor.isoformat() in violations[0].description

    # A reading older than the raw horizon is rejected naming timestamp and the horizon; never stored.
    old, fresh = now - 5 * DAY - HOUR, now - 5 * DAY + HOUR
    outcomes = await send(ingest, "unary", [meter("M-9", old, 1.0, 230.0), meter("M-9", fresh, 1.0, 230.0)])
    assert outcomes.accepted == 1
    assert list(outcomes.rejections) == [0]
    [(name, description)] = outcomes.rejections[0]
    assert name == "meter.timestamp"
    assert "raw retention horizon" in description
    assert "ENERGY_RAW_RETENTION" in description
    stored = await analytics.GetMeterStats(
        analytics_pb2.GetMeterStatsRequest(meter_id="M-9", window=_window(now - 5 * DAY, now))
    )
    assert stored.aggregate.reading_count == 1


# -- plans -------------------------------------------------------------------------------------------

_PLAN_WINDOW = Window(BASE_TIME + DAY + timedelta(minutes=30), BASE_TIME + 2 * DAY + timedelta(minutes=30))


def _statements() -> list[tuple[str, bytes, dict[str, Any]]]:
    """Every windowed analytics statement with the parameters the service gives it."""
    hours = repository._ranges(_PLAN_WINDOW, HOUR)
    minutes = repository._ranges(_PLAN_WINDOW, timedelta(minutes=1))
    statements: list[tuple[str, bytes, dict[str, Any]]] = []
    for name, table in (("meter", analytics_sql.METER), ("vehicle", analytics_sql.VEHICLE)):
        device = {"device_id": f"{name[0].upper()}-1"}
        statements += [
            (f"{name} device aggregate", table.select_device_aggregate, {**device, **hours}),
            (f"{name} time series", table.select_time_series, {**device, "bucket": HOUR, **hours}),
            (f"{name} fleet aggregate", table.select_fleet_aggregate, minutes),
            (f"{name} fleet aggregate by device", table.select_fleet_aggregate_by_device, hours),
        ]
    statements += [
        (
            "linked meter aggregate",
            analytics_sql.METER.select_linked_meter_aggregate,
            {"vehicle_id": "V-1", **hours},
        ),
        *(
            (f"anomalies' {name} energies", statement, repository._with_edge_hours(_PLAN_WINDOW, HOUR))
            for name, statement in (
                ("meter", analytics_sql.SELECT_METER_ENERGIES),
                ("vehicle", analytics_sql.SELECT_VEHICLE_ENERGIES),
            )
        ),
    ]
    return statements


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "Relation Name" in plan:
        yield plan["Node Type"], plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from _scans(child)


async def test_every_analytics_statement_reads_only_its_window(migrated: str, channel: aio.Channel) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    # Partitions as maintenance made them ahead of those days: a day each (history), a week (hourly).
    assert (await Maintenance(migrated, _layout(ahead=6), clock=lambda: BASE_TIME).run()).outcome == "ok"
    for n in range(1, 6):
        await analytics.LinkVehicle(analytics_pb2.LinkVehicleRequest(vehicle_id=f"V-{n}", meter_id=f"M-{n}"))
    step = timedelta(minutes=10)
    readings = [
        reading
        for n in range(1, 6)
        for i in range(int(5 * DAY / step))
        for reading in (
            meter(f"M-{n}", BASE_TIME + i * step, 1.0, 230.0),
            vehicle(f"V-{n}", BASE_TIME + i * step, 50.0, 0.8, 25.0),
        )
    ]
    assert (await send(ingest, "unary", readings)).accepted == len(readings)

    async with await psycopg.AsyncConnection.connect(migrated, autocommit=True) as connection:
        await connection.execute(b"ANALYZE")
        partitions = {
            p.name: (table, p) for table in PARTITIONED for p in await partitions_of(connection, table)
        }
        # An index must be able to serve every scan: with sequential scans priced
        # out, a plan that still has one on a partition has no index to use.
        # (Tables this small would otherwise be read whole, which says nothing.)
        await connection.execute(b"SET enable_seqscan = off")
        for name, statement, params in _statements():
            cursor = await connection.execute(b"EXPLAIN (FORMAT JSON) " + statement, params)
            row = await cursor.fetchone()
            assert row is not None
            scans = list(_scans(row[0][0]["Plan"]))
            touched = [(node, relation) for node, relation in scans if relation in partitions]
            assert touched, name
            for node, relation in touched:
                assert node != "Seq Scan", f"{name}: {node} on {relation}"
                _, partition = partitions[relation]
                # Rollup rows of the window's whole periods, raw rows of its edges: all inside the window.
                assert partition.lower < _PLAN_WINDOW.end, f"{name}: reads {relation}, after the window"
                assert partition.upper > _PLAN_WINDOW.start, f"{name}: reads {relation}, before the window"
            assert not any(relation in PARTITIONED for _, relation in scans), f"{name}: unpruned parent"
    # Partitions outside the window exist, so the pruning above is real.
    assert sum(1 for _, p in partitions.values() if p.upper <= _PLAN_WINDOW.start) >= 4


# -- settings ----------------------------------------------------------------------------------------


def test_lifecycle_settings_parse_and_refuse_what_cannot_work() -> None:
    settings = Settings.from_env(
        {
            "ENERGY_RAW_RETENTION": "90 days",
            "ENERGY_ROLLUP_RETENTION": "730d",
            "ENERGY_PARTITION_INTERVAL": "6 hours",
            "ENERGY_ROLLUP_PARTITION_INTERVAL": "2w",
        }
    )
    assert settings.raw_retention == timedelta(days=90)
    assert settings.rollup_retention == timedelta(days=730)
    assert settings.partition_interval == timedelta(hours=6)
    assert settings.rollup_partition_interval == timedelta(weeks=2)
    assert Settings.from_env({"ENERGY_RAW_RETENTION": "off"}).raw_retention is None
    refused = {
        "ENERGY_PARTITION_INTERVAL must be whole hours": {"ENERGY_PARTITION_INTERVAL": "90 minutes"},
        "expected a duration such as '90 days'": {"ENERGY_RAW_RETENTION": "a fortnight"},
        "ENERGY_ROLLUP_RETENTION needs ENERGY_RAW_RETENTION set": {"ENERGY_ROLLUP_RETENTION": "30 days"},
        "at most as long": {"ENERGY_RAW_RETENTION": "31 days", "ENERGY_ROLLUP_RETENTION": "30 days"},
        "ENERGY_PARTITIONS_AHEAD must be at least 1": {"ENERGY_PARTITIONS_AHEAD": "0"},
    }
    for message, environment in refused.items():
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(environment)
