"""Read-path latency at scale: analytics RPCs over a large history.

On a fresh embedded PostgreSQL (or DATABASE_URL), with the server started as
`make run` starts it:

1. ingest shape (a) (stream, 500 readings/message) into the empty database;
2. 1 day of M meters and M vehicles reporting once a minute (default 10,000
   each: 14.4 M rows per history table a day) built straight into the
   partitions (bench/history.py), and each RPC timed through gRPC over the
   24 h window of that day, from 1 caller and from 16, after a warm-up;
3. 6 more days before it (7 in all; --days), and the same reads again: the
   window did not change, so neither should the figures;
4. shape (a) again, into the database holding the week;
5. expiring the oldest day: a DELETE of its rows (rolled back) beside
   dropping its partitions.

Prints every figure and writes bench/results/analytics-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc import aio
from history import DAY, load_days
from psycopg import sql

from energy.v1 import analytics_pb2, analytics_pb2_grpc
from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.sql import DATA_TABLES
from energy_server.storage.sql import partitions as partitions_sql
from harness import Server, database, percentiles, running_server, write_report
from ingest import SCENARIOS, Offsets, measure_service

HERE = Path(__file__).resolve().parent


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


# Five 24 h windows at the newest day: its 24 whole hours (rollups only);
# the same day less 30 minutes at each end, whose partial hours hold readings
# outside the window ("raw edges"; for the anomaly ranking they fall on
# quarter-hour boundaries, so the hourly rows' quarter energies serve them);
# the same day from 00:01 to 23:59, whose edges are 14 minutes into a quarter
# and read raw (140,000 readings per kind at each edge for a fleet-wide
# call); and the "last 24 hours" asked at half past and at one minute past,
# when no reading is newer than the window's end, so the tail hour is whole
# in the window and its rollup rows serve it (the head: quarters, or 14
# minutes raw).
WINDOWS = {
    "whole hours": (timedelta(hours=24), timedelta(0)),
    "raw edges": (timedelta(hours=23, minutes=30), timedelta(minutes=30)),
    "edges in quarters": (timedelta(hours=23, minutes=59), timedelta(minutes=1)),
    "last 24 h": (timedelta(hours=23, minutes=30), timedelta(minutes=-30)),
    "last 24 h at :01": (timedelta(hours=23, minutes=59), timedelta(minutes=-1)),
}


async def measure(port: int, devices: int, end: datetime, calls: int) -> list[dict[str, Any]]:
    results = []
    for label, (start_before, end_before) in WINDOWS.items():
        window = analytics_pb2.TimeWindow()
        window.start_time.FromDatetime(end - start_before)
        window.end_time.FromDatetime(end - end_before)
        print(f"window: {label}", flush=True)
        results += [{**row, "window": label} for row in await _measure_window(port, devices, window, calls)]
    return results


async def _measure_window(
    port: int, devices: int, window: analytics_pb2.TimeWindow, calls: int, *, parity: bool = False
) -> list[dict[str, Any]]:
    """`parity`: the devices bench/load.py writes, meters odd-numbered and vehicles even."""
    pick = random.Random(7)

    def device(prefix: str) -> str:
        number = pick.randrange(devices)
        if parity:
            number = number | 1 if prefix == "M" else number & ~1
        return f"{prefix}-{number:05d}"

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
                q = percentiles(latencies)
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


INGEST_RUNS = 3


def _ingest_a(server: Server, url: str, start: datetime, duration: float) -> dict[str, Any]:
    """Shape (a) of `make bench` (stream, 500 readings/message) writing from `start` on."""
    scenario = next(s for s in SCENARIOS if s.key == "a")
    # A million reading numbers per run: 100 s of timestamps at 10,000 devices,
    # so that three runs stay within the server's clock skew allowance.
    return measure_service(scenario, server, url, duration, INGEST_RUNS, Offsets(1_000_000), start)


async def _expire_one_day(url: str, day: datetime) -> dict[str, float]:
    """Seconds to remove one day of history: DELETE of its rows (rolled back) vs dropping its partitions."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        started = time.perf_counter()
        rows = 0
        for table in ("meter_readings", "vehicle_readings", "meter_fleet_minutely", "vehicle_fleet_minutely"):
            column = "minute" if "fleet" in table else "ts"
            cursor = await connection.execute(
                sql.SQL("DELETE FROM {} WHERE {} >= %(lower)s AND {} < %(upper)s").format(
                    sql.Identifier(table), sql.Identifier(column), sql.Identifier(column)
                ),
                {"lower": day, "upper": day + DAY},
            )
            rows += cursor.rowcount
        delete_s = time.perf_counter() - started
        await connection.rollback()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        started = time.perf_counter()
        for table in ("meter_readings", "vehicle_readings", "meter_fleet_minutely", "vehicle_fleet_minutely"):
            name = f"{table}_{day:%Y%m%d}"
            await connection.execute(partitions_sql.detach_partition(table, name))
            await connection.execute(partitions_sql.drop_detached_partition(name))
        drop_s = time.perf_counter() - started
    return {"rows": rows, "delete_s": delete_s, "drop_partitions_s": drop_s}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7, help="days of history at the second measurement")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=400, help="calls per RPC and concurrency")
    parser.add_argument("--ingest-seconds", type=float, default=10.0, help="seconds per run of shape (a)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke)")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.calls, args.days, args.ingest_seconds = 50, 40, 2, 1.0
    settings = Settings.from_env()
    # Whole days: the 24 h window is exactly the newest day's partition.
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stages: list[dict[str, Any]] = []
    with database(settings, "energy-analytics-") as url:
        await apply_migrations(url, settings.migrations_dir)
        with running_server(url) as server:
            print("ingest (a) into the empty database:", flush=True)
            ingest_empty = _ingest_a(server, url, end, args.ingest_seconds)
            print(f"  {ingest_empty['readings_per_s']:,.0f} readings/s (runs {ingest_empty['runs']})")
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
                await connection.execute(
                    sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, DATA_TABLES)))
                )
            loaded_days = 0
            for days in (1, args.days):
                print(
                    f"history: {days} day(s) of {args.devices:,} meters and {args.devices:,} vehicles",
                    flush=True,
                )
                load_s = await load_days(url, end - days * DAY, days - loaded_days, args.devices)
                loaded_days = days
                results = await measure(server.port, args.devices, end, args.calls)
                stages.append(
                    {
                        "days": days,
                        "rows_per_table": days * 1440 * args.devices,
                        "load_s": load_s,
                        "results": results,
                    }
                )
            print(f"ingest (a) into the database holding {args.days} days:", flush=True)
            ingest_full = _ingest_a(server, url, end, args.ingest_seconds)
            print(f"  {ingest_full['readings_per_s']:,.0f} readings/s (runs {ingest_full['runs']})")
        print("expiring the oldest day:", flush=True)
        expiry = await _expire_one_day(url, end - args.days * DAY)
        print(
            f"  DELETE of its {expiry['rows']:,} rows {expiry['delete_s']:.1f} s (rolled back),"
            f" dropping its partitions {expiry['drop_partitions_s']:.3f} s"
        )
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "history": {
            "days": args.days,
            "meters": args.devices,
            "vehicles": args.devices,
            "rows_per_table": args.days * 1440 * args.devices,
        },
        "database": "DATABASE_URL" if settings.database_url else "embedded PostgreSQL 16",
        "window": "24 h ending at the newest reading (the newest day's partition)",
        "stages": stages,
        # The reads at the most history, as the report's targets read them.
        "results": stages[-1]["results"],
        "ingest_a": {
            "empty": ingest_empty,
            f"{args.days}_days": ingest_full,
            "ratio": ingest_full["readings_per_s"] / ingest_empty["readings_per_s"],
        },
        "expire_one_day": expiry,
    }
    write_report("analytics", args.quick, report)


if __name__ == "__main__":
    asyncio.run(main())
