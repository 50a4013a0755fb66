"""Protobuf <-> domain values, and every validation rule of DESIGN.md section 2.

This is the only module that calls `WhichOneof`, converts `Timestamp`s or
decides whether a reading is valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from energy.v1 import ingest_pb2, reading_pb2
from energy_server.domain import FieldViolation, MeterValues, Outcome, ValidReading, VehicleValues
from energy_server.errors import InvalidInput

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
    readings: Sequence[reading_pb2.Reading], now: datetime, clock_skew_allowance: timedelta
) -> ValidatedMessage:
    """Validate every reading of a message against the server clock `now`."""
    latest = now + clock_skew_allowance
    latest_seconds = math.floor(latest.timestamp())
    latest_nanos = latest.microsecond * 1000
    result = ValidatedMessage()
    for index, reading in enumerate(readings):
        violations: list[FieldViolation] = []
        value: ValidReading | None
        kind = reading.WhichOneof("kind")
        if kind == "meter":
            value = _meter_values(reading.meter, latest_seconds, latest_nanos, violations)
        elif kind == "vehicle":
            value = _vehicle_values(reading.vehicle, latest_seconds, latest_nanos, violations)
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
    latest_seconds: int,
    latest_nanos: int,
    violations: list[FieldViolation],
) -> MeterValues | None:
    _check_device_id(meter.meter_id, "meter.meter_id", violations)
    _check_number(meter, "kwh_consumed_ac", "meter", 0.0, None, violations)
    _check_number(meter, "voltage", "meter", 0.0, VOLTAGE_MAX, violations)
    ts_us = _timestamp(meter, "meter", latest_seconds, latest_nanos, violations)
    if violations or ts_us is None:
        return None
    return MeterValues(meter.meter_id, ts_us, meter.kwh_consumed_ac, meter.voltage)


def _vehicle_values(
    vehicle: reading_pb2.VehicleReading,
    latest_seconds: int,
    latest_nanos: int,
    violations: list[FieldViolation],
) -> VehicleValues | None:
    _check_device_id(vehicle.vehicle_id, "vehicle.vehicle_id", violations)
    _check_number(vehicle, "soc", "vehicle", 0.0, SOC_MAX, violations)
    _check_number(vehicle, "kwh_delivered_dc", "vehicle", 0.0, None, violations)
    _check_number(vehicle, "battery_temp", "vehicle", BATTERY_TEMP_MIN, BATTERY_TEMP_MAX, violations)
    ts_us = _timestamp(vehicle, "vehicle", latest_seconds, latest_nanos, violations)
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
    latest_seconds: int,
    latest_nanos: int,
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
    if (seconds, nanos) > (latest_seconds, latest_nanos):
        violations.append(
            FieldViolation(path, "must not be later than the server's clock plus its skew allowance")
        )
        return None
    # PostgreSQL keeps microseconds; truncating here keeps identity and storage equal.
    return seconds * 1_000_000 + nanos // 1000


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
