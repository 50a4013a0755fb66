"""Property: however readings are ordered, repeated, split and sent, history
holds each distinct (device, timestamp) once and current holds each device's
newest reading."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energy.v1 import reading_pb2
from tests.support import (
    BASE_TIME,
    SHAPES,
    Outcomes,
    empty_tables,
    meter,
    meter_current,
    meter_history,
    send_messages,
    send_whole_and_one_at_a_time,
    vehicle,
    vehicle_current,
    vehicle_history,
)

if TYPE_CHECKING:
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Stub

# Few devices and few distinct instants, so collisions (duplicates, late
# arrivals, same device in one batch) are the rule, not the exception.
_devices = st.sampled_from(["A", "B", "C"])
_instants = st.integers(min_value=0, max_value=30).map(lambda m: BASE_TIME + timedelta(minutes=m))
_energy = st.floats(min_value=0, max_value=100, allow_nan=False)

_meters = st.builds(
    lambda d, at, kwh, volts: ("meter", d, at, (kwh, volts)),
    _devices,
    _instants,
    _energy,
    st.floats(min_value=0, max_value=2000),
)
_vehicles = st.builds(
    lambda d, at, soc, kwh, temp: ("vehicle", d, at, (soc, kwh, temp)),
    _devices,
    _instants,
    st.floats(min_value=0, max_value=100),
    _energy,
    st.floats(min_value=-50, max_value=200),
)


def _distinct(readings: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One reading per (kind, device, instant): the values of the first drawn."""
    seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for reading in readings:
        seen.setdefault(reading[:3], reading)
    return list(seen.values())


@st.composite
def _plans(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]], str]:
    """Distinct readings, and the messages that send them (shuffled, repeated, split)."""
    distinct = _distinct(draw(st.lists(st.one_of(_meters, _vehicles), min_size=1, max_size=40)))
    repeats = draw(st.lists(st.sampled_from(distinct), max_size=15))
    order = draw(st.permutations(distinct + repeats))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=6)))
    bounds = [0, *cuts, len(order)]
    messages = [order[a:b] for a, b in itertools.pairwise(bounds) if a < b]
    return distinct, messages, draw(st.sampled_from(SHAPES))


def _proto(reading: tuple[Any, ...]) -> reading_pb2.Reading:
    kind, device, at, values = reading
    if kind == "meter":
        return meter(f"M-{device}", at, *values)
    return vehicle(f"V-{device}", at, *values)


async def _send_concurrently(stub: Stub, shape: str, messages: list[list[reading_pb2.Reading]]) -> None:
    if shape == "unary":
        # Unary calls race each other through group commit.
        await asyncio.gather(*(send_messages(stub, shape, [m]) for m in messages))
    else:
        await send_messages(stub, shape, messages)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=_plans())
async def test_any_order_repetition_and_split_stores_each_reading_once_and_newest_as_current(
    ingest: Stub, database_url: str, plan: tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]], str]
) -> None:
    distinct, messages, shape = plan
    await empty_tables(database_url)

    await _send_concurrently(ingest, shape, [[_proto(r) for r in m] for m in messages])

    def rows(kind: str) -> list[tuple[Any, ...]]:
        prefix = "M-" if kind == "meter" else "V-"
        return sorted((f"{prefix}{d}", at, *values) for k, d, at, values in distinct if k == kind)

    def newest(history: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        latest: dict[str, tuple[Any, ...]] = {}
        for row in history:
            if row[0] not in latest or row[1] > latest[row[0]][1]:
                latest[row[0]] = row
        return sorted(latest.values())

    assert await meter_history(database_url) == rows("meter")
    assert await vehicle_history(database_url) == rows("vehicle")
    assert await meter_current(database_url) == newest(rows("meter"))
    assert await vehicle_current(database_url) == newest(rows("vehicle"))


async def test_a_batch_too_large_for_the_generic_plan_is_judged_as_readings_one_at_a_time(
    ingest: Stub, database_url: str
) -> None:
    # Statements of more than 128 readings per kind are planned for their
    # batch, smaller ones run the prepared generic plan (repository.py): the
    # two plans must store and judge the same readings alike.
    chooser = random.Random(16)
    # Drawn at random, so some repeat a (device, minute): duplicates within the batch.
    drawn = [
        (kind, f"{chooser.randrange(20)}", BASE_TIME + timedelta(minutes=chooser.randrange(40)), values)
        for kind, values in [("meter", (1.5, 230.0)), ("vehicle", (50.0, 2.5, 30.0))] * 300
    ]
    readings = [_proto(r) for r in drawn + chooser.choices(drawn, k=60)]
    chooser.shuffle(readings)

    def stored(outcomes: Outcomes) -> list[Any]:
        return [outcomes.accepted, outcomes.duplicates, outcomes.stale]

    # Also asserts that both sends left the same history and current rows.
    in_one_batch, one_at_a_time = await send_whole_and_one_at_a_time(
        ingest, "stream", database_url, [readings]
    )

    assert stored(in_one_batch) == stored(one_at_a_time)
    assert len(in_one_batch.duplicates) >= 60
    assert in_one_batch.stale
