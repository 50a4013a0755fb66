"""The example clients in other languages (examples/, built by `make clients`
from buf.gen.yaml's output) work against a real server."""

from __future__ import annotations

import asyncio
import shutil

from energy_server.app import RunningServer
from tests.support import fetch


async def _run_example(server: RunningServer, *args: str) -> tuple[int, str, str]:
    example = shutil.which("energy-example-go")
    assert example, "energy-example-go is not on PATH: `make clients` builds it into .tools/bin"
    process = await asyncio.create_subprocess_exec(
        example,
        "-target",
        f"127.0.0.1:{server.port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_go_example_ingests_links_and_reads_vehicle_performance(
    server: RunningServer, database_url: str
) -> None:
    code, out, err = await _run_example(server, "-vehicle", "VEH-GO-7", "-meter", "METER-GO-7")
    assert code == 0, err
    assert out.splitlines() == [
        "ingested: accepted 2, duplicate 0, stale 0, rejected 0",
        "performance of VEH-GO-7 (meter METER-GO-7): ac 1.2500 kWh, dc 1.1000 kWh, efficiency 0.8800, "
        "1 meter and 1 vehicle readings",
    ]
    assert await fetch(
        database_url, "SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = 'VEH-GO-7'"
    ) == [("METER-GO-7",)]


async def test_the_go_example_reports_a_rejected_call_with_its_code(server: RunningServer) -> None:
    code, _, err = await _run_example(server, "-vehicle", " VEH")
    assert code == 1
    assert "InvalidArgument" in err
    assert "vehicle_id" in err
