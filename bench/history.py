"""History for the read benchmarks, built with SQL straight into the partitions.

A day of M meters and M vehicles reporting once a minute is generated into a
table of its own, in time order (as live ingest appends it), keyed and
indexed in one sort each, and attached as that day's partition (a CHECK of
its bounds spares ATTACH the scan); its rollups are added from it with the
service's own backfill statements. Meters and vehicles load side by side on
two connections. This is how a week of 10,000 devices (201.6 M readings) is
affordable; through the service it would take hours.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from energy_server.storage.partitions import gaps, partitions_of
from energy_server.storage.sql import partitions as partitions_sql
from energy_server.storage.sql import readings as readings_sql

DAY = timedelta(days=1)

_GENERATE: dict[str, LiteralString] = {
    "meter": """
INSERT INTO {day} (meter_id, ts, kwh_consumed_ac, voltage)
SELECT 'M-' || lpad(d::text, 5, '0'), t, 0.05 + (d % 7) * 0.01, 225 + (d % 11)
FROM generate_series({start}::timestamptz, {start}::timestamptz + interval '1 day' - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN generate_series(0, {devices} - 1) AS d
""",
    "vehicle": """
INSERT INTO {day} (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)
SELECT 'V-' || lpad(d::text, 5, '0'), t, 20 + (d % 60), (0.05 + (d % 7) * 0.01) * (0.75 + (d % 30) * 0.01),
       25 + (d % 15)
FROM generate_series({start}::timestamptz, {start}::timestamptz + interval '1 day' - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN generate_series(0, {devices} - 1) AS d
""",
}
_DEVICE = {"meter": "meter_id", "vehicle": "vehicle_id"}

CURRENT_AND_LINKS: tuple[LiteralString, ...] = (
    "INSERT INTO meter_current SELECT DISTINCT ON (meter_id) * FROM meter_readings"
    " WHERE ts >= %(newest_day)s ORDER BY meter_id, ts DESC"
    " ON CONFLICT (meter_id) DO UPDATE SET ts = EXCLUDED.ts, kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,"
    " voltage = EXCLUDED.voltage WHERE meter_current.ts < EXCLUDED.ts",
    "INSERT INTO vehicle_current SELECT DISTINCT ON (vehicle_id) * FROM vehicle_readings"
    " WHERE ts >= %(newest_day)s ORDER BY vehicle_id, ts DESC"
    " ON CONFLICT (vehicle_id) DO UPDATE SET ts = EXCLUDED.ts, soc = EXCLUDED.soc,"
    " kwh_delivered_dc = EXCLUDED.kwh_delivered_dc, battery_temp = EXCLUDED.battery_temp"
    " WHERE vehicle_current.ts < EXCLUDED.ts",
    "INSERT INTO vehicle_meter_map (vehicle_id, meter_id)"
    " SELECT 'V-' || lpad(d::text, 5, '0'), 'M-' || lpad(d::text, 5, '0')"
    " FROM generate_series(0, %(devices)s - 1) AS d ON CONFLICT DO NOTHING",
)


def partition_name(kind: str, day: datetime) -> str:
    """The name migration 0005's energy_create_partition() gives a day's partition."""
    return f"{kind}_readings_{day:%Y%m%d}"


async def _load_day(url: str, kind: str, day: datetime, devices: int) -> None:
    name = partition_name(kind, day)
    table, device = f"{kind}_readings", _DEVICE[kind]
    identifiers = {
        "day": sql.Identifier(name),
        "parent": sql.Identifier(table),
        "device": sql.Identifier(device),
    }
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await connection.execute(
            sql.SQL("CREATE TABLE {day} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                **identifiers
            )
        )
        await connection.execute(
            sql.SQL(_GENERATE[kind]).format(
                day=identifiers["day"], start=sql.Literal(day), devices=sql.Literal(devices)
            )
        )
        await connection.execute(
            sql.SQL("ALTER TABLE {day} ADD PRIMARY KEY ({device}, ts)").format(**identifiers)
        )
        await connection.execute(sql.SQL("CREATE INDEX ON {day} USING brin (ts)").format(**identifiers))
        bounds = {"lower": sql.Literal(day), "upper": sql.Literal(day + DAY)}
        await connection.execute(
            sql.SQL("ALTER TABLE {day} ADD CONSTRAINT bounds CHECK (ts >= {lower} AND ts < {upper})").format(
                **identifiers, **bounds
            )
        )
        await connection.execute(
            sql.SQL(
                "ALTER TABLE {parent} ATTACH PARTITION {day} FOR VALUES FROM ({lower}) TO ({upper})"
            ).format(**identifiers, **bounds)
        )
        await connection.execute(sql.SQL("ALTER TABLE {day} DROP CONSTRAINT bounds").format(**identifiers))
        for rollup in readings_sql.rollups_from_history(kind, name):
            await connection.execute(rollup)


async def _ensure_rollup_partitions(url: str, first_day: datetime, days: int) -> None:
    """The rollups' partitions for those days (made as maintenance would, by the migration's function)."""
    params: list[dict[str, Any]] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        for kind in ("meter", "vehicle"):
            for offset in range(days):
                day = first_day + offset * DAY
                params.append({"parent": f"{kind}_fleet_minutely", "lower": day, "upper": day + DAY})
        for kind in ("meter", "vehicle"):
            week = timedelta(days=7)
            epoch = datetime(1970, 1, 1, tzinfo=first_day.tzinfo)
            start = first_day - ((first_day - epoch) % week)
            while start < first_day + days * DAY:
                params.append({"parent": f"{kind}_hourly", "lower": start, "upper": start + week})
                start += week
        for values in params:
            existing = await partitions_of(connection, values["parent"])
            for lower, upper in gaps(existing, values["lower"], values["upper"]):
                await connection.execute(
                    partitions_sql.CREATE_PARTITION,
                    {"parent": values["parent"], "lower": lower, "upper": upper},
                )


async def load_days(url: str, first_day: datetime, days: int, devices: int) -> float:
    """Load `days` whole days from `first_day` (midnight UTC); returns the seconds it took."""
    started = time.perf_counter()
    await _ensure_rollup_partitions(url, first_day, days)
    for offset in range(days):
        day = first_day + offset * DAY
        print(f"  loading {day:%Y-%m-%d}: {2 * devices * 1440:,} readings ...", end=" ", flush=True)
        began = time.perf_counter()
        await asyncio.gather(*(_load_day(url, kind, day, devices) for kind in ("meter", "vehicle")))
        print(f"{time.perf_counter() - began:.0f} s", flush=True)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        newest_day = first_day + (days - 1) * DAY
        for statement in CURRENT_AND_LINKS:
            await connection.execute(statement, {"newest_day": newest_day, "devices": devices})
        print("  VACUUM ANALYZE ...", end=" ", flush=True)
        began = time.perf_counter()
        await connection.execute("VACUUM ANALYZE")
        print(f"{time.perf_counter() - began:.0f} s", flush=True)
    return time.perf_counter() - started
