"""Several stateless replicas on one database (single PostgreSQL, or Citus
under `make test-citus`): separate `energy-server serve` processes, one of
them with two workers, behind the shipped client's round_robin target list.
Each device's readings go out in order, a call at a time, so what every
reading's outcome must be is known; the calls themselves alternate between
the replicas."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import timedelta

from energy.client import EnergyClient
from energy.v1 import reading_pb2
from tests.processes import ServerProcess, claimed_fleet_shards
from tests.support import BASE_TIME, fetch, meter, vehicle

DEVICES = 24  # of each kind
READINGS_PER_DEVICE = 30
PER_CALL = 4


def _plan(seed: int) -> list[tuple[str, list[int]]]:
    """Per device, the minute offsets it sends, in sending order: mostly
    rising, some late (stale) and some repeated (duplicate)."""
    shuffle = random.Random(seed)
    plans = []
    for kind in ("meter", "vehicle"):
        for n in range(DEVICES):
            minutes = list(range(READINGS_PER_DEVICE))
            for i in range(0, len(minutes) - 1, 5):
                minutes[i], minutes[i + 1] = minutes[i + 1], minutes[i]
            minutes += shuffle.sample(range(READINGS_PER_DEVICE), 4)  # repeats
            plans.append((f"{kind.upper()}-R{n:03d}", minutes))
    return plans


def _reading(device: str, minute: int) -> reading_pb2.Reading:
    at = BASE_TIME + timedelta(minutes=minute)
    if device.startswith("METER"):
        return meter(device, at, kwh_consumed_ac=1.0 + minute / 8, voltage=220 + minute % 7)
    return vehicle(
        device, at, soc=minute % 100, kwh_delivered_dc=0.5 + minute / 16, battery_temp=20 + minute % 9
    )


def _expected(minutes: list[int]) -> list[str]:
    seen: set[int] = set()
    newest = -1
    outcomes = []
    for minute in minutes:
        if minute in seen:
            outcomes.append("duplicate")
        elif minute < newest:
            outcomes.append("stale")
        else:
            outcomes.append("accepted")
        seen.add(minute)
        newest = max(newest, minute)
    return outcomes


async def _send_device(client: EnergyClient, device: str, minutes: list[int]) -> list[str]:
    outcomes: list[str] = []
    for start in range(0, len(minutes), PER_CALL):
        chunk = minutes[start : start + PER_CALL]
        summary = await client.ingest([_reading(device, m) for m in chunk])
        assert summary.rejected_count == 0, summary
        for index in range(len(chunk)):
            if index in summary.duplicate_indexes:
                outcomes.append("duplicate")
            elif index in summary.stale_indexes:
                outcomes.append("stale")
            else:
                outcomes.append("accepted")
    return outcomes


async def test_replicas_behind_round_robin_answer_as_one_server(database_url: str) -> None:
    replicas = [
        ServerProcess(database_url, {"ENERGY_PROCESSES": "2", "ENERGY_MAINTENANCE_INTERVAL_S": "0"}),
        ServerProcess(database_url, {"ENERGY_MAINTENANCE_INTERVAL_S": "0"}),
    ]
    ports = [await replica.start() for replica in replicas]
    try:
        plans = _plan(seed=15)
        target = ",".join(f"127.0.0.1:{port}" for port in ports)
        async with EnergyClient(target, timeout_s=30) as client:
            answered = await asyncio.gather(*(_send_device(client, d, m) for d, m in plans))
        # Every reading's outcome, exactly.
        for (device, minutes), outcomes in zip(plans, answered, strict=True):
            assert outcomes == _expected(minutes), device
    finally:
        logs = [list(replica.log) for replica in replicas]
        for replica in replicas:
            await replica.stop()

    # Each process claimed fleet shards of its own: three processes, disjoint ranges.
    by_process = [claimed_fleet_shards(log) for log in logs]
    assert [len(claimed) for claimed in by_process] == [2, 1], logs
    claimed = [shard for shards in by_process for process in shards for shard in process]
    assert len(claimed) == len(set(claimed))
    # The calls really went to both replicas: fleet rows from shards of each.
    used = {row[0] for row in await fetch(database_url, "SELECT DISTINCT shard FROM meter_fleet_minutely")}
    assert all(used & set().union(*shards) for shards in by_process), (used, by_process)
    assert used <= set(claimed)

    # current = newest per device; rollups == raw.
    for kind, device, value in (("meter", "meter_id", "kwh_consumed_ac"), ("vehicle", "vehicle_id", "soc")):
        newest = await fetch(
            database_url, f"SELECT {device}, max(ts) FROM {kind}_readings GROUP BY 1 ORDER BY 1"
        )
        current = await fetch(database_url, f"SELECT {device}, ts FROM {kind}_current ORDER BY 1")
        assert current == newest
        assert len(current) == DEVICES
        raw = await fetch(
            database_url,
            f"SELECT {device}, date_bin('1 hour', ts, timestamptz 'epoch'), count(*), sum({value}) "
            f"FROM {kind}_readings GROUP BY 1, 2 ORDER BY 1, 2",
        )
        hourly = await fetch(
            database_url,
            f"SELECT {device}, hour, reading_count, {value}_sum FROM {kind}_hourly ORDER BY 1, 2",
        )
        assert [r[:3] for r in hourly] == [r[:3] for r in raw]
        assert all(math.isclose(h[3], r[3]) for h, r in zip(hourly, raw, strict=True))
        raw_minutes = await fetch(
            database_url,
            f"SELECT date_bin('1 minute', ts, timestamptz 'epoch'), count(*), sum({value}) "
            f"FROM {kind}_readings GROUP BY 1 ORDER BY 1",
        )
        fleet = await fetch(
            database_url,
            f"SELECT minute, sum(reading_count), sum({value}_sum) FROM {kind}_fleet_minutely "
            "GROUP BY 1 ORDER BY 1",
        )
        assert [f[:2] for f in fleet] == [r[:2] for r in raw_minutes]
        assert all(math.isclose(f[2], r[2]) for f, r in zip(fleet, raw_minutes, strict=True))
