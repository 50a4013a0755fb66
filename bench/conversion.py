"""How long migration 0005 takes to convert an unpartitioned database.

Builds the schema of migrations 0001-0004 on a fresh embedded PostgreSQL (or
DATABASE_URL), fills it with --days of --devices meters and vehicles
reporting once a minute plus their rollups, then applies 0005 and prints the
seconds it took and the rows per second it copied.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.sql import readings as readings_sql
from harness import database

FILL = (
    """INSERT INTO meter_readings
       SELECT 'M-' || lpad(d::text, 5, '0'), t, 0.05 + (d %% 7) * 0.01, 225 + (d %% 11)
       FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                            interval '1 minute') AS t
       CROSS JOIN generate_series(0, %(devices)s - 1) AS d""",
    """INSERT INTO vehicle_readings
       SELECT 'V-' || lpad(d::text, 5, '0'), t, 20 + (d %% 60), 0.05 + (d %% 7) * 0.01, 25 + (d %% 15)
       FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                            interval '1 minute') AS t
       CROSS JOIN generate_series(0, %(devices)s - 1) AS d""",
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--devices", type=int, default=2_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    old = Path(tempfile.mkdtemp(prefix="energy-0001-0004-"))
    for path in sorted(settings.migrations_dir.glob("000[1-4]_*.sql")):
        shutil.copy(path, old / path.name)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"start": end - timedelta(days=args.days), "end": end, "devices": args.devices}
    with database(settings, "energy-conversion-") as url:
        await apply_migrations(url, old)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            for statement in FILL:
                await connection.execute(statement.encode(), params)
            for rollup in (
                readings_sql.INSERT_METER_HOURLY_FROM_HISTORY,
                readings_sql.INSERT_METER_FLEET_FROM_HISTORY,
                readings_sql.INSERT_VEHICLE_HOURLY_FROM_HISTORY,
                readings_sql.INSERT_VEHICLE_FLEET_FROM_HISTORY,
            ):
                await connection.execute(rollup)
            await connection.execute(b"VACUUM ANALYZE")
            cursor = await connection.execute(
                b"SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings),"
                b" pg_database_size(current_database())"
            )
            row = await cursor.fetchone()
            assert row is not None
            readings, size = int(row[0]), int(row[1])
        started = time.perf_counter()
        applied = await apply_migrations(url, settings.migrations_dir)
        seconds = time.perf_counter() - started
    shutil.rmtree(old, ignore_errors=True)
    assert [m.version for m in applied] == [5]
    print(
        f"0005 converted {readings:,} readings (database {size / 2**30:.2f} GiB with rollups)"
        f" in {seconds:.1f} s: {readings / seconds:,.0f} readings/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
