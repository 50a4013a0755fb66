"""Protobuf <-> domain values, and every validation rule of DESIGN.md section 2.

This is the only module that calls `WhichOneof`, converts `Timestamp`s or
decides whether a reading is valid.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

from energy.v1 import analytics_pb2, ingest_pb2, metrics_pb2, reading_pb2
from energy_server.domain import (
    Aggregate,
    DeviceKind,
    EfficiencyAnomaly,
    FieldViolation,
    MeterValues,
    Outcome,
    Resolution,
    ValidReading,
    VehicleLink,
    VehicleValues,
    Window,
)
from energy_server.errors import InvalidInput
from energy_server.metrics import MetricsSnapshot

__all__ = [
    "SummaryBuilder",
    "ValidatedMessage",
    "check_reading_count",
    "timestamp_from_datetime",
    "validate_readings",
]

DEVICE_ID_MAX_CHARS = 100
VOLTAGE_MAX = 2000.0
SOC_MAX = 100.0
BATTERY_TEMP_MIN = -50.0
BATTERY_TEMP_MAX = 200.0
# 2000-01-01T00:00:00Z: older timestamps are firmware clocks that were never set.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST_SECONDS = int(EARLIEST_TIMESTAMP.timestamp())
_NANOS_PER_SECOND = 1_000_000_000
# Unicode category Cc is exactly these two ranges.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class _TimeBounds:
    """The timestamps a reading may carry: from the horizon (or 2000-01-01) to the clock plus skew."""

    latest_seconds: int
    latest_nanos: int
    earliest_us: int
    horizon: datetime | None


def _microseconds_of(instant: datetime) -> int:
    seconds, nanos = timestamp_from_datetime(instant)
    return seconds * 1_000_000 + nanos // 1000


@dataclass(slots=True)
class ValidatedMessage:
    """The readings of one message split into valid values and rejections.

    `indexes[i]` is the position in the message of `readings[i]`.
    """

    readings: list[ValidReading] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    rejections: list[tuple[int, list[FieldViolation]]] = field(default_factory=list)

    def bad_request_violations(self) -> list[FieldViolation]:
        """Rejections as request-level violations named `readings[i].<field>`."""
        return [
            FieldViolation(f"readings[{index}].{violation.field}", violation.description)
            for index, violations in self.rejections
            for violation in violations
        ]


def check_reading_count(count: int, limit: int) -> None:
    """A message may not carry more readings than the configured limit."""
    if count > limit:
        message = f"a message may carry at most {limit} readings (got {count})"
        raise InvalidInput(message, [FieldViolation("readings", message)])


def validate_readings(
    readings: Sequence[reading_pb2.Reading],
    now: datetime,
    clock_skew_allowance: timedelta,
    earliest: datetime | None = None,
) -> ValidatedMessage:
    """Validate every reading of a message against the server clock `now`;
    `earliest` is the raw retention horizon (None: everything is kept)."""
    latest = now + clock_skew_allowance
    bounds = _TimeBounds(
        math.floor(latest.timestamp()),
        latest.microsecond * 1000,
        _EARLIEST_SECONDS * 1_000_000 if earliest is None else _microseconds_of(earliest),
        earliest,
    )
    result = ValidatedMessage()
    for index, reading in enumerate(readings):
        violations: list[FieldViolation] = []
        value: ValidReading | None
        kind = reading.WhichOneof("kind")
        if kind == "meter":
            value = _meter_values(reading.meter, bounds, violations)
        elif kind == "vehicle":
            value = _vehicle_values(reading.vehicle, bounds, violations)
        else:
            value = None
            violations.append(FieldViolation("kind", "set exactly one of `meter` or `vehicle`"))
        if value is None:
            result.rejections.append((index, violations))
        else:
            result.readings.append(value)
            result.indexes.append(index)
    return result


def _meter_values(
    meter: reading_pb2.MeterReading,
    bounds: _TimeBounds,
    violations: list[FieldViolation],
) -> MeterValues | None:
    _check_device_id(meter.meter_id, "meter.meter_id", violations)
    _check_number(meter, "kwh_consumed_ac", "meter", 0.0, None, violations)
    _check_number(meter, "voltage", "meter", 0.0, VOLTAGE_MAX, violations)
    ts_us = _timestamp(meter, "meter", bounds, violations)
    if violations or ts_us is None:
        return None
    return MeterValues(meter.meter_id, ts_us, meter.kwh_consumed_ac, meter.voltage)


def _vehicle_values(
    vehicle: reading_pb2.VehicleReading,
    bounds: _TimeBounds,
    violations: list[FieldViolation],
) -> VehicleValues | None:
    _check_device_id(vehicle.vehicle_id, "vehicle.vehicle_id", violations)
    _check_number(vehicle, "soc", "vehicle", 0.0, SOC_MAX, violations)
    _check_number(vehicle, "kwh_delivered_dc", "vehicle", 0.0, None, violations)
    _check_number(vehicle, "battery_temp", "vehicle", BATTERY_TEMP_MIN, BATTERY_TEMP_MAX, violations)
    ts_us = _timestamp(vehicle, "vehicle", bounds, violations)
    if violations or ts_us is None:
        return None
    return VehicleValues(
        vehicle.vehicle_id, ts_us, vehicle.soc, vehicle.kwh_delivered_dc, vehicle.battery_temp
    )


def _check_device_id(value: str, path: str, violations: list[FieldViolation]) -> None:
    if not value:
        violations.append(FieldViolation(path, "required: 1 to 100 characters"))
    elif len(value) > DEVICE_ID_MAX_CHARS:
        violations.append(
            FieldViolation(path, f"at most {DEVICE_ID_MAX_CHARS} characters (got {len(value)})")
        )
    elif _CONTROL_CHARACTER.search(value):
        violations.append(FieldViolation(path, "must not contain control characters"))
    elif value != value.strip():
        violations.append(FieldViolation(path, "must not start or end with white space"))


def _check_number(
    message: reading_pb2.MeterReading | reading_pb2.VehicleReading,
    name: str,
    kind: str,
    minimum: float,
    maximum: float | None,
    violations: list[FieldViolation],
) -> None:
    path = f"{kind}.{name}"
    if not message.HasField(name):
        violations.append(FieldViolation(path, "required"))
        return
    value: float = getattr(message, name)
    if not math.isfinite(value):
        violations.append(FieldViolation(path, f"must be a finite number (got {value})"))
    elif value < minimum or (maximum is not None and value > maximum):
        allowed = f"from {minimum:g} to {maximum:g}" if maximum is not None else f">= {minimum:g}"
        violations.append(FieldViolation(path, f"must be {allowed} (got {value:g})"))


def _timestamp(
    message: reading_pb2.MeterReading | reading_pb2.VehicleReading,
    kind: str,
    bounds: _TimeBounds,
    violations: list[FieldViolation],
) -> int | None:
    path = f"{kind}.timestamp"
    if not message.HasField("timestamp"):
        violations.append(FieldViolation(path, "required"))
        return None
    seconds = message.timestamp.seconds
    nanos = message.timestamp.nanos
    if not 0 <= nanos < _NANOS_PER_SECOND:
        violations.append(FieldViolation(path, f"nanos must be 0 to 999999999 (got {nanos})"))
        return None
    if seconds < _EARLIEST_SECONDS:
        violations.append(FieldViolation(path, "must not be before 2000-01-01T00:00:00Z"))
        return None
    if (seconds, nanos) > (bounds.latest_seconds, bounds.latest_nanos):
        violations.append(
            FieldViolation(path, "must not be later than the server's clock plus its skew allowance")
        )
        return None
    # PostgreSQL keeps microseconds; truncating here keeps identity and storage equal.
    ts_us = seconds * 1_000_000 + nanos // 1000
    if ts_us < bounds.earliest_us and bounds.horizon is not None:
        violations.append(
            FieldViolation(
                path,
                f"must not be before the raw retention horizon {bounds.horizon.isoformat()} "
                "(ENERGY_RAW_RETENTION): readings that old are no longer kept",
            )
        )
        return None
    return ts_us


def timestamp_from_datetime(value: datetime) -> tuple[int, int]:
    """(seconds, nanos) of an aware datetime, for `Timestamp(seconds=, nanos=)`."""
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86_400 + delta.seconds
    return seconds, delta.microseconds * 1000


class SummaryBuilder:
    """Accumulates what happened to the readings of one or more messages."""

    __slots__ = ("_accepted", "_duplicates", "_rejections", "_stale")

    def __init__(self) -> None:
        self._accepted = 0
        self._duplicates: list[int] = []
        self._stale: list[int] = []
        self._rejections: list[ingest_pb2.ReadingRejection] = []

    def add(self, message: ValidatedMessage, outcomes: Sequence[Outcome], offset: int = 0) -> None:
        """Record a message's outcomes; `offset` is the index of its first reading."""
        for index, outcome in zip(message.indexes, outcomes, strict=True):
            if outcome is Outcome.ACCEPTED:
                self._accepted += 1
            elif outcome is Outcome.DUPLICATE:
                self._duplicates.append(offset + index)
            else:
                self._stale.append(offset + index)
        for index, violations in message.rejections:
            self._rejections.append(
                ingest_pb2.ReadingRejection(
                    index=offset + index,
                    field_violations=[
                        ingest_pb2.FieldViolation(field=v.field, description=v.description)
                        for v in violations
                    ],
                )
            )

    def merge(self, other: SummaryBuilder) -> None:
        """Add what `other` recorded (built with the right offsets)."""
        self._accepted += other._accepted
        self._duplicates += other._duplicates
        self._stale += other._stale
        self._rejections += other._rejections

    @property
    def reading_count(self) -> int:
        return self._accepted + len(self._duplicates) + len(self._stale) + len(self._rejections)

    def to_proto(self) -> ingest_pb2.IngestSummary:
        rejections: list[ingest_pb2.ReadingRejection] = sorted(self._rejections, key=_rejection_index)
        return ingest_pb2.IngestSummary(
            accepted_count=self._accepted,
            duplicate_count=len(self._duplicates),
            stale_count=len(self._stale),
            rejected_count=len(self._rejections),
            duplicate_indexes=sorted(self._duplicates),
            stale_indexes=sorted(self._stale),
            rejections=rejections,
        )


