"""Time partitions and tiered retention (DESIGN.md section 6).

Six tables are range-partitioned on time (migration 0005). They form two
tiers that age together:

- raw: history (`*_readings`) and the fleet minute rollups, partitions of
  ENERGY_PARTITION_INTERVAL, kept for ENERGY_RAW_RETENTION;
- hourly: the per-device hourly rollups, partitions of
  ENERGY_ROLLUP_PARTITION_INTERVAL, kept for ENERGY_ROLLUP_RETENTION.

Partitions are created ahead of time by `Maintenance.run` (on a timer inside
the server, and by `energy-server maintain`), and on demand by
`PartitionGuard` before a batch that needs one is stored. Expired data
leaves by whole partitions: a run first moves the tier's horizon
(`retention_horizons`) and drops the partitions behind it only on a later
run, at least `DROP_DELAY` on, so that every server has read the new horizon
(they refresh it every `HORIZON_REFRESH_S`) before any data behind it goes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool

from energy_server.errors import from_database_error
from energy_server.settings import Settings, duration_text
from energy_server.storage.migrate import citus_installed
from energy_server.storage.pools import RenewablePool
from energy_server.storage.sql import partitions as sql

# A pool, or the service's pool that renews itself after an outage.
ConnectionSource = psycopg_pool.AsyncConnectionPool[Any] | RenewablePool

__all__ = [
    "DROP_DELAY",
    "HORIZON_REFRESH_S",
    "Horizons",
    "Maintenance",
    "MaintenanceReport",
    "Partition",
    "PartitionGuard",
    "PartitionLayout",
    "TableInventory",
    "Tier",
]

_log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How often a server reads the horizons again, and how long after a horizon
# moved its partitions may go: the delay covers a refresh and a long read.
HORIZON_REFRESH_S = 10.0
DROP_DELAY = timedelta(seconds=60)


class Tier(enum.StrEnum):
    RAW = "raw"
    HOURLY = "hourly"


TABLES: dict[Tier, tuple[str, ...]] = {
    Tier.RAW: ("meter_readings", "vehicle_readings", "meter_fleet_minutely", "vehicle_fleet_minutely"),
    Tier.HOURLY: ("meter_hourly", "vehicle_hourly"),
}


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime
    upper: datetime
    detach_pending: bool = False


@dataclass(frozen=True, slots=True)
class PartitionLayout:
    """The span of each tier's partitions, and how long each tier is kept."""

    raw_span: timedelta
    hourly_span: timedelta
    ahead: int
    raw_retention: timedelta | None
    hourly_retention: timedelta | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PartitionLayout:
        return cls(
            settings.partition_interval,
            settings.rollup_partition_interval,
            settings.partitions_ahead,
            settings.raw_retention,
            settings.rollup_retention,
        )

    def span(self, tier: Tier) -> timedelta:
        return self.raw_span if tier is Tier.RAW else self.hourly_span

    def retention(self, tier: Tier) -> timedelta | None:
        return self.raw_retention if tier is Tier.RAW else self.hourly_retention

    def bin_of(self, tier: Tier, instant: datetime) -> tuple[datetime, datetime]:
        """The aligned span holding `instant`: [lower, upper)."""
        span = self.span(tier)
        lower = instant - ((instant - EPOCH) % span)
        return lower, lower + span


