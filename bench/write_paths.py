"""Candidate write paths, measured straight against PostgreSQL (no gRPC).

The same readings (half meters, half vehicles, 10,000 devices, every reading
new) are stored in batches by W concurrent writer connections, each batch in
one transaction with the full semantics (history append with duplicates
absorbed, conditional current upsert, per-reading outcomes):

* unnest: the service's path: binary typed arrays, one statement per table
  group, pipelined (ReadingRepository.store_readings).
* copy: binary COPY into a temporary staging table, then the same statement
  reading the staging table instead of unnest.
* no-rollups: the service's path without its hourly-rollup upsert, to show
  what keeping the rollups costs ingest.
* history-copy: binary COPY of the same readings into the history tables
  alone (no duplicate check, no current, no rollups): what PostgreSQL's
  fastest path costs, the anchor C of `make bench`.

Usage: python bench/write_paths.py [--readings N] [--batch 500] [--writers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

import energy_server  # noqa: F401  (switches off gRPC fork handlers first)
from energy_server.domain import MeterValues, ValidReading, VehicleValues
from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.partitions import EPOCH, PartitionGuard, PartitionLayout
from energy_server.storage.repository import ReadingRepository, _meter_columns, _vehicle_columns
from energy_server.storage.sql import readings as production
from energy_server.storage.sql import rendered
from harness import database

EPOCH_2026_US = 1_767_225_600 * 1_000_000


def make_readings(count: int, devices: int, offset: int) -> list[ValidReading]:
    readings: list[ValidReading] = []
    for n in range(offset, offset + count):
        ts_us = EPOCH_2026_US + (n // devices) * 60_000_000
        if n % 2:
            readings.append(MeterValues(f"M-{n % devices:05d}", ts_us, 0.25, 230.0))
        else:
            readings.append(VehicleValues(f"V-{n % devices:05d}", ts_us, 50.0, 0.21, 31.0))
    return readings


STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_meter (
    position int4, meter_id text, ts_us int8, kwh_consumed_ac float8, voltage float8
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_vehicle (
    position int4, vehicle_id text, ts_us int8, soc float8, kwh_delivered_dc float8, battery_temp float8
) ON COMMIT DELETE ROWS;
"""
COPY_METER = "COPY staging_meter FROM STDIN (FORMAT BINARY)"
COPY_VEHICLE = "COPY staging_vehicle FROM STDIN (FORMAT BINARY)"


# Rendered once, as the service's own statements are.
WITHOUT_ROLLUPS = {
    "meter": rendered(production.store_batch("meter", "meter_id", production.METER_FIELDS, rollups=False)),
    "vehicle": rendered(
        production.store_batch("vehicle", "vehicle_id", production.VEHICLE_FIELDS, rollups=False)
    ),
}
FROM_STAGING_METER = rendered(
    production.store_batch(
        "meter", "meter_id", production.METER_FIELDS, rows_from=sql.SQL("staging_meter AS b")
    )
)
FROM_STAGING_VEHICLE = rendered(
    production.store_batch(
        "vehicle", "vehicle_id", production.VEHICLE_FIELDS, rows_from=sql.SQL("staging_vehicle AS b")
    )
)


async def store_by_copy(pool: psycopg_pool.AsyncConnectionPool[Any], readings: list[ValidReading]) -> None:
    meters = [(p, r) for p, r in enumerate(readings) if isinstance(r, MeterValues)]
    vehicles = [(p, r) for p, r in enumerate(readings) if isinstance(r, VehicleValues)]
    async with pool.connection() as connection:
        await connection.execute(STAGING.encode())
        cursor = connection.cursor()
        async with cursor.copy(COPY_METER) as copy:
            copy.set_types(["int4", "text", "int8", "float8", "float8"])
            for p, m in meters:
                await copy.write_row((p, m.meter_id, m.ts_us, m.kwh_consumed_ac, m.voltage))
        async with cursor.copy(COPY_VEHICLE) as copy:
            copy.set_types(["int4", "text", "int8", "float8", "float8", "float8"])
            for p, v in vehicles:
                await copy.write_row((p, v.vehicle_id, v.ts_us, v.soc, v.kwh_delivered_dc, v.battery_temp))
        # Like the service's statement, never prepared: generic plans misjudge batch sizes.
        await (await connection.execute(FROM_STAGING_METER, {"shard": 0}, prepare=False)).fetchall()
        await (await connection.execute(FROM_STAGING_VEHICLE, {"shard": 0}, prepare=False)).fetchall()


