"""Open streams: how many charger streams one server process holds, and what each costs.

Firmware keeps one stream per charger open for hours and sends a reading
every few seconds. Against one server process (as `make run` starts it, on
a fresh embedded PostgreSQL or DATABASE_URL), client processes open
`--streams` bidirectional streams, 10 per connection (loopback; `--start-rate`
new streams a second), each sending one reading every `--interval` seconds;
once all are open, for `--duration` seconds:

- server RSS per open stream: (RSS with the streams open - RSS before) / streams;
- ack latency p50 / p99 (write to ack), errors (none allowed);
- server CPU (cores used over the window).

Then, unless --no-ceiling, the same at counts growing by a quarter while ack
p99 stays within 1 s and no stream fails: the most one process holds.

The start rate matters: one process takes new calls at a few hundred a
second while it serves the open ones, and gRPC cancels some of the calls
that wait to be taken when more than 1,000 wait (its default backlog). The
default rate is one the server keeps up with, so that the ceiling measures
holding streams, not a reconnect storm.
Prints the figures and writes bench/results/streams-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from harness import Server, cpu_seconds, database, percentiles, running_server, write_report

HERE = Path(__file__).resolve().parent
CLIENTS = 2  # client processes: one Python process would be the bottleneck before the server
STREAMS_PER_CONNECTION = 10
# New streams a second: a rate one server process kept up with while serving
# 15,625 open ones on the 2-core machine (at 1,500 a second it lost thousands of
# 15,000 to gRPC's backlog, and at 19,531 open ones it fell behind even 250).
START_RATE = 250.0
# Each step of the ceiling search holds this many times the previous step's streams.
CEILING_STEP = 1.25
TARGET_P99_MS = 100.0
TARGET_KIB_PER_STREAM = 64.0


def _rss_kib(server: Server) -> int:
    """Resident memory now (not its high-water mark: the ceiling steps reuse the server)."""
    return int(psutil.Process(server.pid).memory_info().rss) // 1024


def measure(
    server: Server, streams: int, interval: float, duration: float, start_rate: float
) -> dict[str, Any]:
    connections = max(1, streams // STREAMS_PER_CONNECTION)
    rss_before = _rss_kib(server)
    clients = []
    for c in range(CLIENTS):
        share = streams // CLIENTS + (1 if c < streams % CLIENTS else 0)
        clients.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "streams_client.py"),
                    "--target",
                    f"127.0.0.1:{server.port}",
                    "--streams",
                    str(share),
                    "--first",
                    str(c * streams),
                    "--connections",
                    str(max(1, connections // CLIENTS)),
                    "--interval",
                    str(interval),
                    "--duration",
                    str(duration),
                    "--ramp",
                    str(streams / start_rate),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    opened_at = time.monotonic()
    for client in clients:
        assert client.stderr is not None
        line = client.stderr.readline()
        if line.strip() != "open":
            raise SystemExit(f"open streams: a client failed: {line}{client.stderr.read()}")
    ramp_s = time.monotonic() - opened_at
    rss_open = _rss_kib(server)
    cpu_before, started = cpu_seconds(server.pid), time.monotonic()
    results = []
    for client in clients:
        out, err = client.communicate(timeout=duration + 120)
        if client.returncode != 0:
            raise SystemExit(f"open streams: a client failed: {err}")
        results.append(json.loads(out))
    cores = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - started)
    latencies = sorted(ms * 1000 for r in results for ms in r["latencies"])
    errors: dict[str, int] = {}
    for r in results:
        for code, count in r["errors"].items():
            errors[code] = errors.get(code, 0) + count
    q = percentiles(latencies)
    lag_q = percentiles(sorted(ms * 1000 for r in results for ms in r["loop_lags"]))
    return {
        "streams": streams,
        "connections": connections,
        "interval_s": interval,
        "start_rate_per_s": start_rate,
        "duration_s": duration,
        "ramp_s": ramp_s,
        "acks": len(latencies),
        "ack_p50_ms": q[49],
        "ack_p99_ms": q[98],
        "client_loop_lag_p99_ms": lag_q[98],
        "errors": errors,
        "rss_before_mib": rss_before / 1024,
        "rss_open_mib": rss_open / 1024,
        "kib_per_stream": (rss_open - rss_before) / streams,
        "server_cores": cores,
    }


def _print(row: dict[str, Any]) -> None:
    print(
        f"  {row['streams']:>6,} streams / {row['connections']:,} connections:"
        f" opened in {row['ramp_s']:.1f} s,"
        f" ack p50 {row['ack_p50_ms']:.1f} ms p99 {row['ack_p99_ms']:.1f} ms ({row['acks']:,} acks,"
        f" client loop lag p99 {row['client_loop_lag_p99_ms']:.1f} ms),"
        f" RSS {row['rss_before_mib']:.0f} -> {row['rss_open_mib']:.0f} MiB"
        f" = {row['kib_per_stream']:.1f} KiB/stream,"
        f" server {row['server_cores']:.2f} cores, errors {row['errors'] or 'none'}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a stream's readings")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured once all are open")
    parser.add_argument("--start-rate", type=float, default=START_RATE, help="new streams a second")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the search for the most streams")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.interval, args.duration, args.no_ceiling = 200, 1.0, 3.0, True
    settings = Settings.from_env()
    rows = []
    with database(settings, "energy-bench-streams-") as url:
        asyncio.run(apply_migrations(url, settings.migrations_dir))
        with running_server(url, {"ENERGY_METRICS_PORT": "off"}) as server:
            print(
                f"open streams, one server process, a reading every {args.interval:g} s each,"
                f" {args.start_rate:g} new streams a second:",
                flush=True,
            )
            rows.append(measure(server, args.streams, args.interval, args.duration, args.start_rate))
            _print(rows[-1])
            if not args.no_ceiling:
                streams = args.streams
                while rows[-1]["ack_p99_ms"] <= 1000 and not rows[-1]["errors"]:
                    streams = int(streams * CEILING_STEP)
                    rows.append(measure(server, streams, args.interval, args.duration / 2, args.start_rate))
                    _print(rows[-1])
    held = [r for r in rows if r["ack_p99_ms"] <= 1000 and not r["errors"]]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": "loopback; server, PostgreSQL and client processes share the machine's cores",
        "targets": {"ack_p99_ms": TARGET_P99_MS, "kib_per_stream": TARGET_KIB_PER_STREAM},
        "first": rows[0],
        "ceiling": rows[1:],
        "most_streams_with_p99_within_1s": max((r["streams"] for r in held), default=0),
    }
    write_report("streams", args.quick, report)


if __name__ == "__main__":
    main()
