"""The one table of `make bench`: ingest and read-path results against their targets.

Reads bench/results/ingest-latest.json and analytics-latest.json (the
-quick ones with --quick), prints every figure beside its target, and
writes both, with the verdicts, to bench/results/bench-latest.json.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ingest import RATE_TARGETS, RATIO_TARGETS, RESULTS


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    suffix = "quick" if args.quick else "latest"
    ingest: dict[str, Any] = json.loads((RESULTS / f"ingest-{suffix}.json").read_text())
    analytics: dict[str, Any] = json.loads((RESULTS / f"analytics-{suffix}.json").read_text())
    service = {row["key"]: row for row in ingest["service"]}
    anchors = ingest["anchors"]
    ratios = ingest["ratios"]
    reads = {(row["rpc"], row["callers"]): row for row in analytics["results"]}
    checks: list[tuple[str, float, float, bool, str]] = [
        ("(a) stream 500/msg, readings/s", service["a"]["readings_per_s"], RATE_TARGETS["a"], True, "/s"),
        ("(a)/L", ratios["(a)/L"], RATIO_TARGETS["(a)/L"], True, "x"),
        ("(b)/T stream, 1 reading/message", ratios["(b)/T stream"], RATIO_TARGETS["(b)/T stream"], True, "x"),
        ("(c)/T unary, 1 reading/call", ratios["(c)/T unary"], RATIO_TARGETS["(c)/T unary"], True, "x"),
        ("(c) unary 1/call, readings/s", service["c"]["readings_per_s"], RATE_TARGETS["c"], True, "/s"),
    ]
    performance = reads.get(("GetVehiclePerformance", 1))
    summary = reads.get(("GetVehicleFleetSummary", 1))
    if performance and summary:
        checks += [
            ("vehicle performance p99 (1 caller), ms", performance["p99_ms"], 5.0, False, "ms"),
            ("fleet summary p99 (1 caller), ms", summary["p99_ms"], 20.0, False, "ms"),
        ]
    print(f"\n== make bench ({suffix}) ==")
    print(f"history for reads: {analytics['history']['rows_per_table']:,} rows per table")
    print("anchors: " + ", ".join(f"{k} {v['readings_per_s']:,.0f}/s" for k, v in anchors.items()))
    print(
        "service: "
        + ", ".join(
            f"({k}) {row['readings_per_s']:,.0f}/s" for k, row in service.items() if not k.startswith("sweep")
        )
    )
    print("ratios:  " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(f"{'target':<42}{'measured':>14}{'target':>12}  verdict")
    verdicts = []
    for name, value, target, higher, unit in checks:
        verdict = _verdict(value, target, higher)
        verdicts.append({"check": name, "measured": value, "target": target, "verdict": verdict})
        shown = f"{value:,.0f}" if unit == "/s" else f"{value:,.2f}"
        wanted = f"{'>=' if higher else '<='} {target:,.2f}".replace(".00", "")
        print(f"{name:<42}{shown:>14}{wanted:>12}  {verdict}")
    combined = {"ingest": ingest, "analytics": analytics, "targets": verdicts}
    out = RESULTS / f"bench-{suffix}.json"
    out.write_text(json.dumps(combined, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