_COPY_HISTORY = {
    "meter": "COPY meter_readings (meter_id, ts, kwh_consumed_ac, voltage) FROM STDIN (FORMAT BINARY)",
    "vehicle": "COPY vehicle_readings (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)"
    " FROM STDIN (FORMAT BINARY)",
}


async def copy_into_history(
    pool: psycopg_pool.AsyncConnectionPool[Any], readings: list[ValidReading]
) -> None:
    """One transaction per batch, as the service's: binary COPY into history, nothing else."""
    async with pool.connection() as connection:
        cursor = connection.cursor()
        async with cursor.copy(_COPY_HISTORY["meter"]) as copy:
            copy.set_types(["text", "timestamptz", "float8", "float8"])
            for r in readings:
                if isinstance(r, MeterValues):
                    await copy.write_row((r.meter_id, _datetime(r.ts_us), r.kwh_consumed_ac, r.voltage))
        async with cursor.copy(_COPY_HISTORY["vehicle"]) as copy:
            copy.set_types(["text", "timestamptz", "float8", "float8", "float8"])
            for r in readings:
                if isinstance(r, VehicleValues):
                    row = (r.vehicle_id, _datetime(r.ts_us), r.soc, r.kwh_delivered_dc, r.battery_temp)
                    await copy.write_row(row)


def _datetime(ts_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_us)


async def store_without_rollups(
    pool: psycopg_pool.AsyncConnectionPool[Any], readings: list[ValidReading]
) -> None:
    meters = [(p, r) for p, r in enumerate(readings) if isinstance(r, MeterValues)]
    vehicles = [(p, r) for p, r in enumerate(readings) if isinstance(r, VehicleValues)]
    async with pool.connection() as connection, connection.pipeline():
        if meters:
            await connection.execute(
                WITHOUT_ROLLUPS["meter"], _meter_columns(meters), binary=True, prepare=False
            )
        if vehicles:
            await connection.execute(
                WITHOUT_ROLLUPS["vehicle"], _vehicle_columns(vehicles), binary=True, prepare=False
            )


async def measure(name: str, url: str, readings: list[ValidReading], batch: int, writers: int) -> float:
    async with psycopg_pool.AsyncConnectionPool(url, min_size=writers, max_size=writers, open=False) as pool:
        await pool.wait()
        repository = ReadingRepository(pool)
        # The partitions first, outside the clock: COPY does not make them on demand.
        async with pool.connection() as connection:
            await PartitionGuard(PartitionLayout.from_settings(Settings())).prepare(
                connection, [r.ts_us for r in readings]
            )
        batches = [readings[i : i + batch] for i in range(0, len(readings), batch)]
        queue: asyncio.Queue[list[ValidReading]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)

        async def writer(shard: int) -> None:
            # Like the service's lanes, each writer adds to fleet rollup rows of its own.
            while not queue.empty():
                chunk = queue.get_nowait()
                if name == "unnest":
                    await repository.store_readings(chunk, shard)
                elif name == "no-rollups":
                    await store_without_rollups(pool, chunk)
                elif name == "history-copy":
                    await copy_into_history(pool, chunk)
                else:
                    await store_by_copy(pool, chunk)

        started = time.perf_counter()
        await asyncio.gather(*(writer(shard) for shard in range(writers)))
        elapsed = time.perf_counter() - started
    rate = len(readings) / elapsed
    shape = f"{name:<8} {len(readings):>9,} readings  batch {batch:>5}  writers {writers}"
    print(f"{shape}  {rate:>10,.0f} readings/s")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument(
        "--paths", default="unnest,copy,no-rollups,history-copy", help="which candidates, in order"
    )
    args = parser.parse_args()
    settings = Settings.from_env()
    with database(settings, "energy-paths-") as url:
        await apply_migrations(url, settings.migrations_dir)
        offset = 0
        for _round in range(2):
            for name in args.paths.split(","):
                readings = make_readings(args.readings, args.devices, offset)
                offset += args.readings
                await measure(name, url, readings, args.batch, args.writers)
        async with await psycopg.AsyncConnection.connect(url) as connection:
            cursor = await connection.execute(
                "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
            )
            print("rows stored:", (await cursor.fetchone() or [0])[0], "expected:", offset)


if __name__ == "__main__":
    asyncio.run(main())
