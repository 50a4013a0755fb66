"""How the group committer spreads readings over transactions, against the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg_pool
import pytest

from energy_server.domain import MeterValues, Outcome
from energy_server.group_commit import GroupCommitter
from energy_server.metrics import ServerMetrics
from energy_server.storage.repository import ReadingRepository
from tests.support import BASE_TIME, fetch

BASE_US = int(BASE_TIME.timestamp()) * 1_000_000
LANES = 2


@pytest.fixture
async def committed(database_url: str) -> AsyncIterator[tuple[GroupCommitter, ServerMetrics]]:
    async with psycopg_pool.AsyncConnectionPool(
        database_url, min_size=LANES, max_size=LANES, open=False
    ) as pool:
        metrics = ServerMetrics()
        committer = GroupCommitter(
            ReadingRepository(pool),
            writers=LANES,
            batch_max_readings=2000,
            linger_s=0.0,
            max_pending_readings=100_000,
            metrics=metrics,
        )
        committer.start()
        try:
            yield committer, metrics
        finally:
            await committer.close()


def _calls(count: int, readings_per_call: int) -> list[list[MeterValues]]:
    """Calls of distinct meters (so, with many, readings for every lane)."""
    return [
        [MeterValues(f"M-{call}-{n}", BASE_US, 1.0, 230.0) for n in range(readings_per_call)]
        for call in range(count)
    ]


def _transactions(metrics: ServerMetrics) -> int:
    return metrics.snapshot((), 0).batches_committed


async def _fleet_rollup_shards(database_url: str) -> list[int]:
    """The shards (writers) that added to the fleet rollup: one per transaction here."""
    rows = await fetch(database_url, "SELECT DISTINCT shard FROM meter_fleet_minutely ORDER BY 1")
    return [row[0] for row in rows]


async def test_small_batches_of_all_lanes_share_one_transaction(
    committed: tuple[GroupCommitter, ServerMetrics], database_url: str
) -> None:
    committer, metrics = committed
    # Queued in one go, before any lane's writer runs: the first writer's batch is
    # small, so it takes the other lane's readings along.
    answers = await asyncio.gather(*(committer.write(call) for call in _calls(40, 1)))
    assert answers == [[Outcome.ACCEPTED]] * 40
    assert _transactions(metrics) == 1
    assert len(await _fleet_rollup_shards(database_url)) == 1  # one writer's shard holds them all


async def test_large_batches_commit_in_parallel_one_transaction_per_lane(
    committed: tuple[GroupCommitter, ServerMetrics], database_url: str
) -> None:
    committer, metrics = committed
    # 500 readings per call: each lane's batch is far past the small-batch size.
    answers = await asyncio.gather(*(committer.write(call) for call in _calls(2, 500)))
    assert answers == [[Outcome.ACCEPTED] * 500] * 2
    assert _transactions(metrics) == LANES
    assert await _fleet_rollup_shards(database_url) == list(range(LANES))
