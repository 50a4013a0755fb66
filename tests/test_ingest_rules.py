"""DESIGN.md section 2, rule by rule, over each of the three ingest shapes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from energy.v1 import reading_pb2
from energy_server.servicers.ingest import VALIDATED_OFF_LOOP_FROM
from tests.support import (
    BASE_TIME,
    SHAPES,
    meter,
    meter_current,
    meter_history,
    minutes,
    send,
    send_messages,
    send_whole_and_one_at_a_time,
    timestamp,
    vehicle,
    vehicle_current,
    vehicle_history,
)

if TYPE_CHECKING:
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Stub

pytestmark = pytest.mark.parametrize("shape", SHAPES)


async def test_meter_readings_reach_only_meter_tables(ingest: Stub, database_url: str, shape: str) -> None:
    outcomes = await send(ingest, shape, [meter("M-1", BASE_TIME, 1.5, 231.0)])
    assert outcomes.accepted == 1
    assert await meter_history(database_url) == [("M-1", BASE_TIME, 1.5, 231.0)]
    assert await meter_current(database_url) == [("M-1", BASE_TIME, 1.5, 231.0)]
    assert await vehicle_history(database_url) == []
    assert await vehicle_current(database_url) == []


async def test_vehicle_readings_reach_only_vehicle_tables(
    ingest: Stub, database_url: str, shape: str
) -> None:
    outcomes = await send(ingest, shape, [vehicle("V-1", BASE_TIME, 50.0, 2.5, 30.0)])
    assert outcomes.accepted == 1
    assert await vehicle_history(database_url) == [("V-1", BASE_TIME, 50.0, 2.5, 30.0)]
    assert await vehicle_current(database_url) == [("V-1", BASE_TIME, 50.0, 2.5, 30.0)]
    assert await meter_history(database_url) == []
    assert await meter_current(database_url) == []


async def test_reading_with_no_kind_is_rejected(ingest: Stub, database_url: str, shape: str) -> None:
    outcomes = await send(ingest, shape, [reading_pb2.Reading(), meter()])
    assert outcomes.rejected_fields(0) == ["kind"]
    assert outcomes.accepted == 1
    assert len(await meter_history(database_url)) == 1


# (builder keyword, value, valid?) at and beyond every bound; `None` means "not set".
METER_BOUNDS = [
    ("kwh_consumed_ac", 0.0, True),
    ("kwh_consumed_ac", -0.001, False),
    ("kwh_consumed_ac", 1e9, True),
    ("kwh_consumed_ac", None, False),
    ("voltage", 0.0, True),
    ("voltage", 2000.0, True),
    ("voltage", -0.01, False),
    ("voltage", 2000.01, False),
    ("voltage", None, False),
]
VEHICLE_BOUNDS = [
    ("soc", 0.0, True),
    ("soc", 100.0, True),
    ("soc", -0.01, False),
    ("soc", 100.01, False),
    ("soc", None, False),
    ("kwh_delivered_dc", 0.0, True),
    ("kwh_delivered_dc", -1.0, False),
    ("kwh_delivered_dc", None, False),
    ("battery_temp", -50.0, True),
    ("battery_temp", 200.0, True),
    ("battery_temp", -50.01, False),
    ("battery_temp", 200.01, False),
    ("battery_temp", None, False),
]
NON_FINITE = [math.nan, math.inf, -math.inf]


def _only(name: str, value: float | None) -> dict[str, Any]:
    return {name: value}


async def _check_one(
    ingest: Stub, database_url: str, shape: str, reading: reading_pb2.Reading, field: str, valid: bool
) -> None:
    before = len(await meter_history(database_url)) + len(await vehicle_history(database_url))
    outcomes = await send(ingest, shape, [reading])
    stored = len(await meter_history(database_url)) + len(await vehicle_history(database_url)) - before
    if valid:
        assert outcomes.rejections == {}
        assert (outcomes.accepted, stored) == (1, 1)
    else:
        assert outcomes.rejected_fields(0) == [field]
        assert (outcomes.accepted, stored) == (0, 0)


@pytest.mark.parametrize(("name", "value", "valid"), METER_BOUNDS)
async def test_meter_value_bounds(
    ingest: Stub, database_url: str, shape: str, name: str, value: float | None, valid: bool
) -> None:
    await _check_one(ingest, database_url, shape, meter(**_only(name, value)), f"meter.{name}", valid)


@pytest.mark.parametrize(("name", "value", "valid"), VEHICLE_BOUNDS)
async def test_vehicle_value_bounds(
    ingest: Stub, database_url: str, shape: str, name: str, value: float | None, valid: bool
) -> None:
    await _check_one(ingest, database_url, shape, vehicle(**_only(name, value)), f"vehicle.{name}", valid)


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["kwh_consumed_ac", "voltage"])
async def test_non_finite_meter_values_are_rejected(
    ingest: Stub, database_url: str, shape: str, name: str, value: float
) -> None:
    await _check_one(ingest, database_url, shape, meter(**_only(name, value)), f"meter.{name}", False)


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["soc", "kwh_delivered_dc", "battery_temp"])
async def test_non_finite_vehicle_values_are_rejected(
    ingest: Stub, database_url: str, shape: str, name: str, value: float
) -> None:
    await _check_one(ingest, database_url, shape, vehicle(**_only(name, value)), f"vehicle.{name}", False)


@pytest.mark.parametrize(
    ("device_id", "valid"),
    [
        ("M", True),
        ("M" * 100, True),
        ("é" * 100, True),
        ("'; DROP TABLE meter_readings; --", True),
        ("", False),
        ("M" * 101, False),
        (" M", False),
        ("M ", False),
        ("M\t1", False),
        ("M\x001", False),
        ("M\x851", False),
    ],
)
async def test_device_id_rules(
    ingest: Stub, database_url: str, shape: str, device_id: str, valid: bool
) -> None:
    await _check_one(ingest, database_url, shape, meter(meter_id=device_id), "meter.meter_id", valid)
    await _check_one(ingest, database_url, shape, vehicle(vehicle_id=device_id), "vehicle.vehicle_id", valid)


async def test_valid_device_id_is_stored_verbatim(ingest: Stub, database_url: str, shape: str) -> None:
    device_id = "'; DROP TABLE meter_readings; -- ünïcode"
    await send(ingest, shape, [meter(meter_id=device_id)])
    assert [row[0] for row in await meter_history(database_url)] == [device_id]


async def test_timestamp_bounds(ingest: Stub, database_url: str, shape: str) -> None:
    now = datetime.now(UTC)
    cases = [
        (datetime(2000, 1, 1, tzinfo=UTC), True),
        (datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), False),
        (now + timedelta(minutes=4), True),
        (now + timedelta(minutes=6), False),
    ]
    readings = [meter(meter_id=f"M-{i}", at=at) for i, (at, _) in enumerate(cases)]
    outcomes = await send(ingest, shape, readings, per_message=1)
    rejected = {i for i, (_, valid) in enumerate(cases) if not valid}
    assert set(outcomes.rejections) == rejected
    for index in rejected:
        assert outcomes.rejected_fields(index) == ["meter.timestamp"]
    assert len(await meter_history(database_url)) == len(cases) - len(rejected)


async def test_missing_or_malformed_timestamp_is_rejected(
    ingest: Stub, database_url: str, shape: str
) -> None:
    no_time = reading_pb2.Reading(
        vehicle=reading_pb2.VehicleReading(vehicle_id="V", soc=1, kwh_delivered_dc=1, battery_temp=1)
    )
    bad_nanos = vehicle()
    bad_nanos.vehicle.timestamp.nanos = 1_000_000_000
    outcomes = await send(ingest, shape, [no_time, bad_nanos], per_message=1)
    assert outcomes.rejected_fields(0) == ["vehicle.timestamp"]
    assert outcomes.rejected_fields(1) == ["vehicle.timestamp"]
    assert await vehicle_history(database_url) == []


async def test_duplicate_is_stored_once_and_reported(ingest: Stub, database_url: str, shape: str) -> None:
    first = await send(ingest, shape, [meter(at=BASE_TIME, kwh_consumed_ac=1.0)])
    again = await send(
        ingest,
        shape,
        [meter(at=BASE_TIME, kwh_consumed_ac=9.0), meter(at=BASE_TIME + minutes(1), kwh_consumed_ac=2.0)],
    )
    same_message = await send(ingest, shape, [vehicle(at=BASE_TIME), vehicle(at=BASE_TIME)])
    assert first.accepted == 1
    assert (again.duplicates, again.accepted) == ([0], 1)
    assert (same_message.duplicates, same_message.accepted) == ([1], 1)
    # The first write wins: the duplicate's different energy is not stored.
    assert [row[2] for row in await meter_history(database_url)] == [1.0, 2.0]
    assert len(await vehicle_history(database_url)) == 1


async def test_stale_reading_is_kept_in_history_but_not_current(
    ingest: Stub, database_url: str, shape: str
) -> None:
    await send(ingest, shape, [vehicle(at=BASE_TIME + minutes(10), soc=60.0)])
    late = await send(ingest, shape, [vehicle(at=BASE_TIME, soc=50.0)])
    assert (late.stale, late.accepted) == ([0], 0)
    assert [row[2] for row in await vehicle_history(database_url)] == [50.0, 60.0]
    assert [row[1:3] for row in await vehicle_current(database_url)] == [(BASE_TIME + minutes(10), 60.0)]


async def test_equal_timestamp_leaves_current_unchanged(ingest: Stub, database_url: str, shape: str) -> None:
    await send(ingest, shape, [meter(at=BASE_TIME, voltage=230.0)])
    outcomes = await send(ingest, shape, [meter(at=BASE_TIME, voltage=240.0)])
    assert outcomes.duplicates == [0]
    assert await meter_current(database_url) == [("METER-001", BASE_TIME, 12.5, 230.0)]


async def test_newer_reading_replaces_every_current_field(
    ingest: Stub, database_url: str, shape: str
) -> None:
    later = BASE_TIME + minutes(1)
    await send(ingest, shape, [meter(at=BASE_TIME, kwh_consumed_ac=1.0, voltage=230.0)])
    await send(ingest, shape, [vehicle(at=BASE_TIME, soc=10.0, kwh_delivered_dc=1.0, battery_temp=20.0)])
    await send(ingest, shape, [meter(at=later, kwh_consumed_ac=2.0, voltage=231.0)])
    await send(ingest, shape, [vehicle(at=later, soc=11.0, kwh_delivered_dc=2.0, battery_temp=21.0)])
    assert await meter_current(database_url) == [("METER-001", later, 2.0, 231.0)]
    assert await vehicle_current(database_url) == [("VEH-001", later, 11.0, 2.0, 21.0)]


async def test_out_of_order_batch_reports_the_older_reading_stale(
    ingest: Stub, database_url: str, shape: str
) -> None:
    outcomes = await send(ingest, shape, [meter(at=BASE_TIME + minutes(5)), meter(at=BASE_TIME)])
    assert (outcomes.accepted, outcomes.stale) == (1, [1])
    assert [row[1] for row in await meter_current(database_url)] == [BASE_TIME + minutes(5)]


async def test_mixed_request_stores_valid_and_reports_invalid_by_index(
    ingest: Stub, database_url: str, shape: str
) -> None:
    readings = [
        meter("M-1"),
        meter("M-2", voltage=-5.0),
        vehicle("V-1"),
        vehicle("V-2", soc=101.0, battery_temp=math.nan),
        reading_pb2.Reading(),
    ]
    outcomes = await send(ingest, shape, readings)
    assert outcomes.accepted == 2
    assert outcomes.rejected_fields(1) == ["meter.voltage"]
    assert outcomes.rejected_fields(3) == ["vehicle.soc", "vehicle.battery_temp"]
    assert outcomes.rejected_fields(4) == ["kind"]
    assert [r[0] for r in await meter_history(database_url)] == ["M-1"]
    assert [r[0] for r in await vehicle_history(database_url)] == ["V-1"]


async def test_a_large_message_is_judged_on_its_thread_as_its_readings_one_by_one(
    ingest: Stub, database_url: str, shape: str
) -> None:
    # Messages of VALIDATED_OFF_LOOP_FROM readings or more are validated off the
    # event loop, single readings on it: both must judge every reading alike.
    faults = [
        meter("M-bad", voltage=-5.0),
        vehicle("V-bad", soc=101.0, battery_temp=math.nan),
        meter(""),
        reading_pb2.Reading(),
        meter("M-future", at=datetime.now(UTC) + timedelta(days=1)),
        vehicle("V-none", kwh_delivered_dc=None),
    ]
    # Few devices and instants: duplicates and stale readings among the valid ones.
    valid = [
        meter(f"M-{i % 7}", BASE_TIME + minutes(i % 40))
        if i % 2
        else vehicle(f"V-{i % 5}", BASE_TIME + minutes(i % 30))
        for i in range(3 * VALIDATED_OFF_LOOP_FROM)
    ]
    mixed = [faults[i % len(faults)] if i % 3 == 0 else reading for i, reading in enumerate(valid)]
    all_invalid = [faults[i % len(faults)] for i in range(VALIDATED_OFF_LOOP_FROM)]

    # Also asserts that both sends left the same history and current rows.
    whole, one_by_one = await send_whole_and_one_at_a_time(ingest, shape, database_url, [mixed, all_invalid])

    assert (whole.accepted, whole.duplicates, whole.stale, whole.rejections) == (
        one_by_one.accepted,
        one_by_one.duplicates,
        one_by_one.stale,
        one_by_one.rejections,
    )
    assert len(whole.rejections) == len(mixed) // 3 + len(all_invalid)
    assert whole.rejected_fields(len(mixed)) == ["meter.voltage"]
    assert await meter_history(database_url)
    assert await vehicle_history(database_url)
    assert whole.duplicates


async def test_a_small_message_after_a_large_one_is_stored_after_it(
    ingest: Stub, database_url: str, shape: str
) -> None:
    # The large message is validated on a thread and the small one on the loop;
    # the small one must still reach the database second, and so be the stale one.
    large = [meter(f"M-{i}", BASE_TIME + minutes(10)) for i in range(VALIDATED_OFF_LOOP_FROM)]
    outcomes = await send_messages(ingest, shape, [large, [meter("M-0", BASE_TIME)]])
    assert (outcomes.accepted, outcomes.stale) == (len(large), [len(large)])
    assert ("M-0", BASE_TIME + minutes(10)) in [row[:2] for row in await meter_current(database_url)]


async def test_message_over_the_reading_limit_fails_naming_the_limit(
    ingest: Stub, database_url: str, shape: str
) -> None:
    too_many = [meter(at=BASE_TIME + minutes(i)) for i in range(1001)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send(ingest, shape, too_many, per_message=1001)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000 readings" in (raised.value.details() or "")
    assert await meter_history(database_url) == []


async def test_timestamp_is_stored_to_the_microsecond(ingest: Stub, database_url: str, shape: str) -> None:
    reading = meter()
    reading.meter.timestamp.CopyFrom(timestamp(BASE_TIME))
    reading.meter.timestamp.nanos = 123_456_789
    twin = meter()
    twin.meter.timestamp.CopyFrom(reading.meter.timestamp)
    twin.meter.timestamp.nanos = 123_456_001
    outcomes = await send(ingest, shape, [reading, twin])
    assert outcomes.duplicates == [1]
    assert [row[1] for row in await meter_history(database_url)] == [BASE_TIME.replace(microsecond=123456)]
