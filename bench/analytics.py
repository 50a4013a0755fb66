"""Read-path latency at scale: analytics RPCs over a large history.

Loads N days of M meters and M vehicles reporting once a minute (default 1 day
of 10,000 each: 14.4 M rows per history table) straight into a fresh embedded
PostgreSQL (or DATABASE_URL) in time order, as live ingest appends it, builds
the rollups with the service's own backfill, starts the server as `make run`
does, and times each RPC through gRPC from 1 caller and from 16 concurrent
callers, after a warm-up of 16 concurrent callers. Prints p50/p99 and writes
bench/results/analytics-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import psycopg_pool
from grpc import aio

from energy.v1 import analytics_pb2, analytics_pb2_grpc
from energy_server.domain import DeviceKind
from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.repository import ReadingRepository
from harness import database, running_server

HERE = Path(__file__).resolve().parent

LOAD_METERS = """
INSERT INTO meter_readings (meter_id, ts, kwh_consumed_ac, voltage)
SELECT 'M-' || lpad(d::text, 5, '0'), t, 0.05 + (d %% 7) * 0.01, 225 + (d %% 11)
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN generate_series(0, %(devices)s - 1) AS d
"""
LOAD_VEHICLES = """
INSERT INTO vehicle_readings (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)
SELECT 'V-' || lpad(d::text, 5, '0'), t, 20 + (d %% 60), (0.05 + (d %% 7) * 0.01) * (0.75 + (d %% 30) * 0.01),
       25 + (d %% 15)
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN generate_series(0, %(devices)s - 1) AS d
"""
LOAD_CURRENT = (
    "INSERT INTO meter_current SELECT DISTINCT ON (meter_id) * FROM meter_readings"
    " ORDER BY meter_id, ts DESC",
    "INSERT INTO vehicle_current SELECT DISTINCT ON (vehicle_id) * FROM vehicle_readings"
    " ORDER BY vehicle_id, ts DESC",
    "INSERT INTO vehicle_meter_map (vehicle_id, meter_id)"
    " SELECT 'V-' || lpad(d::text, 5, '0'), 'M-' || lpad(d::text, 5, '0')"
    " FROM generate_series(0, %(devices)s - 1) AS d",
)


def _step(label: str) -> float:
    print(f"{label} ...", end=" ", flush=True)
    return time.perf_counter()


def _done(started: float) -> None:
    print(f"{time.perf_counter() - started:.1f} s", flush=True)


# Bulk loading in time order (as live ingest appends) into a B-tree keyed by
# device first is slow row by row, so the keys are built after the load, in
# one sort each, exactly as migrations 0001 and 0002 define them.
DROP_HISTORY_INDEXES = (
    "ALTER TABLE meter_readings DROP CONSTRAINT meter_readings_pkey",
    "ALTER TABLE vehicle_readings DROP CONSTRAINT vehicle_readings_pkey",
    "DROP INDEX meter_readings_ts_brin",
    "DROP INDEX vehicle_readings_ts_brin",
)
CREATE_HISTORY_INDEXES = (
    "ALTER TABLE meter_readings ADD PRIMARY KEY (meter_id, ts)",
    "ALTER TABLE vehicle_readings ADD PRIMARY KEY (vehicle_id, ts)",
    "CREATE INDEX meter_readings_ts_brin ON meter_readings USING brin (ts)",
    "CREATE INDEX vehicle_readings_ts_brin ON vehicle_readings USING brin (ts)",
)


async def load(url: str, days: int, devices: int, end: datetime) -> None:
    start = end - timedelta(days=days)
    params = {"start": start, "end": end, "devices": devices}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '1GB'")
        for statement in DROP_HISTORY_INDEXES:
            await connection.execute(statement)
        rows = days * 1440 * devices
        t = _step(f"loading {rows:,} meter readings")
        await connection.execute(LOAD_METERS, params)
        _done(t)
        t = _step(f"loading {rows:,} vehicle readings")
        await connection.execute(LOAD_VEHICLES, params)
        _done(t)
        t = _step("building the history keys and indexes")
        for statement in CREATE_HISTORY_INDEXES:
            await connection.execute(statement)
        _done(t)
        t = _step("current state and links")
        for statement in LOAD_CURRENT:
            await connection.execute(statement, params)
        _done(t)
    async with psycopg_pool.AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
        for kind in DeviceKind:
            t = _step(f"backfilling {kind.value} rollups")
            await ReadingRepository(pool).rebuild_rollups(kind)
            _done(t)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        t = _step("VACUUM ANALYZE")
        await connection.execute("VACUUM ANALYZE")
        _done(t)


async def time_calls(
    call: Callable[[int], Awaitable[Any]], total: int, concurrency: int
) -> tuple[list[float], dict[str, int]]:
    """Latencies (ms) of the calls that succeeded, and the failed ones counted by status code."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            try:
                await call(n)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] = errors.get(error.code().name, 0) + 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


