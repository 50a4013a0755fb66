"""GroupCommitter: readings from concurrent calls share write transactions.

Devices are spread over a fixed set of lanes by a hash of their id; each lane
has one writer task and at most one open transaction. A lane's writer takes
everything waiting in its lane, up to the batch limit, and stores it in one
transaction; while that commits, new readings pile up and go together in the
next. So:

* one small call costs a share of a commit, not a whole one (group commit),
  and a lone call waits for nobody;
* a device's readings are committed in the order they arrived, so "stale"
  means exactly "older than a reading that arrived before it", and two
  transactions of this service never touch the same device's rows (no lock
  waits between lanes, no deadlocks);
* the number of open transactions is the number of lanes, however many calls
  arrive;
* a batch the database rejects is committed again call by call, so one
  call's readings never fail another's;
* a small batch takes along what waits in idle lanes: under many small calls
  the lanes share transactions, under large ones they commit in parallel.

Load is bounded too: at most `max_pending_readings` readings wait for a
lane, exactly. `write()` waits for room, up to `overload_wait_s` (None: as
long as it takes, for callers whose work was already admitted by a budget
of their own), then refuses with Overloaded instead of queueing without end.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from energy_server.admission import Capacity
from energy_server.domain import MeterValues, Outcome, ValidReading
from energy_server.errors import DatabaseUnavailable, StorageFailure
from energy_server.metrics import ServerMetrics
from energy_server.storage.repository import ReadingRepository

__all__ = ["GroupCommitter"]

# A lane that finished a commit this recently is under load.
_BUSY_WINDOW_S = 0.010
# A batch smaller than this takes along what waits in lanes that are not
# committing. Each transaction costs the server a fixed share of CPU (about
# 0.5 ms for a batch of a few readings, measured), so under many small calls
# fewer, larger transactions serve more of them; large batches keep every
# lane's transaction running in parallel in PostgreSQL.
_SMALL_BATCH = 64


@dataclass(slots=True)
class _Part:
    """The readings of one call that fall in one lane."""

    readings: list[ValidReading]
    done: asyncio.Future[list[Outcome]]


@dataclass(slots=True)
class _Lane:
    queue: deque[_Part] = field(default_factory=deque)
    waiting: int = 0
    has_work: asyncio.Event = field(default_factory=asyncio.Event)
    # Held while a transaction carries this lane's readings: its own writer's,
    # or another lane's that took them along. One at a time keeps each device's
    # readings committed in arrival order.
    committing: asyncio.Lock = field(default_factory=asyncio.Lock)


class GroupCommitter:
    """Batches readings of concurrent calls into shared transactions, per lane."""

    def __init__(
        self,
        repository: ReadingRepository,
        *,
        writers: int,
        batch_max_readings: int,
        linger_s: float,
        max_pending_readings: int,
        metrics: ServerMetrics,
        overload_wait_s: float | None = 0.0,
        database_reachable: Callable[[], bool] = lambda: True,
        first_shard: int = 0,
    ) -> None:
        self._repository = repository
        self._first_shard = first_shard
        self._metrics = metrics
        self._lanes = [_Lane() for _ in range(writers)]
        self._batch_max = batch_max_readings
        self._linger_s = linger_s
        self.pending = Capacity(
            "pending_readings", max_pending_readings, overload_wait_s, "readings waiting for a write lane"
        )
        self._database_reachable = database_reachable
        self._writers: list[asyncio.Task[None]] = []
        self.readings_submitted = 0
        self._submission_watchers: list[tuple[int, asyncio.Future[None]]] = []

    def start(self) -> None:
        self._writers = [
            asyncio.create_task(self._run_writer(self._first_shard + i, lane), name=f"group-commit-lane-{i}")
            for i, lane in enumerate(self._lanes)
        ]

    async def close(self) -> None:
        """Stop the writers; call after the server stopped taking calls."""
        for task in self._writers:
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        for lane in self._lanes:
            self._fail(self._take_batch(lane, math.inf), DatabaseUnavailable("the server is shutting down"))

    @property
    def writer_count(self) -> int:
        return len(self._lanes)

    @property
    def pending_readings(self) -> int:
        return self.pending.in_use

    async def write(self, readings: Sequence[ValidReading]) -> list[Outcome]:
        """Store `readings` durably; returns their outcomes once all are committed.

        If the caller is cancelled meanwhile, the readings may still be
        committed: callers only ever report what this returned.
        """
        if not readings:
            return []
        if not self._database_reachable():
            raise DatabaseUnavailable("the database is unreachable")
        # Taken here, in the step that checks it, so that the limit holds exactly;
        # _take_batch gives it back as lanes take the readings into transactions.
        await self.pending.acquire(len(readings))
        lane_count = len(self._lanes)
        if lane_count == 1:
            return await self._submit(self._lanes[0], list(readings))
        # Split by lane, remembering each reading's position to reassemble the outcomes.
        positions: list[list[int]] = [[] for _ in range(lane_count)]
        parts: list[list[ValidReading]] = [[] for _ in range(lane_count)]
        for position, reading in enumerate(readings):
            device_id = reading.meter_id if isinstance(reading, MeterValues) else reading.vehicle_id
            lane = hash(device_id) % lane_count
            positions[lane].append(position)
            parts[lane].append(reading)
        used = [i for i in range(lane_count) if parts[i]]
        if len(used) == 1:
            return await self._submit(self._lanes[used[0]], parts[used[0]])
        # Every part is queued before the first await: what was taken from the
        # pending budget is in the lanes, whatever happens to this caller.
        results = await asyncio.gather(*[self._submit(self._lanes[i], parts[i]) for i in used])
        outcomes: list[Outcome] = [Outcome.ACCEPTED] * len(readings)
        for lane_index, lane_outcomes in zip(used, results, strict=True):
            for position, outcome in zip(positions[lane_index], lane_outcomes, strict=True):
                outcomes[position] = outcome
        return outcomes

    def _submit(self, lane: _Lane, readings: list[ValidReading]) -> asyncio.Future[list[Outcome]]:
        """Queue a part in its lane now; the future of its outcomes."""
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        lane.queue.append(_Part(readings, done))
        lane.waiting += len(readings)
        self.readings_submitted += len(readings)
        if self._submission_watchers:
            self._notify_submission_watchers()
        lane.has_work.set()
        return done

    async def until_submitted(self, total: int) -> None:
        """Return once `readings_submitted` has reached `total` (for tests and tools)."""
        if self.readings_submitted >= total:
            return
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submission_watchers.append((total, reached))
        await reached

    def _notify_submission_watchers(self) -> None:
        waiting = []
        for total, reached in self._submission_watchers:
            if self.readings_submitted >= total:
                if not reached.done():
                    reached.set_result(None)
            else:
                waiting.append((total, reached))
        self._submission_watchers = waiting

    def _take_batch(self, lane: _Lane, limit: float) -> list[_Part]:
        batch: list[_Part] = []
        taken = 0
        while lane.queue and (not batch or taken + len(lane.queue[0].readings) <= limit):
            part = lane.queue.popleft()
            batch.append(part)
            taken += len(part.readings)
        lane.waiting -= taken
        self.pending.release(taken)
        if not lane.queue:
            lane.has_work.clear()
        return batch

    async def _run_writer(self, shard: int, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        last_commit_end = -math.inf
        while True:
            await lane.has_work.wait()
            # Under load (this lane committed moments ago) linger so that calls
            # arriving meanwhile share the next transaction; an idle lane starts
            # at once, so a lone call waits for nobody.
            busy = loop.time() - last_commit_end < _BUSY_WINDOW_S
            if busy and self._linger_s > 0 and lane.waiting < self._batch_max:
                await asyncio.sleep(self._linger_s)
            async with lane.committing:
                batch = self._take_batch(lane, self._batch_max)
                lanes_taken_along = await self._take_along(batch)
                try:
                    if batch:  # empty when another lane took this one's readings along
                        await self._commit(batch, shard)
                finally:
                    for other in lanes_taken_along:
                        other.committing.release()
            last_commit_end = loop.time()

    async def _take_along(self, batch: list[_Part]) -> list[_Lane]:
        """Add to a small batch what waits in lanes that are not committing.

        Returns the lanes taken from, locked: the caller releases them after
        its commit, so that their writers cannot commit newer readings first.
        """
        taken = sum(len(part.readings) for part in batch)
        if not batch or taken >= _SMALL_BATCH:
            return []
        lanes_taken: list[_Lane] = []
        for other in self._lanes:
            fits = bool(other.queue) and taken + len(other.queue[0].readings) <= self._batch_max
            if fits and not other.committing.locked():
                await other.committing.acquire()  # free, so taken at once: nothing runs in between
                parts = self._take_batch(other, self._batch_max - taken)
                batch += parts
                taken += sum(len(part.readings) for part in parts)
                lanes_taken.append(other)
        return lanes_taken

    @staticmethod
    def _fail(batch: list[_Part], error: Exception) -> None:
        for part in batch:
            if not part.done.done():
                part.done.set_exception(error)

    async def _commit(self, batch: list[_Part], shard: int) -> None:
        readings = [reading for part in batch for reading in part.readings]
        started = time.perf_counter()
        try:
            # A lane's transactions never overlap: it has a fleet-rollup shard of its own.
            outcomes = await self._repository.store_readings(readings, shard)
        except Exception as error:  # every waiter must hear of the failure
            self._metrics.record_failed_commit()
            if isinstance(error, StorageFailure) and len(batch) > 1:
                # The database rejected something in the shared transaction, which
                # rolled back whole: commit each call's readings alone, in arrival
                # order, so that a rejection fails only the call that brought it.
                for part in batch:
                    await self._commit([part], shard)
            else:
                self._fail(batch, error)
            return
        self._metrics.record_commit(outcomes, time.perf_counter() - started)
        start = 0
        for part in batch:
            end = start + len(part.readings)
            if not part.done.done():
                part.done.set_result(outcomes[start:end])
            start = end
