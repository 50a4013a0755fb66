"""Domain values: what a validated reading is and what storing it did.

Nothing here knows protobuf or SQL; `convert` builds these from messages and
`repository` stores them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Aggregate",
    "Coverage",
    "DeviceKind",
    "EfficiencyAnomaly",
    "FieldStatistics",
    "FieldViolation",
    "MeterValues",
    "Outcome",
    "Resolution",
    "ValidReading",
    "VehicleLink",
    "VehicleValues",
    "Window",
]


@dataclass(frozen=True, slots=True)
class MeterValues:
    """A valid smart-meter reading."""

    meter_id: str
    # Microseconds since 1970-01-01T00:00:00Z: PostgreSQL's precision, and
    # an int is far cheaper to build, compare and send than a datetime.
    ts_us: int
    kwh_consumed_ac: float
    voltage: float


@dataclass(frozen=True, slots=True)
class VehicleValues:
    """A valid vehicle reading; `ts_us` as in MeterValues."""

    vehicle_id: str
    ts_us: int
    soc: float
    kwh_delivered_dc: float
    battery_temp: float


ValidReading = MeterValues | VehicleValues


class Outcome(enum.Enum):
    """What storing one valid reading did."""

    # Newly in history and the newest reading its device had when it arrived.
    ACCEPTED = "accepted"
    # Its (device, timestamp) was already stored, or came earlier in the same batch.
    DUPLICATE = "duplicate"
    # Newly in history, but older than a reading its device already had: current unchanged.
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One broken rule; `field` is a proto field path such as `meter.voltage`."""

    field: str
    description: str


class DeviceKind(enum.Enum):
    """Which table group a device belongs to."""

    METER = "meter"
    VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range [start, end), timezone-aware UTC."""

    start: datetime
    end: datetime


class Resolution(enum.Enum):
    """How finely an answer could look at its window."""

    RAW = "raw"  # every reading
    HOURLY = "hourly"  # whole UTC hours, from the hourly rollups: the readings are past retention


@dataclass(frozen=True, slots=True)
class Coverage:
    """The window an answer really covers, and at which resolution."""

    window: Window
    resolution: Resolution


@dataclass(frozen=True, slots=True)
class FieldStatistics:
    """Sum, smallest and largest value of one reading field (min/max None without readings)."""

    sum: float
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What a set of readings of one kind adds up to; `fields` is keyed by field name."""

    reading_count: int
    fields: dict[str, FieldStatistics]
    first_reading: datetime | None
    last_reading: datetime | None


@dataclass(frozen=True, slots=True)
class VehicleLink:
    """The meter that charges a vehicle."""

    vehicle_id: str
    meter_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EfficiencyAnomaly:
    """A linked vehicle whose DC/AC ratio lies outside [threshold, 1]."""

    vehicle_id: str
    meter_id: str
    ac_kwh: float
    dc_kwh: float
    ratio: float
    deviation: float
