"""Building readings: from Python values, and from the lines of JSON Lines and CSV files.

A line may be the original HTTP API's body (`{"meterId": …}` or
`{"vehicleId": …}`), the protobuf JSON of a Reading (`{"meter": {…}}`), or a
CSV row whose header names the fields (snake_case or camelCase). Only the
form is checked here; the server checks the values and names any field it
rejects, so the rules live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from energy.v1 import reading_pb2

__all__ = ["ReadingFormatError", "meter", "reading_from_fields", "timestamp_of", "vehicle"]

METER_FIELDS = ("meter_id", "kwh_consumed_ac", "voltage", "timestamp")
VEHICLE_FIELDS = ("vehicle_id", "soc", "kwh_delivered_dc", "battery_temp", "timestamp")
_NUMBERS = frozenset({"kwh_consumed_ac", "voltage", "soc", "kwh_delivered_dc", "battery_temp"})


class ReadingFormatError(ValueError):
    """A line that is not a reading at all (the server never sees it)."""


def timestamp_of(at: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp; `at` must carry its UTC offset."""
    if at.tzinfo is None:
        raise ValueError("timestamp: a datetime without a UTC offset is ambiguous")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at.astimezone(UTC))
    return stamp


def meter(meter_id: str, kwh_consumed_ac: float, voltage: float, at: datetime) -> reading_pb2.Reading:
    """A smart meter's reading: kWh consumed since its previous reading, volts, when measured."""
    return reading_pb2.Reading(
        meter=reading_pb2.MeterReading(
            meter_id=meter_id, kwh_consumed_ac=kwh_consumed_ac, voltage=voltage, timestamp=timestamp_of(at)
        )
    )


def vehicle(
    vehicle_id: str, soc: float, kwh_delivered_dc: float, battery_temp: float, at: datetime
) -> reading_pb2.Reading:
    """A vehicle's reading: state of charge %, DC kWh since its previous reading, battery °C, when."""
    return reading_pb2.Reading(
        vehicle=reading_pb2.VehicleReading(
            vehicle_id=vehicle_id,
            soc=soc,
            kwh_delivered_dc=kwh_delivered_dc,
            battery_temp=battery_temp,
            timestamp=timestamp_of(at),
        )
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _parse_timestamp(value: object) -> timestamp_pb2.Timestamp:
    if isinstance(value, bool):
        raise ReadingFormatError("timestamp: expected an RFC 3339 time or epoch seconds")
    if isinstance(value, int | float):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(round(value * 1e9))
        return stamp
    if not isinstance(value, str):
        raise ReadingFormatError("timestamp: expected an RFC 3339 time or epoch seconds")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReadingFormatError(f"timestamp: {value!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise ReadingFormatError(f"timestamp: {value!r} needs a UTC offset, e.g. {value}Z")
    return timestamp_of(at)


def _parse_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReadingFormatError(f"{name}: expected a number")
    try:
        return float(value)
    except ValueError:
        raise ReadingFormatError(f"{name}: {value!r} is not a number") from None


def reading_from_fields(fields: Mapping[str, Any]) -> reading_pb2.Reading:
    """A Reading from one parsed JSON object or CSV row.

    Empty CSV cells count as absent, so one header can serve meters and
    vehicles. Raises ReadingFormatError naming what is wrong.
    """
    if set(fields) <= {"meter", "vehicle"} and fields:
        try:
            return json_format.ParseDict(dict(fields), reading_pb2.Reading())
        except json_format.ParseError as error:
            raise ReadingFormatError(str(error)) from None
    values = {_snake(key): value for key, value in fields.items() if value not in ("", None)}
    kinds = [kind for kind in ("meter", "vehicle") if f"{kind}_id" in values]
    if len(kinds) != 1:
        raise ReadingFormatError(
            "kind: a reading has exactly one of meterId/meter_id and vehicleId/vehicle_id"
        )
    kind = kinds[0]
    allowed = METER_FIELDS if kind == "meter" else VEHICLE_FIELDS
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ReadingFormatError(f"{unknown[0]}: not a field of a {kind} reading")
    message: dict[str, Any] = {}
    for name, value in values.items():
        if name == "timestamp":
            message[name] = _parse_timestamp(value)
        elif name in _NUMBERS:
            message[name] = _parse_number(name, value)
        elif isinstance(value, str):
            message[name] = value
        else:
            raise ReadingFormatError(f"{name}: expected a string")
    if kind == "meter":
        return reading_pb2.Reading(meter=reading_pb2.MeterReading(**message))
    return reading_pb2.Reading(vehicle=reading_pb2.VehicleReading(**message))
