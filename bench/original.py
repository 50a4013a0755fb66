"""Anchor S: the original design's write path, straight against PostgreSQL.

One transaction per reading (INSERT into history, then the conditional
UPSERT of current), from 64 concurrent requests through a pool of 20
connections (the original's `connection_limit=20`), no gRPC. The same
schema and readings as the service's benchmark; the original kept no
rollups, so neither does this.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import psycopg_pool

from energy_server.domain import MeterValues, ValidReading
from write_paths import make_readings

INSERT_METER: Final = (
    "INSERT INTO meter_readings (meter_id, ts, kwh_consumed_ac, voltage) "
    "VALUES (%s, to_timestamp(%s::double precision / 1e6), %s, %s) ON CONFLICT DO NOTHING"
)
UPSERT_METER: Final = (
    "INSERT INTO meter_current (meter_id, ts, kwh_consumed_ac, voltage) "
    "VALUES (%s, to_timestamp(%s::double precision / 1e6), %s, %s) "
    "ON CONFLICT (meter_id) DO UPDATE SET ts = EXCLUDED.ts, kwh_consumed_ac = EXCLUDED.kwh_consumed_ac, "
    "voltage = EXCLUDED.voltage WHERE meter_current.ts < EXCLUDED.ts"
)
INSERT_VEHICLE: Final = (
    "INSERT INTO vehicle_readings (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp) "
    "VALUES (%s, to_timestamp(%s::double precision / 1e6), %s, %s, %s) ON CONFLICT DO NOTHING"
)
UPSERT_VEHICLE: Final = (
    "INSERT INTO vehicle_current (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp) "
    "VALUES (%s, to_timestamp(%s::double precision / 1e6), %s, %s, %s) "
    "ON CONFLICT (vehicle_id) DO UPDATE SET ts = EXCLUDED.ts, soc = EXCLUDED.soc, "
    "kwh_delivered_dc = EXCLUDED.kwh_delivered_dc, battery_temp = EXCLUDED.battery_temp "
    "WHERE vehicle_current.ts < EXCLUDED.ts"
)


async def _store_one(pool: psycopg_pool.AsyncConnectionPool[Any], reading: ValidReading) -> None:
    async with pool.connection() as connection, connection.transaction():
        if isinstance(reading, MeterValues):
            values: tuple[Any, ...] = (
                reading.meter_id,
                reading.ts_us,
                reading.kwh_consumed_ac,
                reading.voltage,
            )
            await connection.execute(INSERT_METER, values)
            await connection.execute(UPSERT_METER, values)
        else:
            values = (
                reading.vehicle_id,
                reading.ts_us,
                reading.soc,
                reading.kwh_delivered_dc,
                reading.battery_temp,
            )
            await connection.execute(INSERT_VEHICLE, values)
            await connection.execute(UPSERT_VEHICLE, values)


async def measure_original(
    url: str, seconds: float, offset: int, concurrency: int = 64, pool_size: int = 20
) -> float:
    """Readings/s of one transaction per reading, `concurrency` requests at a time, for `seconds`."""
    readings = make_readings(int(12_000 * seconds), 10_000, offset)
    async with psycopg_pool.AsyncConnectionPool(
        url, min_size=pool_size, max_size=pool_size, open=False
    ) as pool:
        await pool.wait()
        position = 0
        stored = 0
        deadline = time.perf_counter() + seconds

        async def request_loop() -> None:
            nonlocal position, stored
            while time.perf_counter() < deadline and position < len(readings):
                reading = readings[position]
                position += 1
                await _store_one(pool, reading)
                stored += 1

        started = time.perf_counter()
        await asyncio.gather(*(request_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return stored / elapsed
