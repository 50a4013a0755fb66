"""Domain values: what a validated reading is and what storing it did.

Nothing here knows protobuf or SQL; `convert` builds these from messages and
`repository` stores them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["FieldViolation", "MeterValues", "Outcome", "ValidReading", "VehicleValues"]


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