def _rejection_index(rejection: ingest_pb2.ReadingRejection) -> int:
    return rejection.index


# ---- Analytics: requests in, answers out ----------------------------------

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_BUCKETS = 10_000
DEFAULT_ANOMALY_THRESHOLD = 0.85
_BUCKETS: dict[int, timedelta] = {
    analytics_pb2.TIME_BUCKET_ONE_MINUTE: timedelta(minutes=1),
    analytics_pb2.TIME_BUCKET_FIFTEEN_MINUTES: timedelta(minutes=15),
    analytics_pb2.TIME_BUCKET_ONE_HOUR: timedelta(hours=1),
    analytics_pb2.TIME_BUCKET_ONE_DAY: timedelta(days=1),
}
_KINDS: dict[int, DeviceKind] = {
    analytics_pb2.DEVICE_KIND_METER: DeviceKind.METER,
    analytics_pb2.DEVICE_KIND_VEHICLE: DeviceKind.VEHICLE,
}
# Timestamps a datetime can hold (years 1 to 9999).
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def _invalid(field_path: str, description: str) -> InvalidInput:
    return InvalidInput(f"{field_path}: {description}", [FieldViolation(field_path, description)])


def requested_device_id(value: str, field_path: str) -> str:
    """A device id from a request, held to the same rules as a reading's."""
    violations: list[FieldViolation] = []
    _check_device_id(value, field_path, violations)
    if violations:
        raise InvalidInput(f"{field_path}: {violations[0].description}", violations)
    return value


