"""`make bench-citus`: the service on a Citus cluster beside one PostgreSQL.

Both are PostgreSQL 15 on this machine, started for the run and removed after:
one plain server, and a Citus 13 cluster of a coordinator and two workers on
loopback (../shared/citus/cluster.sh; every node configured alike). On each,
in the same run and with the same readings (the same reading numbers):

1. `migrate` (on the coordinator it distributes the schema itself);
2. ingest shapes (a) (stream, 500 readings/message) and (b) (stream, 1
   reading/message) through the server as `make run` starts it, with the CPU
   seconds per 1,000 readings of the server, of the single PostgreSQL, and of
   the Citus coordinator and of its workers (which tells where the cost of a
   reading lands when workers are added);
3. the per-device and fleet reads over the window holding those readings.

Prints the figures and writes bench/results/citus-latest.json. Run as root:
the PostgreSQL servers run as the postgres user.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from analytics import _measure_window
from load import START as LOAD_START

from energy.v1 import analytics_pb2
from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from harness import cpu_seconds, free_port, running_server, write_report
from ingest import SCENARIOS, Offsets, measure_service

HERE = Path(__file__).resolve().parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORKERS = 2


def _citus_scripts() -> Path:
    configured = os.environ.get("CITUS_SCRIPTS")
    for candidate in [*([Path(configured)] if configured else []), HERE.parent.parent / "shared" / "citus"]:
        if (candidate / "cluster.sh").exists():
            return candidate.resolve()
    raise SystemExit(
        "bench-citus: no Citus scripts; set CITUS_SCRIPTS to the folder of install.sh and cluster.sh"
    )


def _as_postgres(command: str) -> None:
    subprocess.run(["su", "postgres", "-c", command], check=True, stdout=subprocess.DEVNULL)


def _node_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds so far of one PostgreSQL server (its postmaster and backends)."""
    return cpu_seconds(int((data_dir / "postmaster.pid").read_text().split()[0]))


@contextmanager
def single_postgres(folder: Path) -> Iterator[tuple[str, list[Path]]]:
    """A plain PostgreSQL 15, configured like the cluster's nodes (no citus)."""
    data, port = folder / "single", free_port()
    _as_postgres(f"{PG_BIN}/initdb -D {data} -A trust")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n")
        conf.write("max_connections = 300\n")
    _as_postgres(f"{PG_BIN}/pg_ctl -D {data} -w -l {folder}/single.log start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", [data]
    finally:
        _as_postgres(f"{PG_BIN}/pg_ctl -D {data} -m fast stop")


@contextmanager
def citus_cluster(folder: Path) -> Iterator[tuple[str, list[Path]]]:
    """The coordinator's URL, and the data folders of the coordinator then each worker."""
    scripts, cluster = _citus_scripts(), folder / "citus"
    port = free_port()  # the workers take the next ports
    started = subprocess.run(
        [str(scripts / "cluster.sh"), "start", str(cluster), str(port), str(WORKERS)],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield started.stdout.strip().splitlines()[-1], [cluster / f"node{i}" for i in range(WORKERS + 1)]
    finally:
        subprocess.run([str(scripts / "cluster.sh"), "stop", str(cluster)], check=False)


async def _link_vehicles(url: str, devices: int) -> None:
    """Each vehicle load.py wrote (V-even) to the meter numbered after it (M-odd)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(
            "INSERT INTO vehicle_meter_map (vehicle_id, meter_id)"
            " SELECT format('V-%%s', lpad(n::text, 5, '0')), format('M-%%s', lpad((n + 1)::text, 5, '0'))"
            " FROM generate_series(0, %(devices)s - 1, 2) AS n ON CONFLICT DO NOTHING",
            {"devices": devices},
        )


def _measure_backend(
    label: str, url: str, nodes: list[Path], duration: float, runs: int, calls: int, devices: int
) -> dict[str, Any]:
    print(f"{label}:", flush=True)
    asyncio.run(apply_migrations(url, Settings().migrations_dir))
    offsets = Offsets()  # the same reading numbers on each backend: the same rows
    shapes = []
    where = "coordinator" if len(nodes) > 1 else "PostgreSQL"
    with running_server(url) as server:
        for scenario in (s for s in SCENARIOS if s.key in ("a", "b")):
            before = [_node_cpu_seconds(node) for node in nodes]
            row = measure_service(scenario, server, url, duration, runs, offsets)
            used = [_node_cpu_seconds(node) - b for node, b in zip(nodes, before, strict=True)]
            # measure_service reports the median run; the node CPU covers all runs.
            stored = sum(row["runs"]) * duration
            thousands = max(stored, 1) / 1000
            row["coordinator_cpu_s_per_1000"] = used[0] / thousands
            row["workers_cpu_s_per_1000"] = sum(used[1:]) / thousands
            shapes.append(row)
            print(
                f"  ({scenario.key}) {scenario.name:<34} {row['readings_per_s']:>9,.0f} readings/s"
                f"  CPU s/1000: server {row['server_cpu_s_per_1000']:.4f},"
                f" {where} {row['coordinator_cpu_s_per_1000']:.4f}"
                + (f", workers {row['workers_cpu_s_per_1000']:.4f}" if len(nodes) > 1 else ""),
                flush=True,
            )
        # The readings above: LOAD_START on, one second of timestamps per `devices` readings.
        window = analytics_pb2.TimeWindow()
        window.start_time.FromDatetime(LOAD_START)
        window.end_time.FromDatetime(LOAD_START + timedelta(days=1))
        asyncio.run(_link_vehicles(url, devices))
        reads = asyncio.run(_measure_window(server.port, devices, window, calls, parity=True))
    return {"backend": label, "shapes": shapes, "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per ingest run")
    parser.add_argument("--runs", type=int, default=3, help="runs per ingest figure (the median is reported)")
    parser.add_argument("--calls", type=int, default=200, help="calls per read RPC and concurrency")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs, args.calls = 1.0, 1, 20
    if os.geteuid() != 0:
        raise SystemExit("bench-citus: run as root (its PostgreSQL servers run as the postgres user)")
    folder = Path(tempfile.mkdtemp(prefix="energy-bench-citus-"))
    os.chmod(folder, 0o755)
    shutil.chown(folder, "postgres")
    devices = 10_000  # load.py's default
    results = []
    try:
        with single_postgres(folder) as (url, nodes):
            results.append(
                _measure_backend(
                    "one PostgreSQL 15", url, nodes, args.duration, args.runs, args.calls, devices
                )
            )
        with citus_cluster(folder) as (url, nodes):
            results.append(
                _measure_backend(
                    f"Citus 13.2: coordinator + {WORKERS} workers",
                    url,
                    nodes,
                    args.duration,
                    args.runs,
                    args.calls,
                    devices,
                )
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": f"{os.cpu_count()} cores shared by load, server and every PostgreSQL node; loopback",
        "results": results,
    }
    write_report("citus", args.quick, report)


if __name__ == "__main__":
    main()
