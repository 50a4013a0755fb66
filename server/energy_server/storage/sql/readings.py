"""SQL of the reading tables: history (`*_readings`) and hot state (`*_current`).

Each statement stores one batch in one round trip and judges every reading
of it. The batch arrives as typed arrays in binary (one per column, with each
reading's position in the batch) and `unnest` turns it into rows:

1. `batch`: the rows, timestamps turned from Unix microseconds into timestamptz.
2. `previous`: the current rows those devices had when the statement began.
   The ids come as the array parameter, not from `batch`, so that Citus
   reads only the shards of the batch's devices. It comes before the
   writes and is MATERIALIZED so that Citus, which runs
   each CTE as a step of its own in the order written, reads it before
   `upserted` changes those rows (one PostgreSQL reads every CTE in the
   statement's one snapshot, whatever the order).
3. `inserted`: append to history in key order; `ON CONFLICT DO NOTHING`
   absorbs duplicates, and RETURNING names the rows that were really new.
4. `upserted`: the newest inserted row per device (collapsed with DISTINCT ON)
   replaces current only when strictly newer; rows go in device order so
   that concurrent batches lock current rows in one order and cannot deadlock.
5. `rolled_up`: the inserted rows (only those: duplicates never count) added
   to their device's hourly rollup, in key order for the same reason.
6. `fleet_rolled_up`: the same rows added to the fleet's per-minute rollup
   of the writer's shard (`%(shard)s`: the service's group-commit lane), so
   that concurrent writers never wait for each other on a fleet row.
7. The result: only the readings that were not plainly accepted, as
   (position, outcome) with outcome 1 = duplicate (not inserted) and
   2 = stale (inserted, but older than the device's current row before the
   batch or than an earlier reading of the batch, or beaten by a concurrent
   writer). An all-new batch returns no rows at all.

Callers must send each (device, timestamp) at most once per batch.
"""

from typing import Final

from psycopg import sql

from energy_server.storage.sql import (
    ENERGY_FIELDS,
    QUARTER_MINUTES,
    STATISTICS,
    combined_statistic,
    quarter_columns,
    rendered,
    saturating_add,
    saturating_sum,
    statistic_columns,
    statistic_of,
)

__all__ = [
    "CLAIM_WRITER_NUMBER",
    "FLEET_SHARDS",
    "METER_FIELDS",
    "OUTCOME_DUPLICATE",
    "OUTCOME_STALE",
    "PING",
    "PLAN_EACH_BATCH",
    "STORE_METER_BATCH",
    "STORE_VEHICLE_BATCH",
    "VEHICLE_FIELDS",
    "rollups_from_history",
    "store_batch",
]

OUTCOME_DUPLICATE: Final = 1
OUTCOME_STALE: Final = 2

# The tail both statements share; identifiers are filled in through psycopg.sql.
_JUDGE: Final = sql.SQL(
    """
joined AS (
    SELECT b.position, b.{device}, b.ts, i.{device} IS NOT NULL AS is_new
    FROM batch AS b
    LEFT JOIN inserted AS i USING ({device}, ts)
),
fresh AS (
    SELECT position, {device}, ts,
           max(ts) OVER (PARTITION BY {device} ORDER BY position
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest_before
    FROM joined
    WHERE is_new
)
SELECT position, 1 AS outcome FROM joined WHERE NOT is_new
UNION ALL
SELECT f.position, 2
FROM fresh AS f
LEFT JOIN previous AS p USING ({device})
LEFT JOIN upserted AS u USING ({device})
WHERE f.ts < p.ts OR f.ts < f.newest_before OR u.{device} IS NULL
"""
)


def _in_quarter(minute: int) -> sql.Composed:
    """Whether a row's `ts` lies in the quarter of its hour that starts at `minute`."""
    offset = sql.SQL("ts - {}").format(_HOUR_OF_TS)
    bounds = []
    if minute > 0:
        bounds.append(sql.SQL("{} >= interval {}").format(offset, sql.Literal(f"{minute} minutes")))
    if minute + 15 < 60:
        bounds.append(sql.SQL("{} < interval {}").format(offset, sql.Literal(f"{minute + 15} minutes")))
    return sql.SQL(" AND ").join(bounds)


