"""AnalyticsService against references computed in Python from the same readings."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import psycopg
import psycopg_pool
import pytest
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from energy.v1 import analytics_pb2, reading_pb2
from energy_server.app import create_server
from energy_server.domain import DeviceKind, Window
from energy_server.storage.repository import AnalyticsRepository, ReadingRepository, _with_edge_hours
from energy_server.storage.sql import analytics as analytics_sql
from tests.conftest import settings_for_tests
from tests.reference import (
    METER_FIELDS,
    VEHICLE_FIELDS,
    Expected,
    Row,
    aggregate,
    buckets,
    close,
    in_window,
    stored,
)
from tests.support import BASE_TIME, bad_request, empty_tables, fetch, meter, send, timestamp, vehicle

if TYPE_CHECKING:
    from energy.v1.analytics_pb2_grpc import AnalyticsServiceAsyncStub as Analytics
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Ingest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def window(start: datetime, end: datetime) -> analytics_pb2.TimeWindow:
    return analytics_pb2.TimeWindow(start_time=timestamp(start), end_time=timestamp(end))


def as_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def assert_aggregate(message: Any, expected: Expected, fields: tuple[str, ...]) -> None:
    assert message.reading_count == expected.reading_count
    for name in fields:
        statistics = getattr(message, name)
        assert close(statistics.sum, expected.sums[name]), (name, statistics.sum, expected.sums[name])
        if expected.reading_count:
            assert close(statistics.mean, expected.sums[name] / expected.reading_count)
            assert (statistics.min, statistics.max) == (expected.mins[name], expected.maxs[name])
        else:
            assert not statistics.HasField("mean")
            assert not statistics.HasField("min")
            assert not statistics.HasField("max")
    if expected.first is None:
        assert not message.HasField("first_reading_time")
        assert not message.HasField("last_reading_time")
    else:
        assert as_datetime(message.first_reading_time) == expected.first
        assert as_datetime(message.last_reading_time) == expected.last


def assert_domain_aggregate(found: Any, expected: Expected, fields: tuple[str, ...]) -> None:
    assert found.reading_count == expected.reading_count
    for name in fields:
        assert close(found.fields[name].sum, expected.sums[name])
        assert (found.fields[name].min, found.fields[name].max) == (expected.mins[name], expected.maxs[name])
    assert (found.first_reading, found.last_reading) == (expected.first, expected.last)


async def link(analytics: Analytics, vehicle_id: str, meter_id: str) -> None:
    await analytics.LinkVehicle(analytics_pb2.LinkVehicleRequest(vehicle_id=vehicle_id, meter_id=meter_id))


async def performance(
    analytics: Analytics, vehicle_id: str, span: analytics_pb2.TimeWindow | None = None
) -> analytics_pb2.GetVehiclePerformanceResponse:
    request = analytics_pb2.GetVehiclePerformanceRequest(vehicle_id=vehicle_id)
    if span is not None:
        request.window.CopyFrom(span)
    return await analytics.GetVehiclePerformance(request)


# ---- The original's behaviours ---------------------------------------------


async def test_performance_of_the_original_example(ingest: Ingest, analytics: Analytics) -> None:
    now = datetime.now(UTC)
    await link(analytics, "VEH-001", "METER-001")
    await send(
        ingest,
        "unary",
        [
            meter("METER-001", now - timedelta(hours=2), kwh_consumed_ac=60.0),
            meter("METER-001", now - timedelta(hours=1), kwh_consumed_ac=40.0),
            vehicle("VEH-001", now - timedelta(hours=2), kwh_delivered_dc=50.0, battery_temp=30.0),
            vehicle("VEH-001", now - timedelta(hours=1), kwh_delivered_dc=35.0, battery_temp=35.0),
        ],
    )
    result = await performance(analytics, "VEH-001")
    assert (result.vehicle_id, result.meter_id) == ("VEH-001", "METER-001")
    assert (result.ac_consumed_kwh, result.dc_delivered_kwh) == (100.0, 85.0)
    assert result.efficiency_ratio == pytest.approx(0.85)
    assert result.avg_battery_temp_celsius == pytest.approx(32.5)
    assert (result.meter_reading_count, result.vehicle_reading_count) == (2, 2)
    assert as_datetime(result.window.end_time) - as_datetime(result.window.start_time) == timedelta(hours=24)


async def test_zero_ac_leaves_efficiency_unset(ingest: Ingest, analytics: Analytics) -> None:
    now = datetime.now(UTC)
    await link(analytics, "V", "M")
    await send(ingest, "unary", [meter("M", now - HOUR, 0.0), vehicle("V", now - HOUR, kwh_delivered_dc=5.0)])
    result = await performance(analytics, "V")
    assert result.ac_consumed_kwh == 0
    assert not result.HasField("efficiency_ratio")
    assert result.dc_delivered_kwh == 5.0


async def test_more_dc_than_ac_gives_a_ratio_above_one(ingest: Ingest, analytics: Analytics) -> None:
    now = datetime.now(UTC)
    await link(analytics, "V", "M")
    await send(
        ingest, "unary", [meter("M", now - HOUR, 50.0), vehicle("V", now - HOUR, kwh_delivered_dc=60.0)]
    )
    assert (await performance(analytics, "V")).efficiency_ratio == pytest.approx(1.2)


async def test_totals_beyond_the_largest_double_are_infinite_not_an_error(
    ingest: Ingest, analytics: Analytics
) -> None:
    # DESIGN.md bounds energies below by 0 only: two valid readings can overflow a double.
    huge = 1.7e308
    first = BASE_TIME + timedelta(seconds=10)
    minute = timedelta(minutes=1)
    readings = [meter("M-1", first + i * minute, kwh_consumed_ac=huge) for i in range(2)]
    readings += [meter("M-2", first, kwh_consumed_ac=huge)]
    readings += [vehicle("V-1", first + i * minute, kwh_delivered_dc=huge) for i in range(2)]
    outcomes = await send(ingest, "unary", readings)  # one transaction: every rollup row overflows
    assert outcomes.accepted == len(readings)
    await link(analytics, "V-1", "M-1")
    # Whole hours and minutes (rollups), then a start cutting into them (raw history at the edge).
    for start in (BASE_TIME, BASE_TIME + timedelta(seconds=5)):
        span = window(start, start + HOUR)
        result = await performance(analytics, "V-1", span)
        assert (result.ac_consumed_kwh, result.dc_delivered_kwh) == (math.inf, math.inf)
        assert not result.HasField("efficiency_ratio")  # inf / inf: undefined
        anomalies = await analytics.ListEfficiencyAnomalies(
            analytics_pb2.ListEfficiencyAnomaliesRequest(window=span)
        )
        assert [a.vehicle_id for a in anomalies.anomalies] == []
        stats = await analytics.GetMeterStats(analytics_pb2.GetMeterStatsRequest(meter_id="M-2", window=span))
        assert stats.aggregate.kwh_consumed_ac.sum == huge
        summary = await analytics.GetMeterFleetSummary(analytics_pb2.GetMeterFleetSummaryRequest(window=span))
        assert summary.aggregate.kwh_consumed_ac.sum == math.inf
        assert summary.aggregate.kwh_consumed_ac.max == huge
        assert summary.aggregate.voltage.sum == pytest.approx(3 * 230.4)


async def test_readings_outside_the_default_window_are_excluded(ingest: Ingest, analytics: Analytics) -> None:
    now = datetime.now(UTC)
    await link(analytics, "V", "M")
    await send(
        ingest,
        "unary",
        [
            meter("M", now - timedelta(hours=25), 1000.0),
            meter("M", now - HOUR, 10.0),
            meter("M", now + timedelta(minutes=2), 500.0),  # future-dated, within the skew allowance
            vehicle("V", now - timedelta(hours=30), kwh_delivered_dc=700.0, battery_temp=90.0),
            vehicle("V", now - HOUR, kwh_delivered_dc=8.0, battery_temp=20.0),
        ],
    )
    result = await performance(analytics, "V")
    assert (result.ac_consumed_kwh, result.dc_delivered_kwh) == (10.0, 8.0)
    assert (result.meter_reading_count, result.vehicle_reading_count) == (1, 1)
    assert result.avg_battery_temp_celsius == 20.0


async def test_linked_vehicle_without_readings_has_zero_totals(analytics: Analytics) -> None:
    await link(analytics, "V", "M")
    result = await performance(analytics, "V")
    assert (result.ac_consumed_kwh, result.dc_delivered_kwh) == (0.0, 0.0)
    assert not result.HasField("efficiency_ratio")
    assert not result.HasField("avg_battery_temp_celsius")
    assert (result.meter_reading_count, result.vehicle_reading_count) == (0, 0)


async def test_unlinked_vehicle_is_not_found(analytics: Analytics) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await performance(analytics, "VEH-404")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "not linked" in (raised.value.details() or "")


async def test_ac_comes_from_the_meter_and_dc_from_the_vehicle(ingest: Ingest, analytics: Analytics) -> None:
    now = datetime.now(UTC)
    await link(analytics, "V1", "M1")
    await send(
        ingest,
        "unary",
        [
            meter("M1", now - HOUR, 30.0),
            meter("M2", now - HOUR, 999.0),  # another meter: not V1's AC
            vehicle("V1", now - 2 * HOUR, kwh_delivered_dc=12.0, battery_temp=25.0),
            vehicle("V2", now - HOUR, kwh_delivered_dc=777.0, battery_temp=80.0),  # another vehicle
        ],
    )
    result = await performance(analytics, "V1")
    assert (result.ac_consumed_kwh, result.dc_delivered_kwh, result.avg_battery_temp_celsius) == (
        30.0,
        12.0,
        25.0,
    )
    assert (result.meter_reading_count, result.vehicle_reading_count) == (1, 1)


async def test_window_edges_are_half_open(ingest: Ingest, analytics: Analytics) -> None:
    start, end = BASE_TIME, BASE_TIME + timedelta(hours=5, minutes=30)
    await link(analytics, "V", "M")
    await send(
        ingest,
        "unary",
        [meter("M", start, 1.0), meter("M", end - timedelta(microseconds=1), 2.0), meter("M", end, 4.0)],
    )
    result = await performance(analytics, "V", window(start, end))
    assert (result.ac_consumed_kwh, result.meter_reading_count) == (3.0, 2)


async def test_relinking_replaces_the_meter(analytics: Analytics) -> None:
    await link(analytics, "V", "M1")
    await link(analytics, "V", "M2")
    found = await analytics.GetVehicleLink(analytics_pb2.GetVehicleLinkRequest(vehicle_id="V"))
    assert found.link.meter_id == "M2"


# ---- Per-device stats, current state -----------------------------------------


async def test_device_stats_of_a_device_that_never_reported_are_not_found(analytics: Analytics) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics.GetMeterStats(analytics_pb2.GetMeterStatsRequest(meter_id="M-404"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics.GetCurrentReading(
            analytics_pb2.GetCurrentReadingRequest(kind=analytics_pb2.DEVICE_KIND_VEHICLE, device_id="V-404")
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_current_reading_is_the_newest_whatever_the_arrival_order(
    ingest: Ingest, analytics: Analytics
) -> None:
    await send(ingest, "unary", [vehicle("V", BASE_TIME + HOUR, soc=70.0)])
    await send(ingest, "unary", [vehicle("V", BASE_TIME, soc=60.0)])
    found = await analytics.GetCurrentReading(
        analytics_pb2.GetCurrentReadingRequest(kind=analytics_pb2.DEVICE_KIND_VEHICLE, device_id="V")
    )
    assert found.reading.vehicle.soc == 70.0
    assert as_datetime(found.reading.vehicle.timestamp) == BASE_TIME + HOUR


# ---- Pagination -----------------------------------------------------------------


async def test_listing_links_page_by_page_returns_each_exactly_once(analytics: Analytics) -> None:
    expected = {f"V-{i:02d}": f"M-{i % 3}" for i in range(11)}
    for vehicle_id, meter_id in expected.items():
        await link(analytics, vehicle_id, meter_id)
    seen: list[tuple[str, str]] = []
    token = ""
    while True:
        page = await analytics.ListVehicleLinks(
            analytics_pb2.ListVehicleLinksRequest(page_size=3, page_token=token)
        )
        assert len(page.links) <= 3
        seen += [(link.vehicle_id, link.meter_id) for link in page.links]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(expected.items())


async def test_listing_current_readings_filters_by_last_seen_and_pages(
    ingest: Ingest, analytics: Analytics
) -> None:
    await send(ingest, "unary", [meter(f"M-{i:02d}", BASE_TIME + timedelta(minutes=i)) for i in range(10)])
    since = BASE_TIME + timedelta(minutes=3)
    seen: list[str] = []
    token = ""
    while True:
        request = analytics_pb2.ListCurrentReadingsRequest(
            kind=analytics_pb2.DEVICE_KIND_METER, page_size=2, page_token=token
        )
        request.seen_since.CopyFrom(timestamp(since))
        page = await analytics.ListCurrentReadings(request)
        seen += [r.meter.meter_id for r in page.readings]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"M-{i:02d}" for i in range(3, 10)]


async def test_a_page_token_only_continues_its_own_query(ingest: Ingest, analytics: Analytics) -> None:
    await send(ingest, "unary", [meter(f"M-{i}", BASE_TIME) for i in range(3)])
    first = await analytics.ListCurrentReadings(
        analytics_pb2.ListCurrentReadingsRequest(kind=analytics_pb2.DEVICE_KIND_METER, page_size=1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics.ListCurrentReadings(
            analytics_pb2.ListCurrentReadingsRequest(
                kind=analytics_pb2.DEVICE_KIND_VEHICLE, page_size=1, page_token=first.next_page_token
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(raised.value).field_violations] == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics.ListVehicleLinks(analytics_pb2.ListVehicleLinksRequest(page_token="not-a-token"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_anomalies_are_listed_worst_first_across_pages(ingest: Ingest, analytics: Analytics) -> None:
    start, end = BASE_TIME, BASE_TIME + timedelta(hours=6)
    # DC/AC per vehicle: 0.5 and 0.8 (below 0.85), 0.9 (fine), 1.3 (above 1), 0 (no DC), no AC (skipped).
    ratios = {"V-a": 0.5, "V-b": 0.8, "V-c": 0.9, "V-d": 1.3, "V-e": 0.0}
    readings: list[reading_pb2.Reading] = []
    for vehicle_id, ratio in ratios.items():
        meter_id = vehicle_id.replace("V", "M")
        await link(analytics, vehicle_id, meter_id)
        readings.append(meter(meter_id, start + HOUR, 100.0))
        if ratio:
            readings.append(vehicle(vehicle_id, start + HOUR, kwh_delivered_dc=100.0 * ratio))
    await link(analytics, "V-f", "M-f")
    readings.append(vehicle("V-f", start + HOUR, kwh_delivered_dc=5.0))
    await send(ingest, "unary", readings)

    found: list[tuple[str, int]] = []
    token = ""
    while True:
        request = analytics_pb2.ListEfficiencyAnomaliesRequest(
            window=window(start, end), page_size=2, page_token=token
        )
        page = await analytics.ListEfficiencyAnomalies(request)
        found += [(a.vehicle_id, a.kind) for a in page.anomalies]
        token = page.next_page_token
        if not token:
            break
    below, above = analytics_pb2.ANOMALY_KIND_BELOW_THRESHOLD, analytics_pb2.ANOMALY_KIND_ABOVE_ONE
    # Deviations: V-e 0.85, V-a 0.35, V-d 0.3, V-b 0.05.
    assert found == [("V-e", below), ("V-a", below), ("V-d", above), ("V-b", below)]


async def test_the_ranking_is_the_same_whether_its_halves_run_side_by_side_or_in_turn(
    ingest: Ingest, analytics: Analytics, database_url: str, on_citus: bool
) -> None:
    """Its AC and DC halves run on two connections sharing a snapshot when a
    second connection is idle in the pool, and one after the other on one
    connection otherwise (or where snapshots cannot be shared): one answer."""
    readings: list[reading_pb2.Reading] = []
    for n, ratio in enumerate((0.5, 0.8, 0.9, 1.3, 0.0)):
        await link(analytics, f"V-{n}", f"M-{n}")
        for minutes in (3, 8, 20, 65, 170, 178):
            at, kwh = BASE_TIME + timedelta(minutes=minutes), 10.0 + n
            readings += [meter(f"M-{n}", at, kwh), vehicle(f"V-{n}", at, kwh_delivered_dc=kwh * ratio)]
    await send(ingest, "unary", readings)
    # Edges inside quarters, so that every kind of part is read.
    span = Window(BASE_TIME + timedelta(minutes=7), BASE_TIME + timedelta(minutes=175))
    ways = [(1, True), (2, False)] + ([] if on_citus else [(2, True)])
    answers, lent = [], []
    for connections, share_snapshots in ways:
        async with psycopg_pool.AsyncConnectionPool(
            database_url, min_size=connections, max_size=connections, open=False
        ) as pool:
            await pool.wait()
            repository = AnalyticsRepository(pool, share_snapshots=share_snapshots)
            answers.append(await repository.efficiency_anomalies(span, 0.85, offset=0, limit=10))
            stats = pool.get_stats()
            lent.append(stats.get("requests_num", 0) - stats.get("requests_errors", 0))
    # A second connection was lent only where there was one and it could share the snapshot.
    assert lent == [1, 1] + ([] if on_citus else [2])
    assert [a.vehicle_id for a in answers[0]] == ["V-4", "V-0", "V-3", "V-1"]
    assert all(answer == answers[0] for answer in answers)


async def _send_energies(
    ingest: Ingest, meters: dict[datetime, float], vehicles: dict[datetime, float]
) -> None:
    """Readings of meter M-x and vehicle V-x with these energies at these instants."""
    await send(
        ingest,
        "unary",
        [meter("M-x", at, kwh) for at, kwh in meters.items()]
        + [vehicle("V-x", at, kwh_delivered_dc=kwh) for at, kwh in vehicles.items()],
    )


async def _assert_the_anomaly_has_the_window_s_energies(
    analytics: Analytics,
    first: datetime,
    last: datetime,
    meters: dict[datetime, float],
    vehicles: dict[datetime, float],
) -> None:
    listed = await analytics.ListEfficiencyAnomalies(
        analytics_pb2.ListEfficiencyAnomaliesRequest(window=window(first, last))
    )
    [anomaly] = listed.anomalies
    assert anomaly.ac_consumed_kwh == pytest.approx(sum(v for at, v in meters.items() if first <= at < last))
    assert anomaly.dc_delivered_kwh == pytest.approx(
        sum(v for at, v in vehicles.items() if first <= at < last)
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (timedelta(hours=1, minutes=30), timedelta(hours=4, minutes=30)),  # readings beyond both edges
        (timedelta(hours=1, minutes=30), timedelta(hours=5, minutes=55)),  # none after the end
        (timedelta(minutes=5), timedelta(hours=4, minutes=30)),  # none before the start
        (timedelta(minutes=5), timedelta(hours=5, minutes=55)),  # none outside at all
        (timedelta(minutes=15), timedelta(hours=5, minutes=45)),  # the vehicle's edges in, the meter's not
        # Readings outside both edges, the edges split at quarters: whole quarters from the
        # rollup rows, the rest of each edge raw (a vehicle reading at the start, 1:20).
        (timedelta(hours=1, minutes=20), timedelta(hours=4, minutes=40)),
        (timedelta(hours=1, minutes=45), timedelta(hours=4, minutes=25)),  # one quarter at each edge
        (timedelta(hours=1, minutes=50), timedelta(hours=4, minutes=5)),  # no whole quarter: raw only
    ],
)
async def test_anomaly_energies_are_exact_whichever_way_the_edge_hours_are_read(
    ingest: Ingest, analytics: Analytics, start: timedelta, end: timedelta
) -> None:
    """An edge hour is read whole from its rollup rows, by its quarters plus raw, or raw: all exact."""
    await link(analytics, "V-x", "M-x")
    meters = {BASE_TIME + timedelta(hours=h, minutes=m): 1.0 + m for h in range(6) for m in (10, 50)}
    vehicles = {BASE_TIME + timedelta(hours=h, minutes=m): 0.1 + m / 100 for h in range(6) for m in (20, 40)}
    await _send_energies(ingest, meters, vehicles)
    await _assert_the_anomaly_has_the_window_s_energies(
        analytics, BASE_TIME + start, BASE_TIME + end, meters, vehicles
    )


async def test_an_efficiency_beyond_the_largest_double_is_listed_as_infinite(
    ingest: Ingest, analytics: Analytics
) -> None:
    """DC 1e308 over AC 0.5 overflows a float8 division; found by the property test on Citus."""
    await link(analytics, "V-x", "M-x")
    await _send_energies(ingest, {BASE_TIME: 0.5}, {BASE_TIME + timedelta(minutes=1): 1e308})
    [anomaly] = (
        await analytics.ListEfficiencyAnomalies(
            analytics_pb2.ListEfficiencyAnomaliesRequest(window=window(BASE_TIME, BASE_TIME + HOUR))
        )
    ).anomalies
    assert (anomaly.ac_consumed_kwh, anomaly.dc_delivered_kwh) == (0.5, 1e308)
    assert math.isinf(anomaly.efficiency_ratio)
    assert anomaly.kind == analytics_pb2.ANOMALY_KIND_ABOVE_ONE


async def test_edge_hours_with_unknown_quarters_are_read_raw_and_stay_unknown(
    ingest: Ingest, analytics: Analytics, database_url: str
) -> None:
    """Rollup rows written before migration 0007 have no quarter-hour energies (NULL)."""
    await link(analytics, "V-x", "M-x")
    first = {BASE_TIME + timedelta(hours=h, minutes=m): 1.0 + m for h in range(3) for m in (5, 35)}
    later = {BASE_TIME + timedelta(hours=h, minutes=m): 2.0 + m for h in range(3) for m in (20, 50)}
    dc = {BASE_TIME + timedelta(hours=h, minutes=m): 0.5 + m / 100 for h in range(3) for m in (10, 40)}
    await _send_energies(ingest, first, dc)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute(
            "UPDATE meter_hourly SET kwh_consumed_ac_sum_00 = NULL, kwh_consumed_ac_sum_15 = NULL,"
            " kwh_consumed_ac_sum_30 = NULL, kwh_consumed_ac_sum_45 = NULL"
        )
    await _send_energies(ingest, later, {})
    quarters = await fetch(
        database_url,
        "SELECT kwh_consumed_ac_sum_00, kwh_consumed_ac_sum_15, kwh_consumed_ac_sum_30,"
        " kwh_consumed_ac_sum_45 FROM meter_hourly",
    )
    assert quarters == [(None,) * 4] * 3  # ingest never adds to an unknown quarter
    unknown = "SELECT count(*) FROM vehicle_hourly WHERE kwh_delivered_dc_sum_00 IS NULL"
    assert await fetch(database_url, unknown) == [(0,)]
    await _assert_the_anomaly_has_the_window_s_energies(
        analytics,
        BASE_TIME + timedelta(minutes=25),
        BASE_TIME + timedelta(hours=2, minutes=40),
        first | later,
        dc,
    )


# ---- Validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (BASE_TIME, BASE_TIME, "window"),
        (BASE_TIME + HOUR, BASE_TIME, "window"),
        (BASE_TIME, BASE_TIME + timedelta(days=31, seconds=1), "window"),
    ],
)
async def test_bad_windows_are_invalid_arguments(
    analytics: Analytics, start: datetime, end: datetime, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics.GetMeterFleetSummary(
            analytics_pb2.GetMeterFleetSummaryRequest(window=window(start, end))
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(raised.value).field_violations] == [field]


async def test_bad_kind_bucket_and_id_name_their_field(analytics: Analytics) -> None:
    cases = [
        (
            analytics_pb2.GetTimeSeriesRequest(device_id="M", bucket=analytics_pb2.TIME_BUCKET_ONE_HOUR),
            "kind",
        ),
        (analytics_pb2.GetTimeSeriesRequest(kind=analytics_pb2.DEVICE_KIND_METER, device_id="M"), "bucket"),
        (
            analytics_pb2.GetTimeSeriesRequest(
                kind=analytics_pb2.DEVICE_KIND_METER,
                device_id=" M",
                bucket=analytics_pb2.TIME_BUCKET_ONE_HOUR,
            ),
            "device_id",
        ),
        (
            analytics_pb2.GetTimeSeriesRequest(
                kind=analytics_pb2.DEVICE_KIND_METER,
                device_id="M",
                bucket=analytics_pb2.TIME_BUCKET_ONE_MINUTE,
                window=window(BASE_TIME, BASE_TIME + timedelta(days=8)),
            ),
            "bucket",
        ),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await analytics.GetTimeSeries(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad_request(raised.value).field_violations] == [field]


# ---- Rollups == raw == reference, over random readings and windows -------------


@pytest.fixture
async def raw_analytics(database_url: str) -> AsyncIterator[AnalyticsRepository]:
    async with psycopg_pool.AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
        yield AnalyticsRepository(pool, use_rollups=False)


_devices = st.sampled_from(["A", "B", "C"])
_moments = st.builds(
    lambda minutes, seconds: BASE_TIME + timedelta(minutes=minutes, seconds=seconds),
    st.integers(0, 3 * 24 * 60),
    st.integers(0, 59),
)
_value = st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda v: round(v, 3))
# Valid energies have no upper bound: two of these overflow a double, one plus small values does not.
_energy = st.one_of(_value, _value, _value, st.sampled_from([1e308, 1.7e308]))
_rows = st.one_of(
    st.builds(
        lambda d, at, kwh, volts: Row("meter", f"M-{d}", at, {"kwh_consumed_ac": kwh, "voltage": volts}),
        _devices,
        _moments,
        _energy,
        _value,
    ),
    st.builds(
        lambda d, at, soc, kwh, temp: Row(
            "vehicle", f"V-{d}", at, {"soc": soc, "kwh_delivered_dc": kwh, "battery_temp": temp}
        ),
        _devices,
        _moments,
        _value,
        _energy,
        _value,
    ),
)
_windows = st.builds(
    lambda start, length: (start, start + length),
    _moments,
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=2)),
)


def _proto(row: Row) -> reading_pb2.Reading:
    if row.kind == "meter":
        return meter(row.device, row.ts, **row.values)
    return vehicle(row.device, row.ts, **row.values)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(_rows, min_size=1, max_size=60), windows=st.lists(_windows, min_size=1, max_size=3))
async def test_rollup_answers_equal_raw_answers_equal_the_reference(
    ingest: Ingest,
    analytics: Analytics,
    raw_analytics: AnalyticsRepository,
    database_url: str,
    sent: list[Row],
    windows: list[tuple[datetime, datetime]],
) -> None:
    await empty_tables(database_url)
    # Repeats and late arrivals: everything twice, the second time reversed, in small messages.
    await send(ingest, "stream", [_proto(r) for r in sent + sent[::-1]], per_message=7)
    rows = stored(sent)
    for vehicle_id in ("V-A", "V-B", "V-C"):
        await link(analytics, vehicle_id, vehicle_id.replace("V", "M"))

    for start, end in windows:
        span, domain_window = window(start, end), Window(start, end)
        for kind, fields, summary_rpc, request_type in (
            (
                "meter",
                METER_FIELDS,
                analytics.GetMeterFleetSummary,
                analytics_pb2.GetMeterFleetSummaryRequest,
            ),
            (
                "vehicle",
                VEHICLE_FIELDS,
                analytics.GetVehicleFleetSummary,
                analytics_pb2.GetVehicleFleetSummaryRequest,
            ),
        ):
            selected = in_window(rows, start, end, kind)
            expected = aggregate(selected, fields)
            summary_call: Any = summary_rpc  # the two RPCs differ only in message types
            summary = await summary_call(request_type(window=span))
            assert summary.device_count == len({r.device for r in selected})
            assert_aggregate(summary.aggregate, expected, fields)
            devices, raw = await raw_analytics.fleet_aggregate(DeviceKind(kind), domain_window)
            assert devices == summary.device_count
            assert_domain_aggregate(raw, expected, fields)

            for device in {r.device for r in rows if r.kind == kind}:
                expected_device = aggregate(in_window(rows, start, end, kind, device), fields)
                raw_device = await raw_analytics.device_aggregate(DeviceKind(kind), device, domain_window)
                assert_domain_aggregate(raw_device, expected_device, fields)
                if kind == "meter":
                    stats: Any = await analytics.GetMeterStats(
                        analytics_pb2.GetMeterStatsRequest(meter_id=device, window=span)
                    )
                else:
                    stats = await analytics.GetVehicleStats(
                        analytics_pb2.GetVehicleStatsRequest(vehicle_id=device, window=span)
                    )
                assert_aggregate(stats.aggregate, expected_device, fields)

                for width, bucket in (
                    (HOUR, analytics_pb2.TIME_BUCKET_ONE_HOUR),
                    (timedelta(days=1), analytics_pb2.TIME_BUCKET_ONE_DAY),
                    (timedelta(minutes=15), analytics_pb2.TIME_BUCKET_FIFTEEN_MINUTES),
                ):
                    series = await analytics.GetTimeSeries(
                        analytics_pb2.GetTimeSeriesRequest(
                            kind=analytics_pb2.DEVICE_KIND_METER
                            if kind == "meter"
                            else analytics_pb2.DEVICE_KIND_VEHICLE,
                            device_id=device,
                            window=span,
                            bucket=bucket,
                        )
                    )
                    expected_buckets = buckets(in_window(rows, start, end, kind, device), width, EPOCH)
                    assert [as_datetime(p.start_time) for p in series.points] == sorted(expected_buckets)
                    for point in series.points:
                        assert_aggregate(
                            getattr(point, kind),
                            aggregate(expected_buckets[as_datetime(point.start_time)], fields),
                            fields,
                        )

        expected_anomalies = {}
        for vehicle_id in ("V-A", "V-B", "V-C"):
            result = await performance(analytics, vehicle_id, span)
            ac = aggregate(in_window(rows, start, end, "meter", vehicle_id.replace("V", "M")), METER_FIELDS)
            dc = aggregate(in_window(rows, start, end, "vehicle", vehicle_id), VEHICLE_FIELDS)
            assert close(result.ac_consumed_kwh, ac.sums["kwh_consumed_ac"])
            assert close(result.dc_delivered_kwh, dc.sums["kwh_delivered_dc"])
            assert (result.meter_reading_count, result.vehicle_reading_count) == (
                ac.reading_count,
                dc.reading_count,
            )
            ac_kwh, dc_kwh = ac.sums["kwh_consumed_ac"], dc.sums["kwh_delivered_dc"]
            defined = ac_kwh != 0 and not (math.isinf(ac_kwh) and math.isinf(dc_kwh))
            assert result.HasField("efficiency_ratio") == defined
            if defined and not 0.85 <= dc_kwh / ac_kwh <= 1:
                expected_anomalies[vehicle_id] = (ac_kwh, dc_kwh)
            assert result.HasField("avg_battery_temp_celsius") == (dc.reading_count > 0)

        # Random windows and readings; the test above pins each way of reading the edge hours.
        listed = await analytics.ListEfficiencyAnomalies(
            analytics_pb2.ListEfficiencyAnomaliesRequest(window=span, threshold=0.85)
        )
        assert {a.vehicle_id for a in listed.anomalies} == set(expected_anomalies)
        for anomaly in listed.anomalies:
            ac_sum, dc_sum = expected_anomalies[anomaly.vehicle_id]
            assert close(anomaly.ac_consumed_kwh, ac_sum)
            assert close(anomaly.dc_delivered_kwh, dc_sum)


async def test_backfill_rebuilds_the_rollups_ingest_maintains(ingest: Ingest, database_url: str) -> None:
    readings = [
        meter(f"M-{i % 4}", BASE_TIME + timedelta(minutes=7 * i), kwh_consumed_ac=i / 10) for i in range(300)
    ] + [vehicle(f"V-{i % 3}", BASE_TIME + timedelta(minutes=11 * i), soc=i % 100) for i in range(200)]
    await send(ingest, "stream", readings[::-1], per_message=50)  # late arrivals everywhere

    async def rollups() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(database_url) as connection:
            found = []
            for table in ("meter_hourly", "vehicle_hourly"):
                cursor = await connection.execute(
                    sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table))
                )
                found += await cursor.fetchall()
            # Fleet rows come from several shards while ingesting, one after a rebuild: compare per minute.
            for table in ("meter_fleet_minutely", "vehicle_fleet_minutely"):
                cursor = await connection.execute(
                    sql.SQL(
                        "SELECT minute, sum(reading_count), {} FROM {} GROUP BY minute ORDER BY minute"
                    ).format(_fleet_sums(table), sql.Identifier(table))
                )
                found += await cursor.fetchall()
            return found

    maintained = await rollups()
    async with psycopg_pool.AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
        repository = ReadingRepository(pool)
        assert min(await repository.rebuild_rollups(DeviceKind.METER)) > 0
        assert min(await repository.rebuild_rollups(DeviceKind.VEHICLE)) > 0
    rebuilt = await rollups()
    assert len(rebuilt) == len(maintained)
    for kept, fresh in zip(maintained, rebuilt, strict=True):
        assert kept[:3] == fresh[:3]
        assert all(close(a, b) if isinstance(a, float) else a == b for a, b in zip(kept, fresh, strict=True))


def _fleet_sums(table: str) -> sql.Composable:
    """A fleet rollup's statistics folded over its shards (sum of sums, min of mins, ...)."""
    fields = METER_FIELDS if table.startswith("meter") else VEHICLE_FIELDS
    return sql.SQL(", ").join(
        [
            *(
                sql.SQL("sum({}), min({}), max({})").format(
                    sql.Identifier(f"{f}_sum"), sql.Identifier(f"{f}_min"), sql.Identifier(f"{f}_max")
                )
                for f in fields
            ),
            sql.SQL("min(first_ts), max(last_ts)"),
        ]
    )


