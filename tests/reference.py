"""The analytics computed in plain Python from the readings a test sent:
what every RPC must equal (sums up to floating-point rounding)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

METER_FIELDS = ("kwh_consumed_ac", "voltage")
VEHICLE_FIELDS = ("soc", "kwh_delivered_dc", "battery_temp")


@dataclass(frozen=True)
class Row:
    """One stored reading: kind ('meter'/'vehicle'), device, time, field values."""

    kind: str
    device: str
    ts: datetime
    values: dict[str, float]


@dataclass
class Expected:
    reading_count: int
    sums: dict[str, float]
    mins: dict[str, float | None]
    maxs: dict[str, float | None]
    first: datetime | None
    last: datetime | None


def stored(rows: Iterable[Row]) -> list[Row]:
    """What the database keeps: the first reading of each (kind, device, ts)."""
    first: dict[tuple[str, str, datetime], Row] = {}
    for row in rows:
        first.setdefault((row.kind, row.device, row.ts), row)
    return list(first.values())


def aggregate(rows: Iterable[Row], fields: tuple[str, ...]) -> Expected:
    rows = list(rows)
    return Expected(
        reading_count=len(rows),
        sums={f: total(r.values[f] for r in rows) for f in fields},
        mins={f: min((r.values[f] for r in rows), default=None) for f in fields},
        maxs={f: max((r.values[f] for r in rows), default=None) for f in fields},
        first=min((r.ts for r in rows), default=None),
        last=max((r.ts for r in rows), default=None),
    )


def total(values: Iterable[float]) -> float:
    """The exact sum, rounded once; +inf beyond the largest float, as IEEE addition gives.

    Values are never negative here, so an overflow on the way means the total overflows.
    """
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


def in_window(
    rows: Iterable[Row], start: datetime, end: datetime, kind: str, device: str | None = None
) -> list[Row]:
    return [
        r for r in rows if r.kind == kind and start <= r.ts < end and (device is None or r.device == device)
    ]


def buckets(rows: Iterable[Row], width: timedelta, epoch: datetime) -> dict[datetime, list[Row]]:
    grouped: dict[datetime, list[Row]] = {}
    for row in rows:
        start = row.ts - ((row.ts - epoch) % width)
        grouped.setdefault(start, []).append(row)
    return grouped


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