def _rollup_upsert(
    table: str,
    keys: tuple[tuple[str, sql.Composable], ...],
    fields: tuple[str, ...],
    rows_from: str,
    quarters_of: str | None = None,
) -> sql.Composed:
    """Add the rows of `rows_from`, grouped by `keys`, to the rollup `table`.

    A rollup row holds a reading count, sum/min/max per field and the first
    and last reading time; adding is associative, so any split of the rows
    into batches gives the same rollup. Groups go in key order, so that
    concurrent writers lock rollup rows in one order and cannot deadlock.
    `quarters_of` names a field whose sum is also kept per quarter hour
    (migration 0007): 0 for a quarter without readings, and a row's unknown
    (NULL) quarter stays unknown.
    """
    key_names = [name for name, _ in keys]
    quarters = quarter_columns(quarters_of) if quarters_of else []
    columns = [*key_names, "reading_count", *statistic_columns(fields), *quarters, "first_ts", "last_ts"]
    statistics = [statistic_of(statistic, sql.Identifier(f)) for f in fields for statistic in STATISTICS]
    if quarters_of:
        energy = sql.Identifier(quarters_of)
        statistics += [
            sql.SQL("coalesce({}, 0)").format(saturating_sum(energy, _in_quarter(minute)))
            for minute in QUARTER_MINUTES
        ]
    updates: list[sql.Composable] = [sql.SQL("reading_count = h.reading_count + EXCLUDED.reading_count")]
    updates += [
        sql.SQL("{} = {}").format(
            column,
            combined_statistic(
                statistic, sql.SQL("h.{}").format(column), sql.SQL("EXCLUDED.{}").format(column)
            ),
        )
        for f in fields
        for statistic in STATISTICS
        for column in [sql.Identifier(f"{f}_{statistic}")]
    ]
    updates += [
        sql.SQL("{column} = CASE WHEN h.{column} IS NOT NULL THEN {sum} END").format(
            column=column,
            sum=saturating_add(sql.SQL("h.{}").format(column), sql.SQL("EXCLUDED.{}").format(column)),
        )
        for column in map(sql.Identifier, quarters)
    ]
    updates += [
        sql.SQL("first_ts = least(h.first_ts, EXCLUDED.first_ts)"),
        sql.SQL("last_ts = greatest(h.last_ts, EXCLUDED.last_ts)"),
    ]
    positions = sql.SQL(", ").join(sql.SQL(str(n)) for n in range(1, len(keys) + 1))
    return sql.SQL(
        "INSERT INTO {table} AS h ({columns})\n"
        "    SELECT {keys}, count(*), {statistics}, min(ts), max(ts)\n"
        "    FROM {rows_from}\n"
        "    GROUP BY {positions}\n"
        "    ORDER BY {positions}\n"
        "    ON CONFLICT ({key_names}) DO UPDATE SET\n        {updates}"
    ).format(
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        keys=sql.SQL(", ").join(expression for _, expression in keys),
        statistics=sql.SQL(", ").join(statistics),
        rows_from=sql.Identifier(rows_from),
        positions=positions,
        key_names=sql.SQL(", ").join(map(sql.Identifier, key_names)),
        updates=sql.SQL(",\n        ").join(updates),
    )


_HOUR_OF_TS: Final = sql.SQL("date_bin('1 hour', ts, timestamptz 'epoch')")
_MINUTE_OF_TS: Final = sql.SQL("date_bin('1 minute', ts, timestamptz 'epoch')")
# Backfilled fleet rows and rows of writers other than the service go to shard 0.
_BACKFILL_SHARD: Final = sql.SQL("0::int2")


def _device_hourly(kind: str, device: str, fields: tuple[str, ...], rows_from: str) -> sql.Composed:
    keys = ((device, sql.Identifier(device)), ("hour", _HOUR_OF_TS))
    return _rollup_upsert(f"{kind}_hourly", keys, fields, rows_from, quarters_of=ENERGY_FIELDS[kind])


def _fleet_minutely(
    kind: str, fields: tuple[str, ...], rows_from: str, shard: sql.Composable
) -> sql.Composed:
    return _rollup_upsert(
        f"{kind}_fleet_minutely", (("minute", _MINUTE_OF_TS), ("shard", shard)), fields, rows_from
    )


