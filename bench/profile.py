"""`make profile`: where the server's time goes under loads (a), (b) and (c).

Starts PostgreSQL and the server as `make bench` does, drives scenarios (a)
(streaming, 500 readings/message), (b) (streaming, 1 reading/message) and
(c) (unary, 1 reading/call) from a separate load process, and records the
server with py-spy meanwhile (native frames included, so time in gRPC's C
core and psycopg's C code shows; sampling pauses the server, so the
readings/s printed are below what `make bench` measures).

For each scenario it writes a flame graph (bench/results/profile-a.svg, ...)
and prints the event-loop thread's samples by where they were spent: the
innermost frame that belongs to a known part (gRPC, asyncio, psycopg,
protobuf, logging, a module of energy_server), idle, or other. A second
recording under the same load gives those shares. --quick: a seconds-long
smoke run (profile-*-quick.svg).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from harness import RESULTS, Server, database, running_server
from ingest import SCENARIOS, Offsets, Scenario, _load


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per scenario")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.duration = 1.0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    settings = Settings.from_env()
    offsets = Offsets()
    RESULTS.mkdir(exist_ok=True)
    with database(settings, "energy-profile-") as url:
        asyncio.run(apply_migrations(url, settings.migrations_dir))
        with running_server(url) as server:
            for scenario in SCENARIOS[:3]:
                out = RESULTS / f"profile-{scenario.key}{'-quick' if args.quick else ''}.svg"
                figures = _recorded(py_spy, server, out, "flamegraph", scenario, args.duration, offsets)
                print(
                    f"({scenario.key}) {scenario.name}: {figures['readings_per_s']:,.0f} readings/s -> {out}"
                )
                stacks = out.with_suffix(".txt")
                _recorded(py_spy, server, stacks, "raw", scenario, args.duration, offsets)
                shares = where_the_loop_goes(stacks.read_text(encoding="utf-8"))
                stacks.unlink()
                total = sum(shares.values())
                print(f"    event-loop thread, {total:,} samples:")
                for part, samples in shares.most_common():
                    print(f"    {100 * samples / total:5.1f} %  {part}")


def _recorded(
    py_spy: str, server: Server, out: Path, form: str, scenario: Scenario, duration: float, offsets: Offsets
) -> dict[str, Any]:
    """Drive `scenario` while py-spy records the server into `out`; the load's figures."""
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--output",
            str(out),
            "--format",
            form,
            "--duration",
            str(int(duration + 2)),
            "--rate",
            "100",
            "--native",
            # The shares count idle samples too, so that a loop waiting on PostgreSQL shows as idle.
            *(["--idle"] if form == "raw" else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    figures = _load(scenario, server.port, duration, offsets.take())
    _, errors = recorder.communicate(timeout=duration + 60)
    if recorder.returncode != 0:
        raise SystemExit(f"py-spy failed: {errors.strip()[-800:]}")
    return figures


# The parts a sample is charged to: the innermost frame whose text holds the marker.
_PARTS = (
    ("gc_collect", "garbage collector"),
    ("EpollSelector.select", "idle (waiting in epoll)"),
    ("cygrpc", "gRPC (C core and its Cython layer)"),
    ("grpc/", "gRPC (C core and its Cython layer)"),
    ("psycopg", "psycopg and libpq"),
    ("libpq", "psycopg and libpq"),
    ("_message.abi3", "protobuf"),
    ("google/protobuf", "protobuf"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("_asyncio", "asyncio"),
)


def where_the_loop_goes(raw: str) -> Counter[str]:
    """Samples of the main thread, which runs the server's event loop (py-spy's raw
    format), by the part they were spent in."""
    shares: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("energy_server/__main__.py" in frame for frame in frames):
            continue  # other threads: gRPC's pollers, psycopg's pool workers, helper loops
        shares[_part_of(frames)] += int(count)
    return shares


def _part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        if "energy_server/" in frame:
            module = frame.rpartition("energy_server/")[2].partition(".py")[0]
            return f"energy_server: {module}"
        for marker, part in _PARTS:
            if marker in frame:
                return part
    return "other (Python runtime, libc, kernel)"


if __name__ == "__main__":
    main()
