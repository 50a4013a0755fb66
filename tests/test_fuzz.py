"""Hostile input: arbitrary field values and raw bytes on the wire.

Every reading gets the answer an independent statement of DESIGN.md's rules
expects (stored, or rejected naming exactly the offending fields); every
undecodable message gets INVALID_ARGUMENT; the server never answers UNKNOWN
or INTERNAL and keeps serving; nothing invalid reaches the database; valid
ids that look like SQL are stored verbatim. Each test prints how many inputs
it tried.
"""

from __future__ import annotations

import math
import random
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energy.v1 import analytics_pb2, ingest_pb2, reading_pb2
from energy_server.app import RunningServer
from tests.support import BASE_TIME, fetch, meter, send, vehicle

if TYPE_CHECKING:
    from energy.v1.ingest_pb2_grpc import IngestServiceAsyncStub as Stub

YEAR_1 = -62_135_596_800
YEAR_9999_END = 253_402_300_799
YEAR_2000 = 946_684_800
READINGS_PER_EXAMPLE = 50
EXAMPLES = 220
SKEW_S = 300

# Numbers from everywhere: NaN, infinities, huge, tiny, negative, and the edges of each rule.
_numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [0.0, -0.0, -1e-300, 100.0, 100.000001, 2000.0, 2000.5, -50.0, -50.01, 200.0, 200.01, 1e308]
    ),
    st.floats(min_value=-100, max_value=2100),
)
_SQL_LIKE = [
    "'; DROP TABLE meter_readings; --",
    "Robert'); DELETE FROM meter_current; --",
    "1 OR 1=1",
    "$$;$$",
]
_device_ids = st.one_of(
    st.text(max_size=120),  # unicode, control characters, white space, empty
    st.sampled_from(["", " M", "M ", "\x00", "M\n1", "x" * 100, "x" * 101, "x" * 10_000, *_SQL_LIKE]),
    st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
)
_seconds = st.one_of(
    st.integers(min_value=YEAR_1, max_value=YEAR_9999_END),
    st.sampled_from([YEAR_1, YEAR_2000 - 1, YEAR_2000, YEAR_9999_END]),
    st.integers(min_value=YEAR_2000, max_value=YEAR_2000 + 30 * 365 * 86_400),
)
_nanos = st.one_of(
    st.sampled_from([0, 999, 1000, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31)]),
    st.integers(min_value=0, max_value=999_999_999),
)
_timestamps = st.one_of(st.none(), st.tuples(_seconds, _nanos))


def _set(message: Any, name: str, value: float | None) -> None:
    if value is not None:
        setattr(message, name, value)


_VALID_SHARE = 0.85  # per field, so that about 40% of readings pass every rule


_VALID_NUMBERS = {
    "kwh_consumed_ac": st.floats(min_value=0, max_value=1e6),
    "voltage": st.floats(min_value=0, max_value=2000),
    "soc": st.floats(min_value=0, max_value=100),
    "kwh_delivered_dc": st.floats(min_value=0, max_value=1e6),
    "battery_temp": st.floats(min_value=-50, max_value=200),
}
_VALID_TIMESTAMPS = st.tuples(
    st.integers(min_value=YEAR_2000, max_value=1_790_000_000), st.integers(min_value=0, max_value=999_999_999)
)