async def measure(port: int, devices: int, end: datetime, calls: int) -> list[dict[str, Any]]:
    window = analytics_pb2.TimeWindow()
    window.start_time.FromDatetime(end - timedelta(hours=24))
    window.end_time.FromDatetime(end)
    pick = random.Random(7)

    def device(prefix: str) -> str:
        return f"{prefix}-{pick.randrange(devices):05d}"

    results = []
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        rpcs: dict[str, Callable[[int], Awaitable[Any]]] = {
            "GetVehiclePerformance": lambda _: stub.GetVehiclePerformance(
                analytics_pb2.GetVehiclePerformanceRequest(vehicle_id=device("V"), window=window)
            ),
            "GetMeterStats": lambda _: stub.GetMeterStats(
                analytics_pb2.GetMeterStatsRequest(meter_id=device("M"), window=window)
            ),
            "GetVehicleFleetSummary": lambda _: stub.GetVehicleFleetSummary(
                analytics_pb2.GetVehicleFleetSummaryRequest(window=window)
            ),
            "GetTimeSeries (1 h buckets)": lambda _: stub.GetTimeSeries(
                analytics_pb2.GetTimeSeriesRequest(
                    kind=analytics_pb2.DEVICE_KIND_METER,
                    device_id=device("M"),
                    window=window,
                    bucket=analytics_pb2.TIME_BUCKET_ONE_HOUR,
                )
            ),
            "ListEfficiencyAnomalies": lambda _: stub.ListEfficiencyAnomalies(
                analytics_pb2.ListEfficiencyAnomaliesRequest(window=window, page_size=50)
            ),
        }
        for name, call in rpcs.items():
            fleet_wide = name in ("GetVehicleFleetSummary", "ListEfficiencyAnomalies")
            # Steady state, as a serving instance is in: every pooled connection has
            # run the statement (a fresh connection plans against cold catalog caches).
            await time_calls(call, 16 if fleet_wide else 64, 16)
            for concurrency in (1, 16):
                count = calls // 10 if fleet_wide else calls
                latencies, errors = await time_calls(call, max(count, 4), concurrency)
                q: list[float] = (
                    statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [math.nan] * 99
                )
                row = {
                    "rpc": name,
                    "callers": concurrency,
                    "calls": len(latencies),
                    "p50_ms": q[49],
                    "p99_ms": q[98],
                    "errors": errors,
                }
                results.append(row)
                print(
                    f"{name:<30} callers {concurrency:>2}  p50 {q[49]:8.2f} ms  p99 {q[98]:8.2f} ms"
                    + (f"  errors {errors}" if errors else ""),
                    flush=True,
                )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=400, help="calls per RPC and concurrency")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke)")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.calls = 50, 40
    settings = Settings.from_env()
    with database(settings, "energy-analytics-") as url:
        await apply_migrations(url, settings.migrations_dir)
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        await load(url, args.days, args.devices, end)
        with running_server(url) as server:
            results = await measure(server.port, args.devices, end, args.calls)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "history": {
            "days": args.days,
            "meters": args.devices,
            "vehicles": args.devices,
            "rows_per_table": args.days * 1440 * args.devices,
        },
        "database": "DATABASE_URL" if settings.database_url else "embedded PostgreSQL 16",
        "window": "24 h ending at the newest reading",
        "results": results,
    }
    out = HERE / "results" / ("analytics-quick.json" if args.quick else "analytics-latest.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
