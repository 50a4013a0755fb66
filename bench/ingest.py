"""`make bench`: ingest throughput of the service as `make run` starts it.

Starts PostgreSQL (DATABASE_URL, else a fresh embedded one with
synchronous_commit on, its default), starts the server in its own process,
and drives each scenario from a separate load process (bench/load.py).
Prints a table and writes it as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from energy_server.settings import Settings
from harness import database, running_server

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    name: str
    shape: str
    per_message: int
    concurrency: int
    window: int
    expected_per_s: int  # sizes the prepared messages; a run that exhausts them says so


SCENARIOS = [
    Scenario("stream, 500 readings/message", "stream", 500, 4, 4, 120_000),
    Scenario("stream, 1 reading/message", "stream", 1, 16, 64, 15_000),
    Scenario("unary, 1 reading/call, 64 concurrent", "unary", 1, 64, 1, 8_000),
    Scenario("unary, 500 readings/call", "unary", 500, 8, 1, 120_000),
]


def _run(scenario: Scenario, port: int, duration: float, offset: int) -> dict[str, float]:
    budget = int(scenario.expected_per_s * duration * 1.5 / scenario.concurrency)
    command = [
        sys.executable,
        str(HERE / "load.py"),
        "--target",
        f"127.0.0.1:{port}",
        "--shape",
        scenario.shape,
        "--per-message",
        str(scenario.per_message),
        "--concurrency",
        str(scenario.concurrency),
        "--window",
        str(scenario.window),
        "--duration",
        str(duration),
        "--budget",
        str(max(budget, 1000)),
        "--offset",
        str(offset),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{scenario.name}: {result.stderr.strip()}")
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def _history_rows(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs = 1.0, 1

    settings = Settings.from_env()
    rows: list[dict[str, object]] = []
    offset = 0
    with database(settings, "energy-bench-") as database_url, running_server(database_url) as port:
        for scenario in SCENARIOS:
            runs = []
            for _ in range(args.runs):
                before = _history_rows(database_url)
                figures = _run(scenario, port, args.duration, offset)
                offset += 10_000_000
                stored = _history_rows(database_url) - before
                if stored < figures["readings"]:
                    raise SystemExit(f"{scenario.name}: {figures['readings']} acked but {stored} stored")
                runs.append(figures)
            runs.sort(key=lambda f: f["readings_per_s"])
            median = runs[len(runs) // 2]
            rows.append({"scenario": scenario.name, **median, "runs": [r["readings_per_s"] for r in runs]})
            print(
                f"{scenario.name:<40} {median['readings_per_s']:>10,.0f} readings/s   "
                f"ack p50 {median['ack_p50_ms']:7.2f} ms   p99 {median['ack_p99_ms']:7.2f} ms"
                + ("   (prepared messages ran out: a lower bound)" if median["exhausted_budget"] else ""),
                flush=True,
            )

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "database": "DATABASE_URL"
        if settings.database_url
        else "embedded PostgreSQL 16, synchronous_commit=on",
        "settings": {
            "writers": settings.writers,
            "batch_max_readings": settings.batch_max_readings,
            "batch_linger_ms": settings.batch_linger_ms,
            "pool_max_size": settings.pool_max_size,
        },
        "duration_s": args.duration,
        "runs": args.runs,
        "results": rows,
    }
    name = "ingest-quick.json" if args.quick else "ingest-latest.json"
    (results / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {results / name}")


if __name__ == "__main__":
    main()
