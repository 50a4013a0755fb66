"""Hostile reads: arbitrary analytics requests, every field of every request of
AnalyticsService (page tokens included, forged ones above all), built from the
descriptors so that a field added to the contract is fuzzed too. None may get
INTERNAL or UNKNOWN; an INVALID_ARGUMENT names the offending field; no token
widens a window past the limit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message, message_factory, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from hypothesis import given
from hypothesis import strategies as st

from energy.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2_grpc
from energy_server.app import RunningServer
from tests.support import BASE_TIME, meter, send, vehicle
from tests.test_fuzz import YEAR_1, YEAR_9999_END, _device_ids, _nanos, _seconds, fuzz_settings

SERVICE = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"]
REQUESTS_PER_EXAMPLE = 10
EXAMPLES = 520
_F = descriptor.FieldDescriptor
_DAY = 86_400


def _iso(seconds: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


_token_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "M\x00", " M", "VEH-00001", "x" * 101, "meter", "vehicle"]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 10**9, 10**9 + 1, 2**63, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    # Dates: aware and naive, at the edges of the range, 40 years apart.
    st.builds(_iso, st.integers(min_value=YEAR_1, max_value=YEAR_9999_END)),
    st.sampled_from(
        [
            "2026-02-11T00:00:00",
            "2026-02-11T00:00:00+00:00",
            "1986-02-11T00:00:00+00:00",
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59+00:00",
            "not a date",
        ]
    ),
)
_TOKEN_KEYS = ["after", "kind", "seen_since", "start", "end", "threshold", "offset"]


def _encoded(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


_page_tokens = st.one_of(
    st.just(""),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.dictionaries(st.sampled_from(_TOKEN_KEYS) | st.text(max_size=8), _token_values, max_size=6).map(
        _encoded
    ),
    # Well-shaped forgeries: the right keys with hostile values.
    st.fixed_dictionaries({"after": _token_values}).map(_encoded),
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["meter", "vehicle", "x"]),
            "seen_since": _token_values,
            "after": _token_values,
        }
    ).map(_encoded),
    st.fixed_dictionaries(
        {"start": _token_values, "end": _token_values, "threshold": _token_values, "offset": _token_values}
    ).map(_encoded),
)


def _timestamp_strategy() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    return st.builds(
        lambda seconds, nanos: timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos),
        st.one_of(
            _seconds,
            # Within a day of either end of the Timestamp range.
            st.integers(min_value=YEAR_1, max_value=YEAR_1 + 2 * _DAY),
            st.integers(min_value=YEAR_9999_END - 2 * _DAY, max_value=YEAR_9999_END),
            # Around the test data.
            st.integers(
                min_value=int(BASE_TIME.timestamp()) - 40 * _DAY,
                max_value=int(BASE_TIME.timestamp()) + 40 * _DAY,
            ),
        ),
        _nanos,
    )


def _field_strategy(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == _F.TYPE_STRING:
        return _page_tokens if field.name == "page_token" else _device_ids
    if field.type == _F.TYPE_INT32:
        return st.one_of(
            st.integers(min_value=-(2**31), max_value=2**31 - 1),
            st.sampled_from([0, 1, -1, 999, 1000, 1001]),
        )
    if field.type == _F.TYPE_ENUM:
        return st.integers(min_value=-3, max_value=8)
    if field.type == _F.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if field.type == _F.TYPE_MESSAGE and field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp_strategy()
        return _message_strategy(field.message_type)
    raise AssertionError(f"no strategy for {field.full_name} (type {field.type}): add one")


def _message_strategy(message_descriptor: descriptor.Descriptor) -> st.SearchStrategy[message.Message]:
    message_class = message_factory.GetMessageClass(message_descriptor)

    def build(values: dict[str, Any]) -> message.Message:
        built = message_class()
        for name, value in values.items():
            if isinstance(value, message.Message):
                getattr(built, name).CopyFrom(value)
            else:
                setattr(built, name, value)
        return built

    # Every field may be set or not: "unset" is an input too.
    return st.fixed_dictionaries(
        {}, optional={field.name: _field_strategy(field) for field in message_descriptor.fields}
    ).map(build)


_requests = st.one_of(
    *(st.tuples(st.just(method.name), _message_strategy(method.input_type)) for method in SERVICE.methods)
)


@dataclass
class ReadTally:
    requests: int = 0
    by_code: dict[str, int] | None = None


@pytest.fixture(scope="module")
def read_tally() -> ReadTally:
    return ReadTally(by_code={})


@pytest.fixture
async def seeded(server: RunningServer) -> RunningServer:
    """A little data, so that some requests find devices, links and pages."""
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        readings = [meter(f"METER-{n}", BASE_TIME + timedelta(minutes=m)) for n in range(3) for m in range(3)]
        readings += [
            vehicle(f"VEH-{n}", BASE_TIME + timedelta(minutes=m)) for n in range(3) for m in range(3)
        ]
        await send(ingest, "unary", readings)
        analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        for n in range(3):
            await analytics.LinkVehicle(
                analytics_pb2.LinkVehicleRequest(vehicle_id=f"VEH-{n}", meter_id=f"METER-{n}")
            )
    return server


def _violations(error: aio.AioRpcError) -> list[str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    return [violation.field for violation in bad.field_violations]
    return []


def _window_span(response: message.Message) -> timedelta | None:
    if "window" not in response.DESCRIPTOR.fields_by_name or not response.HasField("window"):
        return None
    window: analytics_pb2.TimeWindow = getattr(response, "window")  # noqa: B009 (not every response type has it)
    span: timedelta = window.end_time.ToDatetime() - window.start_time.ToDatetime()
    return span


@fuzz_settings(EXAMPLES)
@given(requests=st.lists(_requests, min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE))
async def test_arbitrary_analytics_requests_never_get_internal_or_unknown(
    seeded: RunningServer, read_tally: ReadTally, requests: list[tuple[str, message.Message]]
) -> None:
    async with aio.insecure_channel(f"127.0.0.1:{seeded.port}") as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        for method, request in requests:
            read_tally.requests += 1
            response: message.Message | None = None
            failure: aio.AioRpcError | None = None
            try:
                response = await getattr(stub, method)(request, timeout=30)
            except aio.AioRpcError as error:
                failure = error
            code = grpc.StatusCode.OK if failure is None else failure.code()
            assert code not in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}, (method, request, failure)
            if failure is not None and code == grpc.StatusCode.INVALID_ARGUMENT:
                assert _violations(failure), (method, request, failure)
            assert read_tally.by_code is not None
            read_tally.by_code[code.name] = read_tally.by_code.get(code.name, 0) + 1
            span = None if response is None else _window_span(response)
            # No request, and no page token, gets an answer over more than 31 days.
            assert span is None or span <= timedelta(days=31), (method, request)


def test_the_analytics_fuzzing_tried_at_least_five_thousand_requests(
    read_tally: ReadTally, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs after the property above (file order), which filled the tally.
    with capsys.disabled():
        print(f"\nfuzz: {read_tally.requests:,} analytics requests tried: {read_tally.by_code}")
    assert read_tally.requests >= 5_000


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        # A window ending within 24 h after 0001-01-01, without a start (was OverflowError).
        (
            "GetMeterFleetSummary",
            analytics_pb2.GetMeterFleetSummaryRequest(
                window=analytics_pb2.TimeWindow(end_time=timestamp_pb2.Timestamp(seconds=YEAR_1 + 3600))
            ),
            "window.end_time",
        ),
        # The last second of year 9999.
        (
            "GetTimeSeries",
            analytics_pb2.GetTimeSeriesRequest(
                kind=analytics_pb2.DEVICE_KIND_METER,
                device_id="METER-0",
                bucket=analytics_pb2.TIME_BUCKET_ONE_HOUR,
                window=analytics_pb2.TimeWindow(
                    start_time=timestamp_pb2.Timestamp(seconds=YEAR_9999_END - 7200),
                    end_time=timestamp_pb2.Timestamp(seconds=YEAR_9999_END),
                ),
            ),
            "window.end_time",
        ),
        # Forged tokens: a NUL in `after`, a 40-year window, an offset of 10^30, a naive end.
        (
            "ListVehicleLinks",
            analytics_pb2.ListVehicleLinksRequest(page_token=_encoded({"after": "M\x00"})),
            None,
        ),
        (
            "ListCurrentReadings",
            analytics_pb2.ListCurrentReadingsRequest(
                kind=analytics_pb2.DEVICE_KIND_METER,
                page_token=_encoded(
                    {"kind": "meter", "seen_since": "0001-01-01T00:00:00+00:00", "after": "\x00"}
                ),
            ),
            None,
        ),
        (
            "ListEfficiencyAnomalies",
            analytics_pb2.ListEfficiencyAnomaliesRequest(
                page_token=_encoded(
                    {
                        "start": "1986-01-01T00:00:00+00:00",
                        "end": "2026-01-01T00:00:00+00:00",
                        "threshold": 0.85,
                        "offset": 0,
                    }
                )
            ),
            None,
        ),
        (
            "ListEfficiencyAnomalies",
            analytics_pb2.ListEfficiencyAnomaliesRequest(
                page_token=_encoded(
                    {
                        "start": "2026-01-01T00:00:00+00:00",
                        "end": "2026-01-02T00:00:00+00:00",
                        "threshold": 0.85,
                        "offset": 10**30,
                    }
                )
            ),
            None,
        ),
        (
            "ListEfficiencyAnomalies",
            analytics_pb2.ListEfficiencyAnomaliesRequest(
                page_token=_encoded(
                    {
                        "start": "2026-01-01T00:00:00+00:00",
                        "end": "2026-01-02T00:00:00",
                        "threshold": 0.85,
                        "offset": 0,
                    }
                )
            ),
            None,
        ),
        # A token of another listing is foreign.
        (
            "ListEfficiencyAnomalies",
            analytics_pb2.ListEfficiencyAnomaliesRequest(page_token=_encoded({"after": "VEH-1"})),
            None,
        ),
    ],
)
async def test_the_reported_hostile_reads_are_invalid_argument_naming_the_field(
    analytics: analytics_pb2_grpc.AnalyticsServiceAsyncStub,
    method: str,
    request_message: message.Message,
    field: str | None,
) -> None:
    with pytest.raises(aio.AioRpcError) as raised:
        await getattr(analytics, method)(request_message, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value
    assert _violations(raised.value) == [field or "page_token"]
