"""The ghz profiles of bench/ghz run against a real server with zero errors (as `make ghz` runs them),
learning the contract from the server's reflection alone (as a user's ghz does) and from protos/."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from energy_server.app import RunningServer
from tests.conftest import REPO_ROOT

READINGS_PER_CALL = {
    "ingest-unary": 1,
    "ingest-client-stream": 500,
    "ingest-bidi": 500,
    "vehicle-performance": 0,
}


@pytest.mark.parametrize("source", ["reflection", "proto"])
async def test_every_ghz_profile_runs_without_errors_and_the_server_counts_each_reading(
    server: RunningServer, source: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "bench" / "ghz" / "run.py"),
        "--target",
        f"127.0.0.1:{server.port}",
        "--duration",
        "1s",
        "--source",
        source,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    results = {r["profile"]: r for r in json.loads(out)["results"]}
    assert set(results) == set(READINGS_PER_CALL)
    for profile, per_call in READINGS_PER_CALL.items():
        result = results[profile]
        assert result["errors"] == 0, result
        assert set(result["status_codes"]) == {"OK"}, result
        assert result["calls"] > 0
        # Every message differs, so every reading of every call is new.
        assert result["server_readings"] == {
            "accepted": result["calls"] * per_call,
            "duplicate": 0,
            "stale": 0,
            "rejected": 0,
        }