@st.composite
def _readings(draw: st.DrawFn) -> reading_pb2.Reading:
    chance = draw(st.randoms(use_true_random=False))

    def _mostly_valid(valid: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> Any:
        return draw(valid if chance.random() < _VALID_SHARE else wild)

    kind = None if chance.random() < 0.05 else chance.choice(["meter", "vehicle"])
    reading = reading_pb2.Reading()
    if kind is None:
        return reading
    body: Any = reading.meter if kind == "meter" else reading.vehicle
    valid_id = st.builds("D-{}".format, st.integers(min_value=0, max_value=10**9))
    setattr(body, f"{kind}_id", _mostly_valid(valid_id, _device_ids))
    names = ("kwh_consumed_ac", "voltage") if kind == "meter" else ("soc", "kwh_delivered_dc", "battery_temp")
    for name in names:
        _set(body, name, _mostly_valid(_VALID_NUMBERS[name], _numbers))
    stamp = _mostly_valid(_VALID_TIMESTAMPS, _timestamps)
    if stamp is not None:
        body.timestamp.seconds, body.timestamp.nanos = stamp
    if kind == "meter" and not reading.HasField("meter"):
        reading.meter.SetInParent()
    if kind == "vehicle" and not reading.HasField("vehicle"):
        reading.vehicle.SetInParent()
    return reading


# The rules, stated again independently of the server's convert.py.
_BOUNDS = {
    "kwh_consumed_ac": (0.0, math.inf),
    "voltage": (0.0, 2000.0),
    "soc": (0.0, 100.0),
    "kwh_delivered_dc": (0.0, math.inf),
    "battery_temp": (-50.0, 200.0),
}


def expected_violations(reading: reading_pb2.Reading, now_s: float) -> set[str]:
    kind = reading.WhichOneof("kind")
    if kind is None:
        return {"kind"}
    body: Any = getattr(reading, kind)
    wrong: set[str] = set()
    device = getattr(body, f"{kind}_id")
    if (
        not 1 <= len(device) <= 100
        or any(unicodedata.category(ch) == "Cc" for ch in device)
        or device != device.strip()
    ):
        wrong.add(f"{kind}.{kind}_id")
    for name, (low, high) in _BOUNDS.items():
        if name in body.DESCRIPTOR.fields_by_name:
            value = getattr(body, name) if body.HasField(name) else math.nan
            if not (math.isfinite(value) and low <= value <= high):
                wrong.add(f"{kind}.{name}")
    stamp = body.timestamp
    if (
        not body.HasField("timestamp")
        or not 0 <= stamp.nanos < 1_000_000_000
        or stamp.seconds < YEAR_2000
        or stamp.seconds + stamp.nanos / 1e9 > now_s + SKEW_S
    ):
        wrong.add(f"{kind}.timestamp")
    return wrong


def identity(reading: reading_pb2.Reading) -> tuple[str, str, int]:
    kind = reading.WhichOneof("kind")
    assert kind is not None
    body: Any = getattr(reading, kind)
    return (
        kind,
        getattr(body, f"{kind}_id"),
        body.timestamp.seconds * 1_000_000 + body.timestamp.nanos // 1000,
    )


class Tally:
    def __init__(self) -> None:
        self.inputs = 0
        self.examples = 0
        self.valid_sent = 0
        self.valid: set[tuple[str, str, int]] = set()


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of the fuzz properties: reproducible, and patient with a real server."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@fuzz_settings(EXAMPLES)
@given(
    readings=st.lists(_readings(), min_size=READINGS_PER_EXAMPLE, max_size=READINGS_PER_EXAMPLE),
    shape=st.sampled_from(["unary", "upload", "stream"]),
)
async def test_arbitrary_readings_get_the_answer_the_rules_give(
    ingest: Stub, database_url: str, tally: Tally, readings: list[reading_pb2.Reading], shape: str
) -> None:
    now_s = datetime.now(UTC).timestamp()
    outcomes = await send(ingest, shape, readings, per_message=25)
    tally.inputs += len(readings)
    tally.examples += 1
    for index, reading in enumerate(readings):
        expected = expected_violations(reading, now_s)
        assert set(outcomes.rejected_fields(index)) == expected, (index, reading)
        if not expected:
            tally.valid_sent += 1
            tally.valid.add(identity(reading))
    # The database (emptied once, before the first example) holds exactly the valid readings.
    if tally.examples % 20 == 0 or tally.examples == EXAMPLES:
        assert await _stored_identities(database_url) == tally.valid


async def _stored_identities(database_url: str) -> set[tuple[str, str, int]]:
    rows = await fetch(database_url, "SELECT 'meter', meter_id, ts FROM meter_readings")
    rows += await fetch(database_url, "SELECT 'vehicle', vehicle_id, ts FROM vehicle_readings")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    stored = {(kind, device, (ts - epoch) // timedelta(microseconds=1)) for kind, device, ts in rows}
    assert len(stored) == len(rows)
    return stored


def test_the_fuzzing_tried_at_least_ten_thousand_readings(
    tally: Tally, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs after the property above (file order), which filled the tally.
    with capsys.disabled():
        print(
            f"\nfuzz: {tally.inputs:,} readings tried, {tally.valid_sent:,} of them valid, "
            f"{len(tally.valid):,} distinct valid ones stored"
        )
    assert tally.inputs >= 10_000


SQL_LOOKING_IDS = [
    "'; DROP TABLE meter_readings; --",
    "Robert'); DELETE FROM meter_current; --",
    "$$;$$ \\x00",
]


async def test_valid_sql_looking_ids_are_stored_verbatim(ingest: Stub, database_url: str) -> None:
    readings = [meter(device, BASE_TIME) for device in SQL_LOOKING_IDS]
    readings += [vehicle(device, BASE_TIME) for device in SQL_LOOKING_IDS]
    outcomes = await send(ingest, "unary", readings)
    assert outcomes.accepted == len(readings)
    meters = await fetch(database_url, "SELECT meter_id FROM meter_current ORDER BY 1")
    vehicles = await fetch(database_url, "SELECT vehicle_id FROM vehicle_readings ORDER BY 1")
    assert [row[0] for row in meters] == sorted(SQL_LOOKING_IDS)
    assert [row[0] for row in vehicles] == sorted(SQL_LOOKING_IDS)


_METHODS = [
    "/energy.v1.IngestService/IngestReadings",
    "/energy.v1.IngestService/UploadReadings",
    "/energy.v1.IngestService/StreamReadings",
    "/energy.v1.AnalyticsService/GetVehiclePerformance",
]
# What a well-formed-but-unusual message may get; never UNKNOWN or INTERNAL.
_ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def _raw_inputs(count: int, seed: int) -> list[bytes]:
    """Random bytes, and valid requests truncated, bit-flipped or spliced."""
    draw = random.Random(seed)
    valid = [
        ingest_pb2.IngestReadingsRequest(
            readings=[meter(f"M-{i}", BASE_TIME), vehicle(f"V-{i}", BASE_TIME)]
        ).SerializeToString()
        for i in range(8)
    ] + [analytics_pb2.GetVehiclePerformanceRequest(vehicle_id="V-1").SerializeToString()]
    inputs = []
    for n in range(count):
        base = draw.choice(valid)
        match n % 4:
            case 0:
                inputs.append(draw.randbytes(draw.randint(1, 300)))
            case 1:
                inputs.append(base[: draw.randint(0, len(base) - 1)])
            case 2:
                flipped = bytearray(base)
                for _ in range(draw.randint(1, 4)):
                    flipped[draw.randrange(len(flipped))] ^= 1 << draw.randrange(8)
                inputs.append(bytes(flipped))
            case _:
                cut = draw.randrange(len(base))
                inputs.append(base[:cut] + draw.randbytes(draw.randint(1, 20)) + base[cut:])
    return inputs


async def _send_raw(channel: aio.Channel, method: str, body: bytes) -> grpc.StatusCode:
    # No serializer: the bytes go on the wire as they are (hence Any: the stubs expect messages).
    try:
        if method.endswith("UploadReadings"):
            upload: Any = channel.stream_unary(method)
            await upload(iter([body]), timeout=10)
        elif method.endswith("StreamReadings"):
            stream: Any = channel.stream_stream(method)
            async for _ in stream(iter([body]), timeout=10):
                pass
        else:
            unary: Any = channel.unary_unary(method)
            await unary(body, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_raw_bytes_get_a_clear_status_and_the_server_keeps_serving(
    server: RunningServer, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _raw_inputs(2_000, seed=20261126)
    codes: dict[grpc.StatusCode, int] = {}
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for n, body in enumerate(inputs):
            method = _METHODS[n % len(_METHODS)]
            code = await _send_raw(channel, method, body)
            codes[code] = codes.get(code, 0) + 1
            assert code in _ACCEPTABLE, (method, body)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert codes.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > len(inputs) // 4
    # Whatever decoded and was stored obeys every rule.
    bad = await fetch(
        database_url,
        "SELECT count(*) FROM meter_readings WHERE NOT (kwh_consumed_ac >= 0 AND voltage BETWEEN 0 AND 2000 "
        "AND ts >= '2000-01-01' AND length(meter_id) BETWEEN 1 AND 100)",
    )
    assert bad == [(0,)]
    with capsys.disabled():
        summary = ", ".join(
            f"{code.name} {count}" for code, count in sorted(codes.items(), key=lambda c: c[0].name)
        )
        print(f"\nfuzz: {len(inputs):,} raw messages tried: {summary}")
