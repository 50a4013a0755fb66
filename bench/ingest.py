"""`make bench`, ingest half: the service against its anchors, on the same machine, data and durability.

Starts PostgreSQL (DATABASE_URL, else a fresh embedded one; synchronous_commit
on, its default) and measures, each as the median of --runs runs:

* L, the direct-SQL limit: the service's own batched statement (binary typed
  arrays, set-based conditional upsert), batches of 500, as many writer
  connections as the service has, no gRPC (bench/write_paths.py);
* S, the original's write path: one transaction per reading, 64 concurrent
  requests through a pool of 20 (bench/original.py);
* T, the transport ceiling: the same load client against a server with the
  same proto whose handlers store nothing (bench/noop_server.py), for
  1 reading per streamed message and for unary calls of 1 reading;
* the service as `make run` starts it, from a separate load process
  (bench/load.py): (a) streaming 500 readings/message, (b) streaming 1,
  (c) unary 1 reading/call from 64 callers, (d) unary 500/call, and a sweep
  of readings per message for one streaming shape, with the server's and
  PostgreSQL's CPU seconds per 1,000 readings and the server's peak RSS.

Prints a table with the ratios, writes bench/results/ingest-latest.json and
a chart of readings/s against readings per message (ingest-sweep.png).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from load import START as LOAD_START

from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from harness import RESULTS, Server, cpu_seconds, database, postgres_cpu_seconds, running_server
from original import measure_original
from write_paths import make_readings, measure

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    shape: str
    per_message: int
    concurrency: int
    window: int
    expected_per_s: int  # sizes the prepared messages; a run that exhausts them says so


SCENARIOS = [
    Scenario("a", "stream, 500 readings/message", "stream", 500, 4, 4, 70_000),
    Scenario("b", "stream, 1 reading/message", "stream", 1, 16, 64, 15_000),
    Scenario("c", "unary, 1 reading/call, 64 concurrent", "unary", 1, 64, 1, 8_000),
    Scenario("d", "unary, 500 readings/call", "unary", 500, 8, 1, 70_000),
]
# One streaming shape, readings per message varied: 8 streams, 12 messages in flight
# each, so that even at 1000 readings/message the readings in flight (96,000) stay
# within the server's ENERGY_MAX_PENDING_READINGS (100,000).
SWEEP = [
    Scenario(f"sweep-{n}", f"stream, {n} readings/message (sweep)", "stream", n, 8, 12, rate)
    for n, rate in ((1, 15_000), (10, 40_000), (100, 70_000), (500, 70_000), (1000, 70_000))
]
# (b) and (c) once more against ENERGY_PROCESSES server processes sharing the port.
PROCESSES = 2
MULTI_PROCESS = [
    replace(s, key=f"{s.key}{PROCESSES}", name=f"{s.name}, {PROCESSES} server processes")
    for s in SCENARIOS[1:3]
]
LOAD_CONNECTIONS = 2
# The targets of the 2-core machine (issue 16 raised (b) to 0.6 x T and added
# (c) >= 1.5 x S); bench/report.py gives each its verdict.
ORIGINAL_PER_S = 750  # the original design here: 1 reading per HTTP request, 64 connections
RATIO_TARGETS = {"(a)/L": 0.6, "(b)/T stream": 0.6, "(c)/T unary": 0.6, "(c)/S": 1.5}
RATE_TARGETS = {"a": 75_000, "c": 5 * ORIGINAL_PER_S}


def _load(
    scenario: Scenario, port: int, duration: float, offset: int, start: datetime | None = None
) -> dict[str, Any]:
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
        # Two connections, whatever the server: processes sharing a port are
        # given connections, not calls, so one connection would reach one process.
        "--connections",
        str(LOAD_CONNECTIONS),
        *(["--start", start.isoformat()] if start else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{scenario.name}: {result.stderr.strip()}")
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _history_rows(database_url: str, since: datetime) -> int:
    """History rows from `since` on: the loads write there, and the count prunes to it."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM meter_readings WHERE ts >= %(since)s)"
            " + (SELECT count(*) FROM vehicle_readings WHERE ts >= %(since)s)",
            {"since": since},
        ).fetchone()
    return int(row[0]) if row else 0