def store_batch(
    kind: str,
    device: str,
    fields: tuple[str, ...],
    *,
    rows_from: sql.Composable | None = None,
    rollups: bool = True,
) -> sql.Composed:
    """The statement storing one batch of a device kind (see the module's docstring).

    `rows_from` and `rollups` exist for bench/write_paths.py, which measures
    variants of this very statement: another source of the batch's rows (a
    staging table), or no rollups at all.
    """
    device_id = sql.Identifier(device)
    columns = sql.SQL(", ").join(map(sql.Identifier, (device, "ts", *fields)))
    # The devices whose current rows `previous` reads: from the id array when
    # the batch is the arrays (Citus then reads only their shards), else from
    # the rows themselves.
    batch_devices: sql.Composable = sql.SQL("IN (SELECT {} FROM batch)").format(device_id)
    if rows_from is None:
        batch_devices = sql.SQL("= ANY(%(device_ids)b::text[])")
        arrays = sql.SQL(", ").join(
            [
                sql.SQL("%(positions)b::int4[], %(device_ids)b::text[], %(ts_us)b::int8[]"),
                *(sql.SQL("{}::float8[]").format(sql.Placeholder(f, "b")) for f in fields),
            ]
        )
        names = sql.SQL(", ").join(map(sql.Identifier, ("position", device, "ts_us", *fields)))
        rows_from = sql.SQL("unnest({arrays}) AS b ({names})").format(arrays=arrays, names=names)
    rolled_up = (
        sql.SQL("rolled_up AS (\n    {}\n),\nfleet_rolled_up AS (\n    {}\n),").format(
            _device_hourly(kind, device, fields, "inserted"),
            _fleet_minutely(kind, fields, "inserted", sql.SQL("%(shard)s::int2")),
        )
        if rollups
        else sql.SQL("")
    )
    return sql.SQL(
        """
WITH batch AS (
    SELECT b.position, b.{device_id}, timestamptz 'epoch' + b.ts_us * interval '1 microsecond' AS ts,
           {batch_fields}
    FROM {rows_from}
),
previous AS MATERIALIZED (
    SELECT c.{device_id}, c.ts
    FROM {current} AS c
    WHERE c.{device_id} {batch_devices}
),
inserted AS (
    INSERT INTO {history} ({columns})
    SELECT {columns} FROM batch ORDER BY {device_id}, ts
    ON CONFLICT ({device_id}, ts) DO NOTHING
    RETURNING {columns}
),
upserted AS (
    INSERT INTO {current} AS c ({columns})
    SELECT DISTINCT ON ({device_id}) {columns}
    FROM inserted
    ORDER BY {device_id}, ts DESC
    ON CONFLICT ({device_id}) DO UPDATE SET {replace}
    WHERE c.ts < EXCLUDED.ts
    RETURNING {device_id}
),
{rolled_up}"""
    ).format(
        device_id=device_id,
        batch_devices=batch_devices,
        batch_fields=sql.SQL(", ").join(sql.SQL("b.{}").format(sql.Identifier(f)) for f in fields),
        rows_from=rows_from,
        history=sql.Identifier(f"{kind}_readings"),
        current=sql.Identifier(f"{kind}_current"),
        columns=columns,
        replace=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in ("ts", *fields)
        ),
        rolled_up=rolled_up,
    ) + _JUDGE.format(device=device_id)


METER_FIELDS: Final = ("kwh_consumed_ac", "voltage")
VEHICLE_FIELDS: Final = ("soc", "kwh_delivered_dc", "battery_temp")
STORE_METER_BATCH: Final = rendered(store_batch("meter", "meter_id", METER_FIELDS))
STORE_VEHICLE_BATCH: Final = rendered(store_batch("vehicle", "vehicle_id", VEHICLE_FIELDS))

PING: Final = "SELECT 1"
# A prepared statement of this transaction is planned for its parameters, not
# with the generic plan (the store statements of large batches, repository.py).
PLAN_EACH_BATCH: Final = "SET LOCAL plan_cache_mode = force_custom_plan"

# Fleet rollup rows are keyed by an int2 shard: 0-32767.
FLEET_SHARDS: Final = 32_768
CLAIM_WRITER_NUMBER: Final = "SELECT nextval('fleet_writer_numbers')"

# Rebuild a kind's rollups from history (the `backfill` command). History is
# locked against writes for the duration, so no ingest lands between the
# DELETEs and the INSERTs; ingest waits and then adds to the rebuilt rows.


def rollups_from_history(kind: str, rows_from: str) -> tuple[sql.Composed, sql.Composed]:
    """(hourly, fleet minute) statements adding every row of `rows_from` (a kind's
    history, or one partition of it) to its rollups; fleet rows go to shard 0."""
    device, fields = (("meter_id", METER_FIELDS), ("vehicle_id", VEHICLE_FIELDS))[kind == "vehicle"]
    return (
        _device_hourly(kind, device, fields, rows_from),
        _fleet_minutely(kind, fields, rows_from, _BACKFILL_SHARD),
    )


LOCK_METER_HISTORY: Final = "LOCK TABLE meter_readings IN SHARE MODE"
DELETE_METER_ROLLUPS: Final = ("DELETE FROM meter_hourly", "DELETE FROM meter_fleet_minutely")
INSERT_METER_HOURLY_FROM_HISTORY, INSERT_METER_FLEET_FROM_HISTORY = rollups_from_history(
    "meter", "meter_readings"
)
LOCK_VEHICLE_HISTORY: Final = "LOCK TABLE vehicle_readings IN SHARE MODE"
DELETE_VEHICLE_ROLLUPS: Final = ("DELETE FROM vehicle_hourly", "DELETE FROM vehicle_fleet_minutely")
INSERT_VEHICLE_HOURLY_FROM_HISTORY, INSERT_VEHICLE_FLEET_FROM_HISTORY = rollups_from_history(
    "vehicle", "vehicle_readings"
)
