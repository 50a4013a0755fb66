"""ReadingRepository stores batches of valid readings; AnalyticsRepository
answers the read-side questions. Each owns its transactions and raises domain
errors only: every psycopg error is translated by `errors.from_database_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import psycopg
import psycopg.sql
import psycopg_pool

from energy_server.domain import (
    Aggregate,
    Coverage,
    DeviceKind,
    EfficiencyAnomaly,
    FieldStatistics,
    FieldViolation,
    MeterValues,
    Outcome,
    Resolution,
    ValidReading,
    VehicleLink,
    VehicleValues,
    Window,
)
from energy_server.errors import (
    DatabaseUnavailable,
    MissingPartition,
    NotFound,
    OutOfRange,
    from_database_error,
)
from energy_server.settings import Settings
from energy_server.storage.partitions import ConnectionSource, Horizons, PartitionGuard, PartitionLayout
from energy_server.storage.pools import RenewablePool
from energy_server.storage.sql import analytics as analytics_sql
from energy_server.storage.sql import readings as sql

__all__ = ["AnalyticsRepository", "ReadingRepository", "configure_read_connection"]

_log = logging.getLogger(__name__)


class _PooledRepository:
    def __init__(
        self,
        pool: ConnectionSource,
        database_reachable: Callable[[], bool] = lambda: True,
    ) -> None:
        self._pool = pool
        self._database_reachable = database_reachable

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Borrow a connection for one transaction; database errors leave as domain errors."""
        if not self._database_reachable():
            # Fail fast instead of waiting out the pool timeout during an outage.
            raise DatabaseUnavailable("the database is unreachable")
        try:
            async with self._pool.connection() as connection:
                yield connection
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise from_database_error(error, database_reachable=self._database_reachable()) from error

    @asynccontextmanager
    async def _spare_connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any] | None]:
        """A second connection for a call that holds one, if one is idle in the
        pool now; else None, and the call makes do with the one it has.

        Never waited for: callers each holding a connection and waiting for a
        second would wait for each other. Use it inside `_transaction()`, which
        translates its errors.
        """
        pool = self._pool.pool if isinstance(self._pool, RenewablePool) else self._pool
        connection = None
        with contextlib.suppress(psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests):
            connection = await pool.getconn(timeout=_SPARE_CONNECTION_WAIT_S)
        if connection is None:
            yield None
            return
        try:
            yield connection
        finally:
            await pool.putconn(connection)


# How long `_spare_connection` waits: one idle in the pool is lent at once.
_SPARE_CONNECTION_WAIT_S = 0.001


class DatabaseProbe:
    """Whether PostgreSQL answers, over a connection of its own: busy pools
    must not look like an outage, and an outage must show even when no call
    is using the pools.

    The ping runs on an event loop of its own, in a thread of its own, and
    its timeout is kept there: a serving loop saturated by a storm of calls
    delays when the answer is read, never whether it counted as in time.
    """

    def __init__(self, conninfo: str, timeout_s: float) -> None:
        self._conninfo = conninfo
        self._timeout_s = timeout_s
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="database-probe", daemon=True)
        self._thread.start()

    async def ping(self) -> None:
        """Return when the database answered within the timeout; DatabaseUnavailable otherwise."""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._ping(), self._loop))

    async def _ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await self._connection.execute(sql.PING)
        except TimeoutError as error:
            await self._disconnect()
            raise DatabaseUnavailable("the database did not answer in time") from error
        except psycopg.Error as error:
            await self._disconnect()
            raise from_database_error(error, database_reachable=False) from error

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                await connection.close()

    async def close(self) -> None:
        if self._loop.is_closed():
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()