class Offsets:
    """Reading numbers never used twice, so every run's readings are new rows."""

    def __init__(self, step: int = 20_000_000) -> None:
        self._step = step
        self._next = 0

    def take(self) -> int:
        self._next += self._step
        return self._next


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["readings_per_s"])
    middle = dict(ordered[len(ordered) // 2])
    middle["runs"] = [round(run["readings_per_s"]) for run in runs]
    return middle


def measure_service(
    scenario: Scenario,
    server: Server,
    url: str,
    duration: float,
    runs: int,
    offsets: Offsets,
    start: datetime | None = None,
) -> dict[str, Any]:
    measured = []
    for _ in range(runs):
        since = start or LOAD_START
        before_rows = _history_rows(url, since)
        server_cpu, pg_cpu = cpu_seconds(server.pid), postgres_cpu_seconds()
        figures = _load(scenario, server.port, duration, offsets.take(), start)
        server_cpu, pg_cpu = cpu_seconds(server.pid) - server_cpu, postgres_cpu_seconds() - pg_cpu
        stored = _history_rows(url, since) - before_rows
        if stored < figures["readings"]:
            raise SystemExit(f"{scenario.name}: {figures['readings']} acknowledged but {stored} stored")
        thousands = max(figures["readings"], 1) / 1000
        figures["server_cpu_s_per_1000"] = server_cpu / thousands
        figures["postgres_cpu_s_per_1000"] = pg_cpu / thousands
        measured.append(figures)
    return {"key": scenario.key, "scenario": scenario.name, **_median_run(measured)}


@contextlib.contextmanager
def noop_server() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "noop_server.py")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line.startswith("port "):
            raise SystemExit("the no-op server did not start")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=30)


def _median(label: str, measure_once: Callable[[], float], runs: int) -> dict[str, Any]:
    rates = [measure_once() for _ in range(runs)]
    return {"anchor": label, "readings_per_s": statistics.median(rates), "runs": [round(r) for r in rates]}


def measure_anchors(
    url: str, settings: Settings, duration: float, runs: int, offsets: Offsets, quick: bool
) -> dict[str, Any]:
    count = 20_000 if quick else 300_000

    def limit() -> float:
        return asyncio.run(
            measure("unnest", url, make_readings(count, 10_000, offsets.take()), 500, settings.writers)
        )

    def history_copy() -> float:
        return asyncio.run(
            measure("history-copy", url, make_readings(count, 10_000, offsets.take()), 500, settings.writers)
        )

    def original() -> float:
        return asyncio.run(measure_original(url, duration, offsets.take()))

    anchors = {
        "L": _median(f"L: direct SQL, batches of 500, {settings.writers} writers", limit, runs),
        "S": _median("S: original path, 1 transaction/reading, 64 concurrent, pool 20", original, runs),
        "C": _median(
            f"C: binary COPY into history alone, batches of 500, {settings.writers} writers",
            history_copy,
            runs,
        ),
    }
    with noop_server() as port:
        for key, scenario in (("T stream", SCENARIOS[1]), ("T unary", SCENARIOS[2])):
            measured = [_load(scenario, port, duration, offsets.take()) for _ in range(runs)]
            anchors[key] = {"anchor": f"T: no-op server, {scenario.name}", **_median_run(measured)}
    return anchors


