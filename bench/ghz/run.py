"""Run the ghz profiles of this folder against a running server (`make ghz`).

ghz counts calls and streams, not readings, so each profile's summary is
printed next to what the server itself counted meanwhile (MetricsService):
readings by outcome and readings stored per second. Every message differs:
the profiles' data templates put ghz's worker id into device ids and the
current time, to the microsecond, into timestamps.

The profiles name no proto files: ghz learns the contract through the
server's reflection, as a user's ghz would. `--source proto` gives it the
files of protos/ instead (for a server with reflection off).

Exit status 1 when any call of any profile failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from energy import EnergyClient, SyncEnergyClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROFILES = ("ingest-unary", "ingest-client-stream", "ingest-bidi", "vehicle-performance")
OUTCOMES = ("accepted", "duplicate", "stale", "rejected")


def _ghz_binary(explicit: str | None) -> str:
    found = explicit or shutil.which("ghz") or str(REPO / ".tools" / "bin" / "ghz")
    if not Path(found).exists():
        sys.exit("ghz is not installed: `make tools`, or go install github.com/bojand/ghz/cmd/ghz@v0.120.0")
    return found


def _counts(client: SyncEnergyClient) -> dict[str, int]:
    readings = client.get_server_metrics().readings
    return {name: getattr(readings, name) for name in OUTCOMES}


async def _link_performance_vehicles(client: EnergyClient) -> None:
    for number in range(1, 10):
        await client.link_vehicle(f"VEH-{number:05d}", f"METER-{number:05d}")


def _proto_of(profile: str) -> str:
    call = json.loads((HERE / f"{profile}.json").read_text(encoding="utf-8"))["call"]
    service = call.split(".")[2]
    return str(REPO / "protos" / "energy" / "v1" / f"{service.removesuffix('Service').lower()}.proto")


def run_profile(
    ghz: str, profile: str, target: str, duration: str, source: str = "reflection"
) -> dict[str, Any]:
    command = [
        ghz,
        "--config",
        str(HERE / f"{profile}.json"),
        "--duration",
        duration,
        "--format",
        "json",
        target,
    ]
    if source == "proto":
        import_paths = f"{REPO / 'protos'},{REPO / 'third_party' / 'googleapis'}"
        command[1:1] = ["--proto", _proto_of(profile), "--import-paths", import_paths]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0 and not result.stdout.strip():
        raise RuntimeError(f"ghz failed on {profile}: {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(result.stdout)
    report.pop("details", None)
    return report


def _latency_ms(report: dict[str, Any], percentage: int) -> float:
    for entry in report.get("latencyDistribution") or ():
        if entry["percentage"] == percentage:
            return float(entry["latency"]) / 1e6
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--target", default=os.environ.get("ENERGY_TARGET", "localhost:50051"))
    parser.add_argument("--duration", default="10s", help="per profile, in ghz's units (default 10s)")
    parser.add_argument("--profile", action="append", choices=PROFILES, help="run only these (repeatable)")
    parser.add_argument("--ghz", help="path of the ghz binary")
    parser.add_argument(
        "--source",
        choices=("reflection", "proto"),
        default="reflection",
        help="where ghz learns the contract: the server's reflection (default) or protos/",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with every result")
    args = parser.parse_args()
    ghz = _ghz_binary(args.ghz)
    results = []
    with SyncEnergyClient(args.target) as client:
        # The performance profile asks about VEH-00001..9: link them (idempotent).
        client.run(_link_performance_vehicles)
        for profile in args.profile or PROFILES:
            before = _counts(client)
            report = run_profile(ghz, profile, args.target, args.duration, args.source)
            after = _counts(client)
            counted = {name: after[name] - before[name] for name in OUTCOMES}
            seconds = report["total"] / 1e9
            errors = sum(report.get("errorDistribution", {}).values())
            results.append(
                {
                    "profile": profile,
                    "calls": report["count"],
                    "calls_per_s": round(report["rps"], 1),
                    "p50_ms": round(_latency_ms(report, 50), 2),
                    "p99_ms": round(_latency_ms(report, 99), 2),
                    "status_codes": report.get("statusCodeDistribution", {}),
                    "errors": errors,
                    "server_readings": counted,
                    "readings_stored_per_s": round((counted["accepted"] + counted["stale"]) / seconds, 1),
                }
            )
    if args.json:
        print(
            json.dumps(
                {"target": args.target, "duration": args.duration, "source": args.source, "results": results}
            )
        )
    else:
        for r in results:
            server = "  ".join(f"{name} {count:,}" for name, count in r["server_readings"].items())
            print(
                f"{r['profile']:<22} {r['calls']:>8,} calls  {r['calls_per_s']:>9,.1f} calls/s  "
                f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  statuses {r['status_codes']}\n"
                f"{'':<22} server counted: {server}  -> {r['readings_stored_per_s']:,.0f} readings stored/s"
            )
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
