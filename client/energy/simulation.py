"""A simulated fleet: pairs of a smart meter and the vehicle it charges, with plausible readings.

Each vehicle charges once a day for a few hours from its own start minute.
While it charges, its meter draws the charger's power (AC kWh per reading
interval), the vehicle receives AC x its conversion efficiency as DC kWh,
its state of charge rises and its battery warms; otherwise the meter draws
standby power and the vehicle's charge drifts down as it is driven. Every
tenth vehicle, from the third, converts badly (efficiency below 0.85), so
the anomaly ranking of a fleet of three or more has something to show.
Everything is seeded: the same fleet gives the same readings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from energy.readings import meter, vehicle
from energy.v1 import reading_pb2

__all__ = ["Fleet"]

_MINUTES_PER_DAY = 24 * 60


@dataclass(slots=True)
class _Pair:
    meter_id: str
    vehicle_id: str
    charger_kw: float
    efficiency: float
    capacity_kwh: float
    session_start_minute: int
    session_minutes: int
    soc: float


class Fleet:
    """`devices` meter/vehicle pairs numbered from `first` (ids METER-00001 / VEH-00001 and up)."""

    def __init__(self, devices: int, *, first: int = 1, seed: int = 7) -> None:
        self._random = random.Random(seed * 1_000_003 + first)
        self.pairs = [self._pair(number) for number in range(first, first + devices)]

    def _pair(self, number: int) -> _Pair:
        draw = self._random
        poor = number % 10 == 3
        return _Pair(
            meter_id=f"METER-{number:05d}",
            vehicle_id=f"VEH-{number:05d}",
            charger_kw=draw.choice((3.7, 7.4, 11.0, 22.0)),
            efficiency=draw.uniform(0.70, 0.82) if poor else draw.uniform(0.89, 0.95),
            capacity_kwh=draw.choice((40.0, 60.0, 75.0, 100.0)),
            session_start_minute=draw.randrange(_MINUTES_PER_DAY),
            session_minutes=draw.randrange(120, 480),
            soc=draw.uniform(15.0, 60.0),
        )

    def links(self) -> list[tuple[str, str]]:
        """(vehicle id, meter id) of every pair."""
        return [(pair.vehicle_id, pair.meter_id) for pair in self.pairs]

    def readings(
        self, index: int, at: datetime, interval: timedelta
    ) -> tuple[reading_pb2.Reading, reading_pb2.Reading]:
        """Pair `index`'s meter and vehicle readings at `at`, covering the `interval` before it."""
        pair = self.pairs[index]
        draw = self._random
        hours = interval.total_seconds() / 3600
        minute = at.hour * 60 + at.minute
        charging = (minute - pair.session_start_minute) % _MINUTES_PER_DAY < pair.session_minutes
        charging = charging and pair.soc < 100.0
        if charging:
            ac = pair.charger_kw * hours * draw.uniform(0.97, 1.03)
            dc = ac * pair.efficiency * draw.uniform(0.99, 1.01)
            pair.soc = min(100.0, pair.soc + dc / pair.capacity_kwh * 100)
            voltage = draw.gauss(226.0, 2.0)
            temperature = draw.gauss(34.0, 1.5)
        else:
            ac = 0.002 * hours * draw.uniform(0.5, 1.5)  # the charger's standby draw, about 2 W
            dc = 0.0
            pair.soc = max(5.0, pair.soc - 1.2 * hours * draw.random())
            voltage = draw.gauss(231.0, 2.0)
            temperature = draw.gauss(22.0, 3.0)
        return (
            meter(pair.meter_id, round(ac, 6), round(voltage, 1), at),
            vehicle(pair.vehicle_id, round(pair.soc, 2), round(dc, 6), round(temperature, 1), at),
        )