def _chart(sweep: list[dict[str, Any]], anchors: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["per_message"] for row in sweep]
    rates = [row["readings_per_s"] for row in sweep]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    axes.plot(sizes, rates, marker="o", label="service, 8 streams x 12 messages in flight")
    for key, style, label in (
        ("C", ":", "C: binary COPY into history alone"),
        ("L", "--", "L: direct SQL, batches of 500"),
        ("T stream", "-.", "T: no-op server, 1 reading/message"),
    ):
        if key in anchors:
            axes.axhline(anchors[key]["readings_per_s"], linestyle=style, color="grey", label=label)
    axes.set_xscale("log")
    axes.set_xlabel("readings per message")
    axes.set_ylabel("readings/s acknowledged (median)")
    axes.set_title("Streaming ingest on this machine (synchronous_commit on)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _print_row(row: dict[str, Any], scenario: Scenario) -> None:
    print(
        f"  ({row['key']}) {scenario.name:<44} {row['readings_per_s']:>10,.0f} readings/s  "
        f"ack p50 {row['ack_p50_ms']:7.1f} ms p99 {row['ack_p99_ms']:7.1f} ms  "
        f"CPU/1000: server {row['server_cpu_s_per_1000']:.3f} s, "
        f"PostgreSQL {row['postgres_cpu_s_per_1000']:.3f} s",
        flush=True,
    )


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs = 1.0, 1
    settings = Settings.from_env()
    offsets = Offsets()
    started = time.perf_counter()
    with database(settings, "energy-bench-") as url:
        asyncio.run(apply_migrations(url, settings.migrations_dir))
        print("anchors ...", flush=True)
        anchors = measure_anchors(url, settings, args.duration, args.runs, offsets, args.quick)
        for anchor in anchors.values():
            print(f"  {anchor['anchor']:<64} {anchor['readings_per_s']:>10,.0f} readings/s", flush=True)
        with running_server(url) as server:
            rows = []
            for scenario in [*SCENARIOS, *SWEEP]:
                if scenario.key.startswith("sweep") and args.quick and scenario.per_message not in (1, 100):
                    continue
                row = measure_service(scenario, server, url, args.duration, args.runs, offsets)
                row["per_message"] = scenario.per_message
                rows.append(row)
                _print_row(row, scenario)
            peak_rss = server.peak_rss_mib()
        with running_server(url, {"ENERGY_PROCESSES": str(PROCESSES)}) as server:
            for scenario in MULTI_PROCESS:
                row = measure_service(scenario, server, url, args.duration, args.runs, offsets)
                row["per_message"] = scenario.per_message
                rows.append(row)
                _print_row(row, scenario)
    service = {row["key"]: row["readings_per_s"] for row in rows}
    ratios = {
        "(a)/L": _ratio(service["a"], anchors["L"]["readings_per_s"]),
        "(a)/C": _ratio(service["a"], anchors["C"]["readings_per_s"]),
        "(b)/T stream": _ratio(service["b"], anchors["T stream"]["readings_per_s"]),
        "(c)/T unary": _ratio(service["c"], anchors["T unary"]["readings_per_s"]),
        f"(b{PROCESSES})/T stream": _ratio(service[f"b{PROCESSES}"], anchors["T stream"]["readings_per_s"]),
        f"(c{PROCESSES})/T unary": _ratio(service[f"c{PROCESSES}"], anchors["T unary"]["readings_per_s"]),
        "(c)/S": _ratio(service["c"], anchors["S"]["readings_per_s"]),
        "(a)/S": _ratio(service["a"], anchors["S"]["readings_per_s"]),
    }
    elapsed = time.perf_counter() - started
    _print_table(anchors, rows, ratios, peak_rss)
    RESULTS.mkdir(exist_ok=True)
    name = "ingest-quick" if args.quick else "ingest-latest"
    sweep = [row for row in rows if row["key"].startswith("sweep")]
    chart = RESULTS / f"{name.replace('latest', 'sweep')}.png"
    _chart(sweep, anchors, chart)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {
            name: metadata.version(name)
            for name in ("grpcio", "protobuf", "psycopg", "energy-ingestion-server")
        },
        "database": "DATABASE_URL"
        if settings.database_url
        else "embedded PostgreSQL 16, synchronous_commit=on",
        "settings": {
            "writers": settings.writers,
            "batch_max_readings": settings.batch_max_readings,
            "batch_linger_ms": settings.batch_linger_ms,
            "pool_max_size": settings.pool_max_size,
            "stream_window": settings.stream_window,
        },
        "duration_s": args.duration,
        "runs": args.runs,
        "anchors": anchors,
        "service": rows,
        "ratios": ratios,
        "targets": {
            **RATIO_TARGETS,
            "(a) readings/s": RATE_TARGETS["a"],
            "(c) readings/s": RATE_TARGETS["c"],
        },
        "server_peak_rss_mib": peak_rss,
        "chart": chart.name,
        "seconds": round(elapsed, 1),
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS / (name + '.json')} and {chart} ({elapsed:.0f} s)")


def _print_table(
    anchors: dict[str, Any], rows: list[dict[str, Any]], ratios: dict[str, float], peak_rss: float
) -> None:
    print("\ningest, readings/s (median), this machine, synchronous_commit on")
    print(f"{'':<6}{'what':<66}{'readings/s':>12}{'ack p50':>10}{'ack p99':>10}{'srv CPU':>9}{'PG CPU':>9}")
    for key, anchor in anchors.items():
        print(f"{key:<6}{anchor['anchor']:<66}{anchor['readings_per_s']:>12,.0f}")
    for row in rows:
        print(
            f"({row['key']})".ljust(6)
            + f"{row['scenario']:<66}{row['readings_per_s']:>12,.0f}"
            + f"{row['ack_p50_ms']:>8.1f}ms{row['ack_p99_ms']:>8.1f}ms"
            + f"{row['server_cpu_s_per_1000']:>8.3f}s{row['postgres_cpu_s_per_1000']:>8.3f}s"
        )
    print(
        "CPU columns: CPU seconds per 1,000 readings acknowledged (server process; all PostgreSQL processes)"
    )
    print(
        "ratios: "
        + "  ".join(
            f"{name} {value:.2f}" + (f" (target >= {RATIO_TARGETS[name]})" if name in RATIO_TARGETS else "")
            for name, value in ratios.items()
        )
    )
    print(f"server peak RSS {peak_rss:.0f} MiB")


if __name__ == "__main__":
    main()