class ReadingRepository(_PooledRepository):
    """Reading storage over a psycopg connection pool."""

    def __init__(
        self,
        pool: ConnectionSource,
        database_reachable: Callable[[], bool] = lambda: True,
        *,
        layout: PartitionLayout | None = None,
    ) -> None:
        super().__init__(pool, database_reachable)
        self._partitions = PartitionGuard(layout or PartitionLayout.from_settings(Settings()))

    async def claim_fleet_shards(self, count: int) -> int:
        """The first of `count` consecutive fleet-rollup shards for this process.

        Numbers come from a database sequence, so processes of any number of
        replicas on one database get disjoint ranges (until 32,768 / `count`
        processes have started while the first one still runs)."""
        async with self._transaction() as connection:
            cursor = await connection.execute(sql.CLAIM_WRITER_NUMBER)
            row = await cursor.fetchone()
            await connection.commit()
        assert row is not None
        return int(row[0]) % (sql.FLEET_SHARDS // count) * count

    async def store_readings(self, readings: Sequence[ValidReading], shard: int = 0) -> list[Outcome]:
        """Store a batch in one transaction; the outcome of each reading, in order.

        A reading repeating an earlier one of the batch (same device and
        timestamp) is a duplicate, like one repeating a stored reading.
        `shard` picks the fleet rollup rows this batch adds to: writers that
        run concurrently should use different shards (0-32767). The
        partitions the batch needs are created first when missing, in a
        transaction of their own.
        """
        outcomes = [Outcome.ACCEPTED] * len(readings)
        first_seen: set[tuple[bool, str, int]] = set()
        meters: list[tuple[int, MeterValues]] = []
        vehicles: list[tuple[int, VehicleValues]] = []
        for position, reading in enumerate(readings):
            if isinstance(reading, MeterValues):
                key = (True, reading.meter_id, reading.ts_us)
                batch: list[Any] = meters
            else:
                key = (False, reading.vehicle_id, reading.ts_us)
                batch = vehicles
            if key in first_seen:
                outcomes[position] = Outcome.DUPLICATE
            else:
                first_seen.add(key)
                batch.append((position, reading))

        statements = (
            (sql.STORE_METER_BATCH, len(meters), _meter_columns(meters)),
            (sql.STORE_VEHICLE_BATCH, len(vehicles), _vehicle_columns(vehicles)),
        )
        instants = [ts for _, _, columns in statements for ts in columns["ts_us"]]
        try:
            await self._prepare_partitions(instants)
            return await self._store(statements, shard, outcomes)
        except MissingPartition:
            # Dropped since this server last looked (an operator, or retention
            # racing a reading at its horizon): look again, once. The failed
            # transaction stored nothing, so storing again is exact.
            self._partitions.forget()
            await self._prepare_partitions(instants)
            return await self._store(statements, shard, outcomes)

    async def _prepare_partitions(self, instants: list[int]) -> None:
        if self._partitions.missing(instants):
            async with self._transaction() as connection:
                await self._partitions.prepare(connection, instants)

    async def _store(
        self,
        statements: tuple[tuple[bytes, int, dict[str, list[Any]]], ...],
        shard: int,
        outcomes: list[Outcome],
    ) -> list[Outcome]:
        async with self._transaction() as connection:
            async with connection.pipeline():
                if any(count > _GENERIC_PLAN_UP_TO for _, count, _ in statements):
                    await connection.execute(sql.PLAN_EACH_BATCH)
                cursors = [
                    await connection.execute(
                        statement,
                        {"shard": shard, **columns},
                        prepare=True,
                        binary=True,
                    )
                    for statement, count, columns in statements
                    if count
                ]
                # COMMIT goes in the same pipeline: one round trip for the whole transaction.
                await connection.commit()
            # Only readings that were not plainly accepted come back.
            for cursor in cursors:
                for position, outcome in await cursor.fetchall():
                    outcomes[position] = _OUTCOME_OF[outcome]
        return outcomes

    async def rebuild_rollups(self, kind: DeviceKind) -> tuple[int, int]:
        """Recompute a kind's rollups from history; (hourly rows, fleet minute rows)."""
        lock, deletes, hourly, fleet = _REBUILD[kind]
        async with self._transaction() as connection:
            await connection.execute(lock)
            for delete in deletes:
                await connection.execute(delete)
            hourly_rows = (await connection.execute(hourly)).rowcount
            fleet_rows = (await connection.execute(fleet)).rowcount
            return hourly_rows, fleet_rows


_REBUILD = {
    DeviceKind.METER: (
        sql.LOCK_METER_HISTORY,
        sql.DELETE_METER_ROLLUPS,
        sql.INSERT_METER_HOURLY_FROM_HISTORY,
        sql.INSERT_METER_FLEET_FROM_HISTORY,
    ),
    DeviceKind.VEHICLE: (
        sql.LOCK_VEHICLE_HISTORY,
        sql.DELETE_VEHICLE_ROLLUPS,
        sql.INSERT_VEHICLE_HOURLY_FROM_HISTORY,
        sql.INSERT_VEHICLE_FLEET_FROM_HISTORY,
    ),
}

# Every store statement is prepared: PostgreSQL then parses and analyses its
# text (about 60 KB) once per connection instead of once per batch. Planning it
# costs about 1.4 ms; the generic plan skips that but, not knowing the batch's
# size, picks nested loops. Measured per statement (ms per batch, custom vs
# generic): 1 row 2.0 vs 0.6, 8 rows 2.2 vs 0.8, 32 rows 3.1 vs 2.2, 128 rows
# 8.1 vs 6.2, 500 rows 22 vs 35. So a transaction with a statement of more
# readings than this is planned for its own batch (PLAN_EACH_BATCH).
_GENERIC_PLAN_UP_TO = 128

_OUTCOME_OF = {sql.OUTCOME_DUPLICATE: Outcome.DUPLICATE, sql.OUTCOME_STALE: Outcome.STALE}


def _meter_columns(meters: list[tuple[int, MeterValues]]) -> dict[str, list[Any]]:
    return {
        "positions": [p for p, _ in meters],
        "device_ids": [m.meter_id for _, m in meters],
        "ts_us": [m.ts_us for _, m in meters],
        "kwh_consumed_ac": [m.kwh_consumed_ac for _, m in meters],
        "voltage": [m.voltage for _, m in meters],
    }


def _vehicle_columns(vehicles: list[tuple[int, VehicleValues]]) -> dict[str, list[Any]]:
    return {
        "positions": [p for p, _ in vehicles],
        "device_ids": [v.vehicle_id for _, v in vehicles],
        "ts_us": [v.ts_us for _, v in vehicles],
        "soc": [v.soc for _, v in vehicles],
        "kwh_delivered_dc": [v.kwh_delivered_dc for _, v in vehicles],
        "battery_temp": [v.battery_temp for _, v in vehicles],
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)
_QUARTER = timedelta(minutes=15)
_TABLES = {DeviceKind.METER: analytics_sql.METER, DeviceKind.VEHICLE: analytics_sql.VEHICLE}


def _floor(instant: datetime, period: timedelta) -> datetime:
    """The last boundary of `period` (aligned on the Unix epoch) at or before `instant`."""
    return instant - (instant - _EPOCH) % period


def _ceil(instant: datetime, period: timedelta) -> datetime:
    """The first boundary of `period` (aligned on the Unix epoch) at or after `instant`."""
    return instant + (-(instant - _EPOCH) % period)


def _ranges(window: Window, period: timedelta | None) -> dict[str, datetime]:
    """Split a window into whole rollup periods and raw head and tail edges.

    `period` None (no rollups wanted) reads the whole window raw.
    """
    if period is not None:
        first_whole, last_whole = _ceil(window.start, period), _floor(window.end, period)
        if first_whole < last_whole:
            return {
                "rollup_start": first_whole,
                "rollup_end": last_whole,
                "head_start": window.start,
                "head_end": first_whole,
                "tail_start": last_whole,
                "tail_end": window.end,
            }
    # No whole period (or raw wanted): everything from history, empty rollup range.
    return {
        "rollup_start": window.start,
        "rollup_end": window.start,
        "head_start": window.start,
        "head_end": window.end,
        "tail_start": window.end,
        "tail_end": window.end,
    }


def _with_edge_hours(window: Window, period: timedelta | None) -> dict[str, datetime | int | None]:
    """`_ranges` plus the rollup periods holding the raw edges, where there are whole periods,
    and the quarter-hour boundaries that split each edge (SELECT_ANOMALIES says how).

    `head_hour` is the period the head lies in, `tail_hour` the one the tail
    starts; None where that edge is empty or the window is read raw.
    `head_split` is the first quarter boundary at or after the window's start,
    `tail_split` the last at or before its end.
    """
    ranges = _ranges(window, period)
    head_split, tail_split = _ceil(window.start, _QUARTER), _floor(window.end, _QUARTER)
    splits: dict[str, datetime | int] = {
        "head_split": head_split,
        "tail_split": tail_split,
        # Quarters of the edge hours inside the window, as 1-based array bounds
        # (a head starting at :00 of its hour has none: it is a whole hour).
        "head_first_quarter": (head_split - _floor(window.start, _HOUR)) // _QUARTER + 1,
        "tail_last_quarter": (tail_split - _floor(window.end, _HOUR)) // _QUARTER,
    }
    if period is None or ranges["rollup_start"] == ranges["rollup_end"]:
        return {**ranges, **splits, "head_hour": None, "tail_hour": None}
    start, end = ranges["rollup_start"], ranges["rollup_end"]
    return {
        **ranges,
        **splits,
        "head_hour": start - period if window.start < start else None,
        "tail_hour": end if window.end > end else None,
    }


def _aggregate(fields: tuple[str, ...], row: Sequence[Any]) -> Aggregate:
    """An Aggregate from `count, (sum, min, max) per field, first, last`."""
    statistics = {
        name: FieldStatistics(float(row[1 + 3 * i]), row[2 + 3 * i], row[3 + 3 * i])
        for i, name in enumerate(fields)
    }
    return Aggregate(int(row[0]), statistics, row[-2], row[-1])


def _microseconds(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _current(kind: DeviceKind, row: Sequence[Any]) -> MeterValues | VehicleValues:
    if kind is DeviceKind.METER:
        return MeterValues(row[0], _microseconds(row[1]), row[2], row[3])
    return VehicleValues(row[0], _microseconds(row[1]), row[2], row[3], row[4])


def _before_horizon(reason: str) -> OutOfRange:
    return OutOfRange(f"window.start_time {reason}", [FieldViolation("window.start_time", reason)])


def _not_linked(vehicle_id: str) -> NotFound:
    return NotFound(f"vehicle {vehicle_id!r} is not linked to a meter; link it with LinkVehicle")


class AnalyticsRepository(_PooledRepository):
    """Read-side queries. With `use_rollups=False` every aggregate is computed
    from raw history only: the reference the rollup-backed answers must equal."""

    def __init__(
        self,
        pool: ConnectionSource,
        database_reachable: Callable[[], bool] = lambda: True,
        *,
        use_rollups: bool = True,
        horizons: Horizons | None = None,
        share_snapshots: bool = True,
    ) -> None:
        """`share_snapshots`: whether a transaction's snapshot can be exported to
        another connection and read there; not on Citus, where a coordinator's
        snapshot does not reach its workers."""
        super().__init__(pool, database_reachable)
        self._share_snapshots = share_snapshots
        self._use_rollups = use_rollups
        self._hours = _HOUR if use_rollups else None
        self._horizons = horizons or Horizons()

    def coverage(self, window: Window, *, finer_than_hours: bool = False) -> Coverage:
        """What an answer over `window` can cover exactly, given what retention kept.

        A window inside raw history is answered as asked. One that starts
        before the raw horizon is answered from the hourly rollups for its
        whole hours there (starting at the first whole hour), and says so;
        one that starts before the hourly horizon, or wants buckets finer
        than an hour before the raw horizon, is refused naming the horizon.
        """
        raw_floor = self._horizons.raw()
        if raw_floor is None or window.start >= raw_floor:
            return Coverage(window, Resolution.RAW)
        hourly_floor = self._horizons.hourly()
        if hourly_floor is not None and window.start < hourly_floor:
            raise _before_horizon(
                f"is before {hourly_floor.isoformat()}, the oldest data kept "
                "(hourly rollups; ENERGY_ROLLUP_RETENTION): start the window there or later"
            )
        if finer_than_hours:
            raise _before_horizon(
                f"is before {raw_floor.isoformat()}, the oldest raw reading kept (ENERGY_RAW_RETENTION); "
                "older data is kept per hour: ask for hourly or daily buckets, or start the window there"
            )
        start = _ceil(window.start, _HOUR)
        end = window.end if window.end > raw_floor else _floor(window.end, _HOUR)
        return Coverage(Window(start, max(start, end)), Resolution.HOURLY)

    async def _rows(self, query: LiteralString | bytes, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._transaction() as connection:
            cursor = await connection.execute(query, params)
            return await cursor.fetchall()

    async def link_vehicle(self, vehicle_id: str, meter_id: str) -> VehicleLink:
        rows = await self._rows(
            analytics_sql.UPSERT_VEHICLE_LINK, {"vehicle_id": vehicle_id, "meter_id": meter_id}
        )
        return VehicleLink(*rows[0])

    async def vehicle_link(self, vehicle_id: str) -> VehicleLink:
        rows = await self._rows(analytics_sql.SELECT_VEHICLE_LINK, {"vehicle_id": vehicle_id})
        if not rows:
            raise _not_linked(vehicle_id)
        return VehicleLink(*rows[0])

    async def vehicle_links(self, after: str, limit: int) -> list[VehicleLink]:
        rows = await self._rows(analytics_sql.SELECT_VEHICLE_LINKS_AFTER, {"after": after, "limit": limit})
        return [VehicleLink(*row) for row in rows]

    async def device_aggregate(self, kind: DeviceKind, device_id: str, window: Window) -> Aggregate:
        table = _TABLES[kind]
        rows = await self._rows(
            table.select_device_aggregate, {"device_id": device_id, **_ranges(window, self._hours)}
        )
        return _aggregate(table.fields, rows[0])

    async def vehicle_performance(
        self, vehicle_id: str, window: Window
    ) -> tuple[VehicleLink, Aggregate, Aggregate]:
        """The vehicle's link, its meter's aggregate and its own.

        One connection and one pipelined round trip for all three: the meter's
        aggregate finds the linked meter itself.
        """
        ranges = _ranges(window, self._hours)
        async with self._transaction() as connection, connection.pipeline():
            link = await connection.execute(analytics_sql.SELECT_VEHICLE_LINK, {"vehicle_id": vehicle_id})
            ac = await connection.execute(
                analytics_sql.METER.select_linked_meter_aggregate, {"vehicle_id": vehicle_id, **ranges}
            )
            dc = await connection.execute(
                analytics_sql.VEHICLE.select_device_aggregate, {"device_id": vehicle_id, **ranges}
            )
            row = await link.fetchone()
            # An aggregate without GROUP BY always returns exactly one row.
            ac_rows, dc_rows = await ac.fetchall(), await dc.fetchall()
        if row is None:
            raise _not_linked(vehicle_id)
        return (
            VehicleLink(*row),
            _aggregate(analytics_sql.METER.fields, ac_rows[0]),
            _aggregate(analytics_sql.VEHICLE.fields, dc_rows[0]),
        )

    async def fleet_aggregate(
        self, kind: DeviceKind, window: Window, resolution: Resolution = Resolution.RAW
    ) -> tuple[int, Aggregate]:
        """Distinct devices with readings in the window, and their readings' aggregate.

        At hour resolution the fleet's minute rollups (kept as long as raw
        history) are gone: the devices' hourly rollups answer instead.
        """
        table = _TABLES[kind]
        if resolution is Resolution.HOURLY:
            rows = await self._rows(table.select_fleet_aggregate_by_device, _ranges(window, _HOUR))
        elif self._use_rollups:
            rows = await self._rows(table.select_fleet_aggregate, _ranges(window, _MINUTE))
        else:
            # The reference folds raw history per device: nothing shared with the fast path.
            rows = await self._rows(table.select_fleet_aggregate_by_device, _ranges(window, None))
        return int(rows[0][0]), _aggregate(table.fields, rows[0][1:])

    async def current(self, kind: DeviceKind, device_id: str) -> MeterValues | VehicleValues | None:
        rows = await self._rows(_TABLES[kind].select_current, {"device_id": device_id})
        return _current(kind, rows[0]) if rows else None

    async def currents(
        self, kind: DeviceKind, *, after: str, seen_since: datetime, limit: int
    ) -> list[MeterValues | VehicleValues]:
        rows = await self._rows(
            _TABLES[kind].select_current_after, {"after": after, "seen_since": seen_since, "limit": limit}
        )
        return [_current(kind, row) for row in rows]

    async def time_series(
        self, kind: DeviceKind, device_id: str, window: Window, bucket: timedelta
    ) -> list[tuple[datetime, Aggregate]]:
        table = _TABLES[kind]
        # Rollups serve buckets that are whole hours; finer ones need raw rows.
        ranges = _ranges(window, self._hours if bucket % _HOUR == timedelta(0) else None)
        rows = await self._rows(
            table.select_time_series, {"device_id": device_id, "bucket": bucket, **ranges}
        )
        return [(row[0], _aggregate(table.fields, row[1:])) for row in rows]

    async def efficiency_anomalies(
        self, window: Window, threshold: float, *, offset: int, limit: int
    ) -> list[EfficiencyAnomaly]:
        """The ranking, in three statements of one snapshot: AC energy per meter,
        DC energy per vehicle, then the ranking of the two.

        With a second connection idle in the pool, the two halves run side by
        side, the second importing the first's snapshot: on PostgreSQL 15,
        one day of 10,000 meters and vehicles, each half took 120 ms of a
        one-statement ranking's 275 (edges 14 minutes into a quarter).
        """
        edges = _with_edge_hours(window, self._hours)
        spare_connection: contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any] | None] = (
            self._spare_connection() if self._share_snapshots else contextlib.nullcontext()
        )
        async with (
            self._transaction() as connection,
            spare_connection as spare,
            connection.pipeline(),
            connection.transaction(),
        ):
            await _begin_ranking(connection, repeatable_read=self._share_snapshots)
            if spare is None:
                meter = await _energies(connection, analytics_sql.SELECT_METER_ENERGIES, edges)
                vehicle = await _energies(connection, analytics_sql.SELECT_VEHICLE_ENERGIES, edges)
            else:
                exported = await (await connection.execute(analytics_sql.EXPORT_SNAPSHOT)).fetchone()
                assert exported is not None  # a SELECT of one function returns one row
                snapshot_id = exported[0]
                async with asyncio.TaskGroup() as halves:
                    meters = halves.create_task(
                        _energies(connection, analytics_sql.SELECT_METER_ENERGIES, edges)
                    )
                    vehicles = halves.create_task(_energies_in_snapshot(spare, snapshot_id, edges))
                meter, vehicle = meters.result(), vehicles.result()
            cursor = await connection.execute(
                analytics_sql.SELECT_ANOMALIES,
                {
                    "meter_ids": meter[0],
                    "meter_energies": meter[1],
                    "vehicle_ids": vehicle[0],
                    "vehicle_energies": vehicle[1],
                    "threshold": threshold,
                    "offset": offset,
                    "limit": limit,
                },
            )
            rows = await cursor.fetchall()
        return [EfficiencyAnomaly(*row) for row in rows]


# One kind's energies in a window, as SELECT_*_ENERGIES return them: device
# ids and energies as array literals (None, None without any device).
_Energies = tuple[str | None, str | None]


async def _energies(
    connection: psycopg.AsyncConnection[Any], statement: bytes, edges: dict[str, Any]
) -> _Energies:
    cursor = await connection.execute(statement, edges)
    row = await cursor.fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    return row[0], row[1]


async def _energies_in_snapshot(
    connection: psycopg.AsyncConnection[Any], snapshot_id: str, edges: dict[str, Any]
) -> _Energies:
    """The vehicles' energies on a second connection, in the snapshot of the first."""
    async with connection.pipeline(), connection.transaction():
        await _begin_ranking(connection, repeatable_read=True, snapshot_id=snapshot_id)
        return await _energies(connection, analytics_sql.SELECT_VEHICLE_ENERGIES, edges)


async def _begin_ranking(
    connection: psycopg.AsyncConnection[Any], *, repeatable_read: bool, snapshot_id: str | None = None
) -> None:
    """The first statements of a ranking transaction: its isolation and the
    snapshot it imports, if any (both must come before any query), then how it plans."""
    if repeatable_read:
        await connection.execute(analytics_sql.RANKING_ISOLATION)
        if snapshot_id is not None:
            await connection.execute(analytics_sql.import_snapshot(snapshot_id))
    await connection.execute(analytics_sql.RANKING_PLAN_SETTINGS)


# Far in the future, with whole hours and minutes and edges: every part of
# every statement runs, and finds nothing.
_WARM_UP_WINDOW = Window(datetime(9999, 1, 1, 0, 30, tzinfo=UTC), datetime(9999, 1, 1, 2, 30, tzinfo=UTC))


async def configure_read_connection(connection: psycopg.AsyncConnection[Any]) -> None:
    """Set a new read connection's session, then run the per-call reads once
    on it, over a window without data.

    A new PostgreSQL backend plans its first statements against cold catalog
    caches: the first GetVehiclePerformance on each fresh connection took
    9-10 ms against 3.5 ms after (measured). The read pool runs this on each
    connection it opens, before lending it, so that callers never pay it.
    A failure only costs the warmth: the connection is lent all the same.
    """
    hours, minutes = _ranges(_WARM_UP_WINDOW, _HOUR), _ranges(_WARM_UP_WINDOW, _MINUTE)
    await connection.execute(analytics_sql.READ_SESSION)
    try:
        async with connection.pipeline():
            await connection.execute(analytics_sql.SELECT_VEHICLE_LINK, {"vehicle_id": ""})
            await connection.execute(
                analytics_sql.METER.select_linked_meter_aggregate, {"vehicle_id": "", **hours}
            )
            for table in _TABLES.values():
                await connection.execute(table.select_current, {"device_id": ""})
                await connection.execute(table.select_device_aggregate, {"device_id": "", **hours})
                await connection.execute(
                    table.select_time_series, {"device_id": "", "bucket": _HOUR, **hours}
                )
                await connection.execute(table.select_fleet_aggregate, minutes)
    except psycopg.OperationalError:
        raise  # a broken connection: the pool drops it and connects again
    except psycopg.Error as error:
        _log.warning("could not warm up a new analytics connection: %s", error)
