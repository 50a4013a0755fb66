"""Every `energy` command and `energy-load`, end to end in a subprocess against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from energy.console import number
from energy.v1 import analytics_pb2, analytics_pb2_grpc
from energy_server.app import RunningServer
from tests.support import fetch

BIN = Path(sys.executable).parent


async def energy(
    server: RunningServer, *args: str, stdin: bytes | None = None, program: str = "energy"
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(BIN / program),
        "--target",
        f"127.0.0.1:{server.port}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate(stdin)
    return process.returncode or 0, out.decode(), err.decode()


async def energy_json(server: RunningServer, *args: str) -> Any:
    code, out, err = await energy(server, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def history_count(url: str) -> int:
    rows = await fetch(
        url, "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
    )
    return int(rows[0][0])


JSON_LINES = "\n".join(
    [
        '{"meterId": "METER-001", "kwhConsumedAc": 12.5, "voltage": 230.4, '
        '"timestamp": "2026-02-11T10:30:00Z"}',
        '{"vehicleId": "VEH-001", "soc": 78.5, "kwhDeliveredDc": 6.2, "batteryTemp": 32.1, '
        '"timestamp": "2026-02-11T10:30:00Z"}',
        '{"meterId": "METER-001", "kwhConsumedAc": 12.5, "voltage": 230.4',
        "",
        '{"meter": {"meter_id": "METER-002", "kwh_consumed_ac": 1.5, "voltage": 5000, '
        '"timestamp": "2026-02-11T10:30:00Z"}}',
        '{"meterId": "METER-001", "kwhConsumedAc": 12.5, "voltage": 230.4, '
        '"timestamp": "2026-02-11T10:30:00Z"}',
        '{"meterId": "METER-001", "kwhConsumedAc": 1.0, "voltage": 231, "timestamp": "2026-02-11T10:00:00Z"}',
    ]
).encode()


async def test_ingest_reports_malformed_and_rejected_lines_by_number_and_stores_the_rest(
    server: RunningServer, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "readings.jsonl"
    source.write_bytes(JSON_LINES)
    code, out, err = await energy(server, "ingest", str(source), "--json")
    assert code == 1  # some lines were not stored
    report = json.loads(out)
    assert {k: report[k] for k in ("accepted", "duplicate", "stale", "rejected", "malformed")} == {
        "accepted": 2,
        "duplicate": 1,
        "stale": 1,
        "rejected": 1,
        "malformed": 1,
    }
    assert [(p["line"], p["field"]) for p in report["problems"]] == [
        (f"{source}:3", ""),
        (f"{source}:5", "meter.voltage"),
    ]
    assert "not JSON" in report["problems"][0]["reason"]
    assert "2000" in report["problems"][1]["reason"]
    assert "ingest" in err  # the progress display
    assert await history_count(database_url) == 3


async def test_ingest_reads_csv_and_stdin_and_prints_a_table(
    server: RunningServer, database_url: str
) -> None:
    csv_text = (
        b"meter_id,vehicle_id,kwh_consumed_ac,voltage,soc,kwh_delivered_dc,battery_temp,timestamp\n"
        b"M-C1,,1.0,230,,,,2026-02-11T10:00:00Z\n"
        b",V-C1,,,50,1.0,warm,2026-02-11T10:00:00Z\n"
        b",V-C1,,,50,1.0,30,2026-02-11T10:00:00Z\n"
    )
    code, out, _ = await energy(server, "ingest", "--format", "csv", "-", stdin=csv_text)
    assert code == 1
    assert "accepted 2" in out
    assert "malformed 1" in out
    assert "stdin:3" in out
    assert "battery_temp: 'warm' is not a number" in out
    assert await history_count(database_url) == 2


async def test_demo_then_every_analytics_command(server: RunningServer, channel: Any) -> None:
    # 23 h: every vehicle charges in that time, and all of it lies in the default 24 h window.
    code, out, err = await energy(server, "demo", "--devices", "4", "--hours", "23")
    assert code == 0, err
    assert "stored 11,040 readings" in out  # 4 pairs x 2 readings x 1380 minutes

    performance = await energy_json(server, "performance", "VEH-00003")
    assert performance["meter_id"] == "METER-00003"
    assert 0 < performance["efficiency_ratio"] < 0.85  # the simulated poor converter
    assert int(performance["vehicle_reading_count"]) == 1380

    anomalies = await energy_json(server, "anomalies")
    assert [a["vehicle_id"] for a in anomalies] == ["VEH-00003"]

    stats = await energy_json(server, "stats", "meter", "METER-00001", "--hours", "6")
    analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    expected = await analytics.GetMeterStats(analytics_pb2.GetMeterStatsRequest(meter_id="METER-00001"))
    assert expected.aggregate.reading_count == 1380  # the default window: 24 h
    assert 358 <= int(stats["aggregate"]["reading_count"]) <= 360  # 6 h ending a moment later
    vehicle_stats = await energy_json(server, "stats", "vehicle", "VEH-00002")
    assert vehicle_stats["current"]["vehicle_id"] == "VEH-00002"

    summary = await energy_json(server, "summary", "vehicle")
    assert int(summary["device_count"]) == 4
    code, table, _ = await energy(server, "summary", "meter")
    assert code == 0
    assert "device_count" in table

    current = await energy_json(server, "current", "meter")
    assert sorted(r["meter_id"] for r in current) == [f"METER-0000{i}" for i in range(1, 5)]
    one = await energy_json(server, "current", "vehicle", "VEH-00004")
    assert one["vehicle_id"] == "VEH-00004"

    series = await energy_json(
        server, "timeseries", "meter", "METER-00002", "--bucket", "1h", "--hours", "24"
    )
    assert sum(int(p["meter"]["reading_count"]) for p in series["points"]) == 1380
    code, table, _ = await energy(server, "timeseries", "vehicle", "VEH-00002", "--bucket", "15m")
    assert code == 0
    assert "soc.mean" in table.splitlines()[2]

    server_counters = await energy_json(server, "stats")
    assert int(server_counters["readings"]["accepted"]) == 11040
    code, table, _ = await energy(server, "stats")
    assert code == 0
    assert "energy-ingest" in table
    assert "readings.accepted   11,040" in table


async def test_link_commands_and_errors(server: RunningServer) -> None:
    link = await energy_json(server, "link", "VEH-9", "METER-9")
    assert (link["vehicle_id"], link["meter_id"]) == ("VEH-9", "METER-9")
    shown = await energy_json(server, "link", "VEH-9")
    assert shown["meter_id"] == "METER-9"
    listed = await energy_json(server, "link", "--list")
    assert [entry["vehicle_id"] for entry in listed] == ["VEH-9"]

    code, _, err = await energy(server, "performance", "VEH-unlinked")
    assert code == 1
    assert "NOT_FOUND" in err
    assert "not linked" in err
    code, _, err = await energy(server, "link", "VEH-9", " bad")
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "meter_id" in err


async def test_health_command(server: RunningServer) -> None:
    assert await energy_json(server, "health") == {"service": "", "status": "SERVING"}
    code, out, _ = await energy(server, "health", "energy.v1.IngestService")
    assert (code, out.strip()) == (0, "SERVING")


@pytest.mark.parametrize("shape", ["bidi", "unary", "stream"])
async def test_load_generator_acknowledges_exactly_what_history_gained(
    server: RunningServer, database_url: str, shape: str
) -> None:
    before = await history_count(database_url)
    code, out, err = await energy(
        server,
        "--json",
        "--shape",
        shape,
        "--devices",
        "40",
        "--interval-ms",
        "0",
        "--duration",
        "2",
        "--readings-per-message",
        "5",
        "--concurrency",
        "4",
        "--processes",
        "2",
        "--late-share",
        "0.1",
        "--duplicate-share",
        "0.1",
        program="energy-load",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["errors"] == {}
    assert report["sent"] == report["acknowledged"] > 0
    assert report["duplicate"] > 0
    assert report["stale"] > 0
    assert report["stored"] == report["accepted"] + report["stale"]
    assert await history_count(database_url) - before == report["stored"]
    assert report["ack_latency_ms"]["p50"] <= report["ack_latency_ms"]["p99"]
    assert "load" in err  # the live progress line


async def test_version_of_both_commands() -> None:
    for program in ("energy", "energy-server", "energy-load"):
        process = await asyncio.create_subprocess_exec(
            str(BIN / program), "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert re.fullmatch(rf"{program} \d+\.\d+\.\d+ \(energy-ingestion-server\)\n", out.decode()), out


async def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(server: RunningServer) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` once it has its line: every write now fails
    try:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "energy"),
            "--target",
            f"127.0.0.1:{server.port}",
            "health",
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, err = await process.communicate()
    assert (process.returncode, err.decode()) == (0, "")


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (0.0, "0"),
        (0.00042, "0.00042"),
        (0.0123456, "0.01235"),
        (1.5, "1.5"),
        (12345.6789, "12,345.6789"),
        (3e-9, "3e-09"),
        (-0.25, "-0.25"),
        (float("inf"), "inf"),
    ],
)
def test_numbers_keep_enough_significant_digits_to_tell_small_from_zero(value: float, printed: str) -> None:
    assert number(value) == printed