async def test_no_query_sequentially_scans_a_history_table(database_url: str, on_citus: bool) -> None:
    """With sequential scans priced out, each query must still have an index path."""
    whole = _window_params(
        Window(BASE_TIME + timedelta(minutes=30), BASE_TIME + timedelta(days=2, minutes=5))
    )
    parameters: dict[str, Any] = {
        **whole,
        "device_id": "M",
        "after": "",
        "seen_since": BASE_TIME,
        "limit": 10,
        "offset": 0,
        "threshold": 0.85,
        "bucket": HOUR,
        "vehicle_id": "V",
        "meter_id": "M",
        "meter_ids": "{M}",
        "meter_energies": "{1}",
        "vehicle_ids": "{V}",
        "vehicle_energies": "{0.5}",
    }
    statements: list[Any] = [
        analytics_sql.SELECT_METER_ENERGIES,
        analytics_sql.SELECT_VEHICLE_ENERGIES,
        analytics_sql.SELECT_ANOMALIES,
        analytics_sql.SELECT_VEHICLE_LINK,
    ]
    for group in (analytics_sql.METER, analytics_sql.VEHICLE):
        statements += [
            group.select_current,
            group.select_current_after,
            group.select_device_aggregate,
            group.select_linked_meter_aggregate,
            group.select_fleet_aggregate,
            group.select_fleet_aggregate_by_device,
            group.select_time_series,
        ]
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        if on_citus:
            # The workers plan the tasks: the setting goes to them, and their plans show.
            await connection.execute("SET LOCAL citus.propagate_set_commands = 'local'")
            await connection.execute("SET LOCAL citus.explain_all_tasks = on")
        await connection.execute("SET LOCAL enable_seqscan = off")
        for statement in statements:
            query = statement if isinstance(statement, bytes) else statement.encode()
            cursor = await connection.execute(b"EXPLAIN " + query, parameters)
            plan = "\n".join(row[0] for row in await cursor.fetchall())
            assert "Seq Scan on meter_readings" not in plan, plan
            assert "Seq Scan on vehicle_readings" not in plan, plan


def _window_params(span: Window) -> dict[str, datetime | int | None]:
    return _with_edge_hours(span, timedelta(hours=1))


async def test_every_analytics_connection_is_warmed_up_before_it_is_lent(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as observer:
        before = await (await observer.execute("SELECT clock_timestamp()")).fetchone()
        running = await create_server(settings_for_tests(pool_min_size=3), database_url)
        try:
            # An idle backend shows the last statement it ran: the warm-up's last, for
            # each connection the read pool opened, before any call borrowed one.
            cursor = await observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_start >= %s AND state = 'idle' AND query LIKE '%%vehicle_fleet_minutely%%'",
                before,
            )
            warmed = await cursor.fetchone()
        finally:
            await running.stop(0)
    assert warmed == (3,)
    assert not [r for r in caplog.records if "warm up" in r.getMessage()]  # every statement ran
