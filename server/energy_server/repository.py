"""ReadingRepository: stores batches of valid readings; owns the transactions.

It raises domain errors only: every psycopg error is translated by
`errors.from_database_error`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg_pool

from energy_server.domain import MeterValues, Outcome, ValidReading, VehicleValues
from energy_server.errors import from_database_error
from energy_server.sql import readings as sql

__all__ = ["ReadingRepository"]


class ReadingRepository:
    """Reading storage over a psycopg connection pool."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _transaction(
        self, pool_wait_s: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Borrow a connection for one transaction; database errors leave as domain errors."""
        try:
            async with self._pool.connection(timeout=pool_wait_s) as connection:
                yield connection
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise from_database_error(error) from error

    async def ping(self, pool_wait_s: float) -> None:
        """Raise DatabaseUnavailable unless a pooled connection is had within `pool_wait_s` and answers."""
        async with self._transaction(pool_wait_s) as connection:
            await connection.execute(sql.PING)

    async def store_readings(self, readings: Sequence[ValidReading]) -> list[Outcome]:
        """Store a batch in one transaction; the outcome of each reading, in order.

        A reading repeating an earlier one of the batch (same device and
        timestamp) is a duplicate, like one repeating a stored reading.
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

        async with self._transaction() as connection:
            # Never prepared: a generic plan cannot know the batch's size and
            # picks nested loops that cost 3x a custom plan (measured, 1000 rows).
            async with connection.pipeline():
                cursors = []
                if meters:
                    cursors.append(
                        await connection.execute(
                            sql.STORE_METER_BATCH, _meter_columns(meters), prepare=False, binary=True
                        )
                    )
                if vehicles:
                    cursors.append(
                        await connection.execute(
                            sql.STORE_VEHICLE_BATCH, _vehicle_columns(vehicles), prepare=False, binary=True
                        )
                    )
            # Only readings that were not plainly accepted come back.
            for cursor in cursors:
                for position, outcome in await cursor.fetchall():
                    outcomes[position] = _OUTCOME_OF[outcome]
        return outcomes


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