def requested_kind(value: int) -> DeviceKind:
    kind = _KINDS.get(value)
    if kind is None:
        raise _invalid("kind", "set DEVICE_KIND_METER or DEVICE_KIND_VEHICLE")
    return kind


def datetime_from_timestamp(stamp: timestamp_pb2.Timestamp, field_path: str) -> datetime:
    if not 0 <= stamp.nanos < _NANOS_PER_SECOND or not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS:
        raise _invalid(field_path, "not a valid timestamp")
    return datetime.fromtimestamp(stamp.seconds, UTC).replace(microsecond=stamp.nanos // 1000)


def timestamp_of(value: datetime) -> timestamp_pb2.Timestamp:
    seconds, nanos = timestamp_from_datetime(value)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def timestamp_of_microseconds(ts_us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(ts_us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


# Window edges the analytics accept: the Timestamp range less a day at each end,
# room for the default 24 hours and for rounding edges to whole rollup periods.
WINDOW_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
WINDOW_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _window_edge(value: datetime, field_path: str) -> datetime:
    if not WINDOW_EARLIEST <= value <= WINDOW_LATEST:
        allowed = f"from {WINDOW_EARLIEST.isoformat()} to {WINDOW_LATEST.isoformat()}"
        raise _invalid(field_path, f"must be {allowed} (got {value.isoformat()})")
    return value


def checked_window(start: datetime, end: datetime, field_path: str = "window") -> Window:
    """A window held to the rules: edges in range, start before end, at most MAX_WINDOW."""
    _window_edge(start, f"{field_path}.start_time" if field_path == "window" else field_path)
    _window_edge(end, f"{field_path}.end_time" if field_path == "window" else field_path)
    if start >= end:
        raise _invalid(field_path, "start_time must be before end_time")
    if end - start > MAX_WINDOW:
        raise _invalid(field_path, f"may span at most {MAX_WINDOW.days} days")
    return Window(start, end)


def requested_window(window: analytics_pb2.TimeWindow | None, now: datetime) -> Window:
    """The window a request asks for: defaults filled in, then checked."""
    end = now
    if window is not None and window.HasField("end_time"):
        end = _window_edge(datetime_from_timestamp(window.end_time, "window.end_time"), "window.end_time")
    if window is not None and window.HasField("start_time"):
        start = datetime_from_timestamp(window.start_time, "window.start_time")
    else:
        start = end - DEFAULT_WINDOW
    return checked_window(start, end)


_RESOLUTION_TO_PROTO = {
    Resolution.RAW: analytics_pb2.RESOLUTION_RAW,
    Resolution.HOURLY: analytics_pb2.RESOLUTION_HOURLY,
}


def resolution_to_proto(resolution: Resolution) -> analytics_pb2.Resolution:
    return _RESOLUTION_TO_PROTO[resolution]


def window_to_proto(window: Window) -> analytics_pb2.TimeWindow:
    return analytics_pb2.TimeWindow(start_time=timestamp_of(window.start), end_time=timestamp_of(window.end))


def requested_page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise _invalid("page_size", f"must be 0 (default {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


def requested_bucket(value: int, window: Window) -> timedelta:
    width = _BUCKETS.get(value)
    if width is None:
        raise _invalid("bucket", "set a TIME_BUCKET_* width")
    if (window.end - window.start) / width > MAX_BUCKETS:
        raise _invalid("bucket", f"the window would have more than {MAX_BUCKETS} buckets; widen them")
    return width


def requested_threshold(request: analytics_pb2.ListEfficiencyAnomaliesRequest) -> float:
    if not request.HasField("threshold"):
        return DEFAULT_ANOMALY_THRESHOLD
    if not math.isfinite(request.threshold) or not 0 <= request.threshold <= 1:
        raise _invalid("threshold", "must be from 0 to 1")
    return request.threshold


# What a page token may hold: each key's type. Tokens are not secret, so a
# decoded token is held to every rule a request is (and to the request it
# continues): a forged one can ask for nothing a request could not.
_TOKEN_FIELDS: dict[str, type] = {
    "after": str,
    "kind": str,
    "seen_since": str,
    "start": str,
    "end": str,
    "threshold": float,
    "offset": int,
}
# Deeper than any listing this service answers (the anomaly ranking has one row per vehicle).
MAX_PAGE_OFFSET = 1_000_000_000
_FOREIGN_TOKEN = "not a token this service issued for this request; start again without it"  # noqa: S105


def encode_page_token(position: dict[str, object]) -> str:
    """An opaque token: the position of the next page and the query it belongs to."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, keys: frozenset[str]) -> dict[str, object]:
    """The position a token names, with exactly `keys`, each of its type; {} for no
    token; INVALID_ARGUMENT naming `page_token` for anything else."""
    if not token:
        return {}
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError):
        position = None
    if (
        not isinstance(position, dict)
        or set(position) != keys
        or any(type(position[key]) is not _TOKEN_FIELDS[key] for key in keys)
    ):
        raise _invalid("page_token", _FOREIGN_TOKEN)
    if "after" in position:
        after = position["after"]
        assert isinstance(after, str)
        violations: list[FieldViolation] = []
        _check_device_id(after, "page_token", violations)
        if violations:
            raise _invalid("page_token", _FOREIGN_TOKEN)
    if "offset" in position:
        offset = position["offset"]
        assert isinstance(offset, int)
        if not 0 <= offset <= MAX_PAGE_OFFSET:
            raise _invalid("page_token", _FOREIGN_TOKEN)
    return position


def token_window(position: dict[str, object]) -> Window:
    """The window a token carries, held to the rules of a requested one."""
    try:
        start = datetime.fromisoformat(str(position["start"]))
        end = datetime.fromisoformat(str(position["end"]))
    except ValueError:
        raise _invalid("page_token", _FOREIGN_TOKEN) from None
    if start.tzinfo is None or end.tzinfo is None:
        raise _invalid("page_token", _FOREIGN_TOKEN)
    return checked_window(start.astimezone(UTC), end.astimezone(UTC), "page_token")


def check_same_query(position: dict[str, object], query: dict[str, object]) -> None:
    """A page token only continues the query that issued it (AIP-158)."""
    for key, value in query.items():
        if key in position and position[key] != value:
            raise _invalid("page_token", f"was issued for a different {key}; start again without it")


def meter_aggregate_to_proto(aggregate: Aggregate) -> analytics_pb2.MeterAggregate:
    message = analytics_pb2.MeterAggregate()
    _fill_aggregate(message, aggregate)
    return message


def vehicle_aggregate_to_proto(aggregate: Aggregate) -> analytics_pb2.VehicleAggregate:
    message = analytics_pb2.VehicleAggregate()
    _fill_aggregate(message, aggregate)
    return message


def _fill_aggregate(
    message: analytics_pb2.MeterAggregate | analytics_pb2.VehicleAggregate, aggregate: Aggregate
) -> None:
    message.reading_count = aggregate.reading_count
    for name, statistics in aggregate.fields.items():
        target: analytics_pb2.ValueStatistics = getattr(message, name)
        target.sum = statistics.sum
        if aggregate.reading_count:
            target.mean = statistics.sum / aggregate.reading_count
        if statistics.min is not None:
            target.min = statistics.min
        if statistics.max is not None:
            target.max = statistics.max
    if aggregate.first_reading is not None:
        message.first_reading_time.CopyFrom(timestamp_of(aggregate.first_reading))
    if aggregate.last_reading is not None:
        message.last_reading_time.CopyFrom(timestamp_of(aggregate.last_reading))


def page_offset(position: dict[str, object]) -> int:
    offset = position.get("offset", 0)
    assert isinstance(offset, int)  # decode_page_token checked it
    return offset


def meter_reading_to_proto(values: MeterValues) -> reading_pb2.MeterReading:
    return reading_pb2.MeterReading(
        meter_id=values.meter_id,
        kwh_consumed_ac=values.kwh_consumed_ac,
        voltage=values.voltage,
        timestamp=timestamp_of_microseconds(values.ts_us),
    )


def vehicle_reading_to_proto(values: VehicleValues) -> reading_pb2.VehicleReading:
    return reading_pb2.VehicleReading(
        vehicle_id=values.vehicle_id,
        soc=values.soc,
        kwh_delivered_dc=values.kwh_delivered_dc,
        battery_temp=values.battery_temp,
        timestamp=timestamp_of_microseconds(values.ts_us),
    )


def reading_to_proto(values: MeterValues | VehicleValues) -> reading_pb2.Reading:
    if isinstance(values, MeterValues):
        return reading_pb2.Reading(meter=meter_reading_to_proto(values))
    return reading_pb2.Reading(vehicle=vehicle_reading_to_proto(values))


def link_to_proto(link: VehicleLink) -> analytics_pb2.VehicleLink:
    return analytics_pb2.VehicleLink(
        vehicle_id=link.vehicle_id, meter_id=link.meter_id, update_time=timestamp_of(link.updated_at)
    )


def anomaly_to_proto(anomaly: EfficiencyAnomaly) -> analytics_pb2.EfficiencyAnomaly:
    return analytics_pb2.EfficiencyAnomaly(
        vehicle_id=anomaly.vehicle_id,
        meter_id=anomaly.meter_id,
        ac_consumed_kwh=anomaly.ac_kwh,
        dc_delivered_kwh=anomaly.dc_kwh,
        efficiency_ratio=anomaly.ratio,
        kind=(
            analytics_pb2.ANOMALY_KIND_ABOVE_ONE
            if anomaly.ratio > 1
            else analytics_pb2.ANOMALY_KIND_BELOW_THRESHOLD
        ),
        deviation=anomaly.deviation,
    )


def metrics_to_proto(snapshot: MetricsSnapshot) -> metrics_pb2.GetServerMetricsResponse:
    outcomes = snapshot.readings_by_outcome
    return metrics_pb2.GetServerMetricsResponse(
        start_time=timestamp_of(snapshot.start_time),
        readings=metrics_pb2.ReadingCounts(
            accepted=outcomes["accepted"],
            duplicate=outcomes["duplicate"],
            stale=outcomes["stale"],
            rejected=outcomes["rejected"],
        ),
        commits=metrics_pb2.CommitMetrics(
            batches_committed=snapshot.batches_committed,
            batches_failed=snapshot.batches_failed,
            readings_committed=snapshot.readings_committed,
            commit_seconds_total=snapshot.commit_seconds_total,
            commit_seconds=_buckets_to_proto(snapshot.commit_seconds),
            batch_readings=_buckets_to_proto(snapshot.batch_readings),
        ),
        pools=[
            metrics_pb2.PoolMetrics(
                name=pool.name,
                size=pool.size,
                available=pool.available,
                waiting=pool.waiting,
                requests=pool.requests,
                requests_waited=pool.requests_waited,
                wait_seconds_total=pool.wait_seconds_total,
                request_errors=pool.request_errors,
            )
            for pool in snapshot.pools
        ],
        pending_readings=snapshot.pending_readings,
        limits=[
            metrics_pb2.LimitMetrics(
                name=limit.name, limit=limit.limit, in_use=limit.in_use, high_water=limit.high_water
            )
            for limit in snapshot.limits
        ],
    )


def _buckets_to_proto(buckets: tuple[tuple[float, int], ...]) -> list[metrics_pb2.HistogramBucket]:
    return [
        metrics_pb2.HistogramBucket(upper_bound=bound, cumulative_count=count) for bound, count in buckets
    ]
