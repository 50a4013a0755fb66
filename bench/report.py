"""The one table of `make bench`: ingest and read-path results against their targets.

Reads bench/results/ingest-latest.json and analytics-latest.json (the
-quick ones with --quick), prints every figure beside its target, and
writes both, with the verdicts, to bench/results/bench-latest.json.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness import RESULTS
from ingest import RATE_TARGETS, RATIO_TARGETS


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def _print_stages(stages: list[dict[str, Any]]) -> None:
    """Each read at 1 day and at N days of history, side by side (same 24 h window)."""
    days = [stage["days"] for stage in stages]
    print(f"\nreads of a 24 h window with {days[0]} and {days[1]} days of history (p50 / p99, ms):")
    later = {(r["rpc"], r["callers"], r["window"]): r for r in stages[1]["results"]}
    for row in stages[0]["results"]:
        other = later[(row["rpc"], row["callers"], row["window"])]
        print(
            f"  {row['window']:<17} {row['rpc']:<28} callers {row['callers']:>2}"
            f"  {days[0]} d {row['p50_ms']:8.2f} / {row['p99_ms']:8.2f}"
            f"   {days[1]} d {other['p50_ms']:8.2f} / {other['p99_ms']:8.2f}"
            f"   p99 x{other['p99_ms'] / row['p99_ms']:.2f}"
        )


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
    # Targets hold for the harder window, whose partial hours are read raw.
    reads = {
        (row["rpc"], row["callers"]): row
        for row in analytics["results"]
        if row.get("window", "raw edges") == "raw edges"
    }
    checks: list[tuple[str, float, float, bool, str]] = [
        ("(a) stream 500/msg, readings/s", service["a"]["readings_per_s"], RATE_TARGETS["a"], True, "/s"),
        ("(a)/L", ratios["(a)/L"], RATIO_TARGETS["(a)/L"], True, "x"),
        ("(b)/T stream, 1 reading/message", ratios["(b)/T stream"], RATIO_TARGETS["(b)/T stream"], True, "x"),
        ("(c)/T unary, 1 reading/call", ratios["(c)/T unary"], RATIO_TARGETS["(c)/T unary"], True, "x"),
        ("(c)/S, 1 reading/call", ratios["(c)/S"], RATIO_TARGETS["(c)/S"], True, "x"),
        ("(c) unary 1/call, readings/s", service["c"]["readings_per_s"], RATE_TARGETS["c"], True, "/s"),
    ]
    performance = reads.get(("GetVehiclePerformance", 1))
    summary = reads.get(("GetVehicleFleetSummary", 1))
    anomalies = reads.get(("ListEfficiencyAnomalies", 1))
    if performance and summary and anomalies:
        checks += [
            ("vehicle performance p99 (1 caller), ms", performance["p99_ms"], 5.0, False, "ms"),
            ("fleet summary p99 (1 caller), ms", summary["p99_ms"], 20.0, False, "ms"),
            ("anomalies p99 (1 caller), ms", anomalies["p99_ms"], 250.0, False, "ms"),
        ]
        for label in ("edges in quarters", "last 24 h", "last 24 h at :01", "whole hours"):
            other = [
                r
                for r in analytics["results"]
                if (r["rpc"], r["callers"], r.get("window")) == ("ListEfficiencyAnomalies", 1, label)
            ]
            if other:
                checks.append(
                    (f"anomalies p99 (1 caller), {label}, ms", other[0]["p99_ms"], 250.0, False, "ms")
                )
    stages = analytics.get("stages", [])
    if len(stages) == 2:
        first = {(r["rpc"], r["callers"]): r for r in stages[0]["results"] if r.get("window") == "raw edges"}
        growth = (
            reads[("ListEfficiencyAnomalies", 1)]["p99_ms"] / first[("ListEfficiencyAnomalies", 1)]["p99_ms"]
        )
        checks.append((f"anomalies p99 {stages[1]['days']} days / 1 day", growth, 1.2, False, "x"))
        _print_stages(stages)
    if "ingest_a" in analytics:
        checks.append(("(a) into 7 days / into empty", analytics["ingest_a"]["ratio"], 0.9, True, "x"))
        expiry = analytics["expire_one_day"]
        print(
            f"expiring one day ({expiry['rows']:,} rows): DELETE {expiry['delete_s']:.2f} s,"
            f" dropping its partitions {expiry['drop_partitions_s']:.3f} s"
        )
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
