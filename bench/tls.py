"""`make bench-tls`: ingest throughput with TLS on vs off, same server, data and load.

A throw-away CA (trustme) signs a certificate for 127.0.0.1; the server runs
in plaintext and with ENERGY_TLS_CERT_FILE / ENERGY_TLS_KEY_FILE, and
energy-load drives the same shapes against each: three rounds, the modes
alternating so that noise on a shared machine falls on both, and the median
of each is reported. Prints a table and writes bench/results/tls-latest.json
(tls-quick.json with --quick, one short round).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import trustme

from energy_server.settings import Settings
from harness import database, running_server

HERE = Path(__file__).resolve().parent
SHAPES = (
    (
        "bidi, 100 readings/message",
        ["--shape", "bidi", "--readings-per-message", "100", "--concurrency", "8"],
    ),
    (
        "unary, 1 reading/call, 64 senders",
        ["--shape", "unary", "--readings-per-message", "1", "--concurrency", "64"],
    ),
)


def _load(
    port: int, tls_ca: Path | None, arguments: list[str], duration: float, devices: int
) -> dict[str, Any]:
    command = [
        str(Path(sys.executable).parent / "energy-load"),
        "--target",
        f"127.0.0.1:{port}",
        "--json",
        "--interval-ms",
        "0",
        "--devices",
        str(devices),
        "--duration",
        str(duration),
        *arguments,
    ]
    if tls_ca is not None:
        command += ["--tls-ca", str(tls_ca)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"energy-load failed: {result.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    args = parser.parse_args()
    duration, devices, rounds = (1.0, 200, 1) if args.quick else (8.0, 10_000, 3)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="energy-tls-") as certificates,
        database(Settings.from_env(), "energy-bench-tls-") as url,
    ):
        folder = Path(certificates)
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        ca, cert, key = folder / "ca.pem", folder / "server.pem", folder / "server.key"
        authority.cert_pem.write_to_path(str(ca))
        certificate.cert_chain_pems[0].write_to_path(str(cert))
        certificate.private_key_pem.write_to_path(str(key))
        modes = {
            "plaintext": ({}, None),
            "TLS": ({"ENERGY_TLS_CERT_FILE": str(cert), "ENERGY_TLS_KEY_FILE": str(key)}, ca),
        }
        for round_ in range(1, rounds + 1):
            for mode, (env, tls_ca) in modes.items():
                with running_server(url, env) as server:
                    for name, arguments in SHAPES:
                        report = _load(server.port, tls_ca, arguments, duration, devices)
                        runs.setdefault((mode, name), []).append(report)
                        print(
                            f"round {round_}: {mode:<10} {name:<36} "
                            f"{report['acknowledged_per_s']:>10,.0f} readings/s",
                            flush=True,
                        )
    results = []
    for (mode, name), reports in runs.items():
        middle = sorted(reports, key=lambda r: r["acknowledged_per_s"])[len(reports) // 2]
        latency = middle["ack_latency_ms"]
        results.append(
            {
                "mode": mode,
                "shape": name,
                "acknowledged_per_s_median": middle["acknowledged_per_s"],
                "runs": [r["acknowledged_per_s"] for r in reports],
                "ack_latency_ms_of_median_run": latency,
                "errors": [r["errors"] for r in reports],
            }
        )
    print(f"\nmedian of {rounds} run(s), {duration:g} s each, {devices:,} devices:")
    for name, _ in SHAPES:
        by_mode = {r["mode"]: r for r in results if r["shape"] == name}
        plain, tls = by_mode["plaintext"], by_mode["TLS"]
        ratio = tls["acknowledged_per_s_median"] / plain["acknowledged_per_s_median"]
        print(
            f"{name:<36} plaintext {plain['acknowledged_per_s_median']:>10,.0f}/s   "
            f"TLS {tls['acknowledged_per_s_median']:>10,.0f}/s   TLS/plaintext {ratio:.2f}"
        )
    out = HERE / "results" / ("tls-quick.json" if args.quick else "tls-latest.json")
    out.parent.mkdir(exist_ok=True)
    conditions = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "python": platform.python_version(),
        "duration_s": duration,
        "rounds": rounds,
        "devices": devices,
        "server_and_load_on_the_same_machine": True,
    }
    out.write_text(json.dumps({"conditions": conditions, "results": results}, indent=1) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
