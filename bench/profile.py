"""`make profile`: py-spy flame graphs of the server under load (a) and (b).

Starts PostgreSQL and the server as `make bench` does, drives scenario (a)
(streaming, 500 readings/message) and then (b) (streaming, 1 reading/message)
from a separate load process, and records the server with py-spy meanwhile
(native frames included, so time in gRPC's C core and psycopg's C code
shows; sampling pauses the server, so the readings/s printed are below what
`make bench` measures). Writes bench/results/profile-a.svg and profile-b.svg
(profile-*-quick.svg with --quick, a seconds-long smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from energy_server.settings import Settings
from energy_server.storage.migrate import apply_migrations
from harness import RESULTS, database, running_server
from ingest import SCENARIOS, Offsets, _load


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
            for scenario in SCENARIOS[:2]:
                out = RESULTS / f"profile-{scenario.key}{'-quick' if args.quick else ''}.svg"
                recorder = subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(server.pid),
                        "--output",
                        str(out),
                        "--duration",
                        str(int(args.duration + 2)),
                        "--rate",
                        "100",
                        "--native",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                figures = _load(scenario, server.port, args.duration, offsets.take())
                _, errors = recorder.communicate(timeout=args.duration + 60)
                if recorder.returncode != 0:
                    raise SystemExit(f"py-spy failed: {errors.strip()[-800:]}")
                print(
                    f"({scenario.key}) {scenario.name}: {figures['readings_per_s']:,.0f} readings/s -> {out}"
                )


if __name__ == "__main__":
    main()