def gaps(existing: Iterable[Partition], lower: datetime, upper: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [lower, upper) no partition covers (partitions made at
    another span, or by the migration, fill what they cover)."""
    missing = []
    cursor = lower
    for partition in sorted(existing, key=lambda p: p.lower):
        if partition.upper <= cursor or partition.lower >= upper:
            continue
        if partition.lower > cursor:
            missing.append((cursor, partition.lower))
        cursor = max(cursor, partition.upper)
    if cursor < upper:
        missing.append((cursor, upper))
    return missing


async def partitions_of(connection: psycopg.AsyncConnection[Any], table: str) -> list[Partition]:
    cursor = await connection.execute(sql.SELECT_PARTITIONS, {"parent": table})
    return [Partition(*row) for row in await cursor.fetchall()]


async def _fill(
    connection: psycopg.AsyncConnection[Any],
    tier: Tier,
    spans: Iterable[tuple[datetime, datetime]],
    *,
    reach_up: bool = False,
) -> list[str]:
    """Create what is missing of `spans` in every table of `tier`, in the
    caller's transaction, under the partition creators' lock.

    With `reach_up` (readings that found no partition) a missing span
    reaches up to the next partition above it: one partition then holds
    every late reading between, so however the readings are spread, a
    batch adds at most one partition per gap, not one per span it touches.
    """
    await connection.execute(sql.LOCK_PARTITION_DDL, {"key": sql.PARTITION_DDL_LOCK_KEY})
    wanted = sorted(spans)
    created = []
    for table in TABLES[tier]:
        existing = await partitions_of(connection, table)
        for lower, upper in wanted:
            for gap_lower, gap_upper in gaps(existing, lower, upper):
                if reach_up and gap_upper == upper:
                    above = [p.lower for p in existing if p.lower >= upper]
                    gap_upper = min(above, default=upper)
                cursor = await connection.execute(
                    sql.CREATE_PARTITION, {"parent": table, "lower": gap_lower, "upper": gap_upper}
                )
                row = await cursor.fetchone()
                created.append(str(row[0]) if row else table)
                existing.append(Partition(table, gap_lower, gap_upper))
    return created


@dataclass(slots=True)
class Horizons:
    """What retention has removed, as this server last read it: data of a
    tier older than its `kept_since` is gone (or about to go)."""

    kept_since: dict[Tier, datetime] = field(default_factory=dict)
    moved_at: dict[Tier, datetime] = field(default_factory=dict)

    async def refresh(self, connection: psycopg.AsyncConnection[Any]) -> None:
        cursor = await connection.execute(sql.SELECT_HORIZONS)
        rows = await cursor.fetchall()
        self.kept_since = {Tier(tier): kept for tier, kept, _ in rows}
        self.moved_at = {Tier(tier): moved for tier, _, moved in rows}

    def raw(self) -> datetime | None:
        return self.kept_since.get(Tier.RAW)

    def hourly(self) -> datetime | None:
        return self.kept_since.get(Tier.HOURLY)

    def earliest_reading(self, now: datetime, retention: timedelta | None) -> datetime | None:
        """The oldest timestamp a reading may carry now: behind this it would be
        stored into a partition that retention drops (or has dropped)."""
        bounds = [b for b in (None if retention is None else now - retention, self.raw()) if b is not None]
        return max(bounds) if bounds else None

    async def keep_fresh(self, pool: ConnectionSource) -> None:
        """Read the horizons every HORIZON_REFRESH_S until cancelled; failures only log."""
        while True:
            await asyncio.sleep(HORIZON_REFRESH_S)
            try:
                async with pool.connection() as connection:
                    await self.refresh(connection)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                _log.warning("could not read the retention horizons (keeping the last read): %s", error)


class PartitionGuard:
    """Makes sure the partitions a batch writes to exist, before its transaction.

    Remembers which spans it has seen covered, so the usual batch (every
    reading inside an already-checked span) costs a set lookup per span.
    Creation runs in a transaction of its own, never inside a batch's: a
    batch never waits on DDL while holding locks.
    """

    def __init__(self, layout: PartitionLayout) -> None:
        self._layout = layout
        self._raw_us = _microseconds(layout.raw_span)
        self._hourly_us = _microseconds(layout.hourly_span)
        self._ready: set[tuple[Tier, int]] = set()

    def missing(self, ts_us: Iterable[int]) -> dict[Tier, set[int]]:
        """Span numbers (since the epoch) of each tier not yet known to be covered."""
        raw = {ts // self._raw_us for ts in ts_us}
        hourly = {ts // self._hourly_us for ts in ts_us}
        result = {
            Tier.RAW: {n for n in raw if (Tier.RAW, n) not in self._ready},
            Tier.HOURLY: {n for n in hourly if (Tier.HOURLY, n) not in self._ready},
        }
        return {tier: numbers for tier, numbers in result.items() if numbers}

    async def prepare(self, connection: psycopg.AsyncConnection[Any], ts_us: list[int]) -> list[str]:
        """Create the partitions these readings need; the names of those created."""
        missing = self.missing(ts_us)
        if not missing:
            return []
        created = []
        async with connection.transaction():
            for tier, numbers in missing.items():
                span = self._layout.span(tier)
                spans = [(EPOCH + n * span, EPOCH + (n + 1) * span) for n in sorted(numbers)]
                # Without retention a partition never has to go on its own, so late
                # readings share one per gap; with it, partitions stay one span
                # each (at most retention / span of them), so that each expires on time.
                reach_up = self._layout.retention(tier) is None
                created += await _fill(connection, tier, spans, reach_up=reach_up)
        for tier, numbers in missing.items():
            self._ready.update((tier, n) for n in numbers)
        if created:
            _log.info("created partitions %s for readings outside the prepared ones", ", ".join(created))
        return created

    def forget(self) -> None:
        """After a batch found a partition missing (retention dropped it, or an
        operator did): check again from the catalog."""
        self._ready.clear()


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


@dataclass(frozen=True, slots=True)
class TableInventory:
    """One partitioned table as a maintenance run left it."""

    table: str
    tier: Tier
    partitions: int
    oldest: datetime | None  # lower bound of the oldest partition
    newest: datetime | None  # upper bound of the newest partition
    ahead: int  # partitions wholly after the one holding now


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    started: datetime
    seconds: float
    outcome: str  # "ok", "failed", "skipped" (another instance held the lock)
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    horizons_moved: tuple[tuple[Tier, datetime], ...] = ()
    inventory: tuple[TableInventory, ...] = ()
    error: str = ""


class Maintenance:
    """Creates partitions ahead, moves the retention horizons, drops what
    expired, and reports the tables' partitions."""

    def __init__(
        self,
        database_url: str,
        layout: PartitionLayout,
        *,
        drop_delay: timedelta = DROP_DELAY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        horizons: Horizons | None = None,
    ) -> None:
        self._database_url = database_url
        self._layout = layout
        # Read again at the end of every run: a run may have moved them.
        self.horizons = horizons or Horizons()
        self._drop_delay = drop_delay
        self._clock = clock
        self.last: MaintenanceReport | None = None

    async def run(
        self, *, wait_for_lock: bool = False, say: Callable[[str], None] | None = None
    ) -> MaintenanceReport:
        """One run. Without `wait_for_lock`, a run another instance is doing
        counts as `skipped`; `say` hears each step (the CLI's progress)."""
        started = self._clock()
        began = time.monotonic()
        tell = say or (lambda _: None)
        try:
            async with await psycopg.AsyncConnection.connect(
                self._database_url, autocommit=True
            ) as connection:
                if not await self._lock(connection, wait_for_lock, tell):
                    report = MaintenanceReport(
                        started,
                        time.monotonic() - began,
                        "skipped",
                        inventory=await self._inventory(connection, started),
                    )
                else:
                    try:
                        report = await self._run_locked(connection, started, began, tell)
                    finally:
                        await connection.execute(sql.UNLOCK_MAINTENANCE, {"key": sql.MAINTENANCE_LOCK_KEY})
                await self.horizons.refresh(connection)
        except psycopg.Error as error:
            failure = from_database_error(error)
            _log.error("partition maintenance failed: %s", failure)
            report = MaintenanceReport(started, time.monotonic() - began, "failed", error=str(failure))
        self.last = report
        self._warn_if_short(report)
        return report

    async def _lock(
        self, connection: psycopg.AsyncConnection[Any], wait: bool, tell: Callable[[str], None]
    ) -> bool:
        told = False
        while True:
            cursor = await connection.execute(sql.TRY_LOCK_MAINTENANCE, {"key": sql.MAINTENANCE_LOCK_KEY})
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return True
            if not wait:
                return False
            if not told:
                tell("another instance is running maintenance; waiting for it to finish")
                told = True
            await asyncio.sleep(1.0)

    async def _run_locked(
        self,
        connection: psycopg.AsyncConnection[Any],
        now: datetime,
        began: float,
        tell: Callable[[str], None],
    ) -> MaintenanceReport:
        horizons = Horizons()
        await horizons.refresh(connection)
        concurrently = not await citus_installed(connection)
        dropped = await self._drop_behind_horizons(connection, horizons, now, tell, concurrently)
        moved = await self._move_horizons(connection, horizons, now, tell)
        created = await self._create_ahead(connection, now, tell)
        return MaintenanceReport(
            now,
            time.monotonic() - began,
            "ok",
            created=tuple(created),
            dropped=tuple(dropped),
            horizons_moved=tuple(moved),
            inventory=await self._inventory(connection, now),
        )

    async def _create_ahead(
        self, connection: psycopg.AsyncConnection[Any], now: datetime, tell: Callable[[str], None]
    ) -> list[str]:
        created = []
        for tier in Tier:
            lower, _ = self._layout.bin_of(tier, now)
            span = self._layout.span(tier)
            spans = [(lower + n * span, lower + (n + 1) * span) for n in range(self._layout.ahead + 1)]
            async with connection.transaction():
                names = await _fill(connection, tier, spans)
            for name in names:
                tell(f"created partition {name}")
            created += names
        return created

    async def _move_horizons(
        self,
        connection: psycopg.AsyncConnection[Any],
        horizons: Horizons,
        now: datetime,
        tell: Callable[[str], None],
    ) -> list[tuple[Tier, datetime]]:
        """Announce, per tier, the oldest instant to keep: the lower bound of the
        oldest partition that is not wholly older than `now - retention`."""
        moved = []
        for tier in Tier:
            retention = self._layout.retention(tier)
            if retention is None:
                continue
            cutoff = now - retention
            expired = [
                p.upper
                for table in TABLES[tier]
                for p in await partitions_of(connection, table)
                if p.upper <= cutoff
            ]
            if not expired:
                continue
            kept_since = max(expired)
            current = horizons.kept_since.get(tier)
            if current is not None and current >= kept_since:
                continue
            await connection.execute(sql.UPSERT_HORIZON, {"tier": tier.value, "kept_since": kept_since})
            tell(
                f"{tier.value} horizon moved to {kept_since.isoformat()} "
                f"(retention {duration_text(retention)}); its partitions go on a run after "
                f"{(now + self._drop_delay).isoformat()}"
            )
            moved.append((tier, kept_since))
        return moved

    async def _drop_behind_horizons(
        self,
        connection: psycopg.AsyncConnection[Any],
        horizons: Horizons,
        now: datetime,
        tell: Callable[[str], None],
        concurrently: bool,
    ) -> list[str]:
        dropped = []
        for tier in Tier:
            kept_since = horizons.kept_since.get(tier)
            moved_at = horizons.moved_at.get(tier)
            for table in TABLES[tier]:
                for partition in await partitions_of(connection, table):
                    # An interrupted DETACH ... CONCURRENTLY is finished whatever its age.
                    if partition.detach_pending:
                        await connection.execute(sql.finalize_detach(table, partition.name))
                        await connection.execute(sql.drop_detached_partition(partition.name))
                        dropped.append(partition.name)
                        tell(f"finished dropping partition {partition.name}")
                        continue
                    if kept_since is None or moved_at is None or partition.upper > kept_since:
                        continue
                    if now - moved_at < self._drop_delay:
                        continue  # servers may not have read the new horizon yet
                    await connection.execute(
                        sql.detach_partition(table, partition.name, concurrently=concurrently)
                    )
                    await connection.execute(sql.drop_detached_partition(partition.name))
                    dropped.append(partition.name)
                    tell(f"dropped partition {partition.name} (before the {tier.value} horizon)")
        return dropped

    async def _inventory(
        self, connection: psycopg.AsyncConnection[Any], now: datetime
    ) -> tuple[TableInventory, ...]:
        tables = []
        for tier in Tier:
            _, current_upper = self._layout.bin_of(tier, now)
            for table in TABLES[tier]:
                partitions = await partitions_of(connection, table)
                tables.append(
                    TableInventory(
                        table,
                        tier,
                        len(partitions),
                        partitions[0].lower if partitions else None,
                        max(p.upper for p in partitions) if partitions else None,
                        sum(1 for p in partitions if p.lower >= current_upper),
                    )
                )
        return tuple(tables)

    def _warn_if_short(self, report: MaintenanceReport) -> None:
        for table in report.inventory:
            if table.ahead < self._layout.ahead:
                _log.warning(
                    "%s has %d partitions ahead of now, fewer than ENERGY_PARTITIONS_AHEAD=%d",
                    table.table,
                    table.ahead,
                    self._layout.ahead,
                )

    async def run_forever(self, interval_s: float) -> None:
        """The server's timer: a run every `interval_s`, failures logged, never raised."""
        while True:
            await asyncio.sleep(interval_s)
            report = await self.run()
            if report.outcome == "ok" and (report.created or report.dropped or report.horizons_moved):
                _log.info(
                    "partition maintenance: %d created, %d dropped, %d horizons moved in %.2f s",
                    len(report.created),
                    len(report.dropped),
                    len(report.horizons_moved),
                    report.seconds,
                )
