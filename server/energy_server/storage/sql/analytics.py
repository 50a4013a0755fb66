"""SQL of the analytics reads: links, current state, and window aggregates.

Every window aggregate reads "parts": rollup rows for the whole rollup
periods of the window plus raw history rows for the partial periods at the
two edges (`head` and `tail`). Per-device aggregates use the devices' hourly
rollups; fleet summaries use the fleet's minute rollups. Callers pass the
three ranges; a window with no whole period passes an empty rollup range and
reads raw rows only, and a raw-only computation (the reference the tests
compare against) does the same for any window. Per-device parts are range
scans on the (device, ts) and (device, hour) primary keys; fleet-wide parts
use the rollups' time keys and the BRIN index on history's ts.

The statements are composed once, at import, from the table and column
names below through psycopg.sql; values always travel as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from psycopg import sql

from energy_server.storage.sql import (
    STATISTICS,
    quarter_columns,
    rendered,
    saturating_sum,
    statistic_columns,
    statistic_of,
)

__all__ = [
    "EXPORT_SNAPSHOT",
    "METER",
    "RANKING_ISOLATION",
    "RANKING_PLAN_SETTINGS",
    "READ_SESSION",
    "SELECT_ANOMALIES",
    "SELECT_METER_ENERGIES",
    "SELECT_VEHICLE_ENERGIES",
    "SELECT_VEHICLE_LINK",
    "SELECT_VEHICLE_LINKS_AFTER",
    "UPSERT_VEHICLE_LINK",
    "VEHICLE",
    "TableGroup",
    "import_snapshot",
]


@dataclass(frozen=True, slots=True)
class TableGroup:
    """The tables of one device kind and the statements that read them."""

    device: str
    fields: tuple[str, ...]
    select_current: bytes
    select_current_after: bytes
    select_device_aggregate: bytes
    select_linked_meter_aggregate: bytes  # the aggregate of the meter linked to %(vehicle_id)s
    select_fleet_aggregate: bytes
    select_fleet_aggregate_by_device: bytes
    select_time_series: bytes


# The device a per-device aggregate reads: a parameter, or the meter linked to a vehicle.
_DEVICE_PARAMETER: Final = sql.SQL("%(device_id)s")
_LINKED_METER: Final = sql.SQL("(SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s)")


def _rollup_columns(fields: tuple[str, ...]) -> sql.Composable:
    """A rollup row's statistics, `<field>_sum, <field>_min, <field>_max` per field."""
    return sql.SQL(", ").join(map(sql.Identifier, statistic_columns(fields)))


def _raw_columns(fields: tuple[str, ...]) -> sql.Composable:
    """A raw reading in a rollup row's shape: each field stands for its own sum, min and max."""
    return sql.SQL(", ").join(sql.Identifier(f) for f in fields for _ in STATISTICS)


def _parts(
    kind: str, device: str, fields: tuple[str, ...], *, one_device: sql.Composable | None
) -> sql.Composed:
    """Rollup rows of the whole hours plus raw rows of the edges, in one shape."""
    device_id = sql.Identifier(device)
    only_device = (
        sql.SQL("{} = {} AND ").format(device_id, one_device) if one_device is not None else sql.SQL("")
    )
    return sql.SQL(
        """
    SELECT {device_id} AS device_id, hour AS at, reading_count, {rollup_columns}, first_ts, last_ts
    FROM {hourly}
    WHERE {only_device}hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT {device_id}, ts, 1, {raw_columns}, ts, ts
    FROM {history}
    WHERE {only_device}((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
"""
    ).format(
        device_id=device_id,
        rollup_columns=_rollup_columns(fields),
        raw_columns=_raw_columns(fields),
        hourly=sql.Identifier(f"{kind}_hourly"),
        history=sql.Identifier(f"{kind}_readings"),
        only_device=only_device,
    )


def _parts_cte(
    name: str, kind: str, device: str, fields: tuple[str, ...], *, one_device: sql.Composable | None
) -> sql.Composed:
    """`name (device_id, at, reading_count, <field>_sum/_min/_max..., first_ts, last_ts) AS (parts)`."""
    columns = sql.SQL(", ").join(
        sql.Identifier(c)
        for c in ("device_id", "at", "reading_count", *statistic_columns(fields), "first_ts", "last_ts")
    )
    return sql.SQL("{name} ({columns}) AS ({parts})").format(
        name=sql.Identifier(name), columns=columns, parts=_parts(kind, device, fields, one_device=one_device)
    )


def _fleet_aggregate(kind: str, device: str, fields: tuple[str, ...]) -> sql.Composed:
    """Active devices and the readings' aggregate of a window, from the fleet's minute rollups.

    Rollup rows of the whole minutes plus raw rows of the partial minutes at
    the edges give the aggregate. The devices with a reading in the window
    are counted from the current table, which holds each device's newest
    reading: a device whose newest reading is before the window has none in
    it, one whose newest reading is inside has one, and only a device whose
    newest reading is at or after the window's end (a window in the past)
    needs a look into its history, one primary-key probe.
    """
    device_id = sql.Identifier(device)
    history = sql.Identifier(f"{kind}_readings")
    names = sql.SQL(", ").join(
        sql.Identifier(c) for c in ("reading_count", *statistic_columns(fields), "first_ts", "last_ts")
    )
    return sql.SQL(
        """
WITH parts ({names}) AS (
    SELECT reading_count, {rollup_columns}, first_ts, last_ts
    FROM {fleet}
    WHERE minute >= %(rollup_start)s AND minute < %(rollup_end)s
    UNION ALL
    SELECT 1, {raw_columns}, ts, ts
    FROM {history}
    WHERE (ts >= %(head_start)s AND ts < %(head_end)s) OR (ts >= %(tail_start)s AND ts < %(tail_end)s)
),
active AS (
    SELECT count(*) AS devices
    FROM {current} AS c
    WHERE c.ts >= %(head_start)s
      AND (c.ts < %(tail_end)s
           OR EXISTS (SELECT FROM {history} AS r
                      WHERE r.{device_id} = c.{device_id} AND r.ts >= %(head_start)s AND r.ts < %(tail_end)s))
)
SELECT (SELECT devices FROM active), {aggregates} FROM parts
"""
    ).format(
        names=names,
        rollup_columns=_rollup_columns(fields),
        raw_columns=_raw_columns(fields),
        fleet=sql.Identifier(f"{kind}_fleet_minutely"),
        history=history,
        current=sql.Identifier(f"{kind}_current"),
        device_id=device_id,
        aggregates=_aggregates(fields),
    )


def _aggregates(fields: tuple[str, ...]) -> sql.Composable:
    """Reading count, then sum/min/max per field, then first and last reading time."""
    return sql.SQL(", ").join(
        [
            sql.SQL("coalesce(sum(reading_count), 0)::int8"),
            *(
                sql.SQL("coalesce({}, 0)").format(aggregate) if statistic == "sum" else aggregate
                for statistic, _, aggregate in _statistics_of_parts(fields)
            ),
            sql.SQL("min(first_ts), max(last_ts)"),
        ]
    )


def _statistics_of_parts(fields: tuple[str, ...]) -> list[tuple[str, str, sql.Composed]]:
    """(statistic, column, its aggregate over parts) for each `<field>_sum/_min/_max`."""
    return [
        (statistic, f"{f}_{statistic}", statistic_of(statistic, sql.Identifier(f"{f}_{statistic}")))
        for f in fields
        for statistic in STATISTICS
    ]


def _per_device(fields: tuple[str, ...]) -> sql.Composed:
    """Parts folded to one row per device, keeping the parts' column names.

    Fleet queries fold first: hashing into one group per device is far
    cheaper than the sort count(DISTINCT) needs over every part.
    """
    columns = sql.SQL(", ").join(
        [
            sql.SQL("sum(reading_count) AS reading_count"),
            *(
                sql.SQL("{} AS {}").format(aggregate, sql.Identifier(column))
                for _, column, aggregate in _statistics_of_parts(fields)
            ),
            sql.SQL("min(first_ts) AS first_ts, max(last_ts) AS last_ts"),
        ]
    )
    return sql.SQL("(SELECT device_id, {} FROM parts GROUP BY device_id) AS per_device").format(columns)


def _table_group(kind: str, device: str, fields: tuple[str, ...]) -> TableGroup:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in (device, "ts", *fields))
    current = sql.Identifier(f"{kind}_current")
    device_id = sql.Identifier(device)

    def with_parts(one_device: sql.Composable | None, tail: sql.Composable) -> sql.Composed:
        return sql.SQL("WITH {parts}\n{tail}").format(
            parts=_parts_cte("parts", kind, device, fields, one_device=one_device), tail=tail
        )

    aggregate = sql.SQL("SELECT {} FROM parts").format(_aggregates(fields))

    return TableGroup(
        device=device,
        fields=fields,
        select_current=rendered(
            sql.SQL("SELECT {columns} FROM {current} WHERE {device_id} = %(device_id)s").format(
                columns=columns, current=current, device_id=device_id
            )
        ),
        select_current_after=rendered(
            sql.SQL(
                "SELECT {columns} FROM {current}"
                " WHERE {device_id} > %(after)s AND ts >= %(seen_since)s"
                " ORDER BY {device_id} LIMIT %(limit)s"
            ).format(columns=columns, current=current, device_id=device_id)
        ),
        select_device_aggregate=rendered(with_parts(_DEVICE_PARAMETER, aggregate)),
        select_linked_meter_aggregate=rendered(with_parts(_LINKED_METER, aggregate)),
        select_fleet_aggregate=rendered(_fleet_aggregate(kind, device, fields)),
        select_fleet_aggregate_by_device=rendered(
            with_parts(
                None, sql.SQL("SELECT count(*), {} FROM {}").format(_aggregates(fields), _per_device(fields))
            )
        ),
        select_time_series=rendered(
            with_parts(
                _DEVICE_PARAMETER,
                sql.SQL(
                    "SELECT date_bin(%(bucket)s, at, timestamptz 'epoch') AS bucket, {}"
                    " FROM parts GROUP BY 1 ORDER BY 1"
                ).format(_aggregates(fields)),
            )
        ),
    )


_METER_FIELDS: Final = ("kwh_consumed_ac", "voltage")
_VEHICLE_FIELDS: Final = ("soc", "kwh_delivered_dc", "battery_temp")
METER: Final = _table_group("meter", "meter_id", _METER_FIELDS)
VEHICLE: Final = _table_group("vehicle", "vehicle_id", _VEHICLE_FIELDS)

# Every read connection's session. JIT compilation is for queries that run
# for seconds; ours are meant to answer in milliseconds, and the planner's
# cost estimates over a day of 10,000 devices cross jit_above_cost: on
# PostgreSQL 15 with LLVM, ListEfficiencyAnomalies spent 1,142 ms of its
# 1,669 compiling (measured, EXPLAIN ANALYZE) and took 540 ms without.
READ_SESSION: Final = "SET jit = off"

# How the anomaly ranking is planned, for its own transaction only
# (set_config(..., true) is SET LOCAL). Measured on PostgreSQL 15, one day of
# 10,000 meters and vehicles, 7 runs each:
# - no parallel workers: its raw branches each started workers even when
#   their one-time filter was false (they sit under the Gather), about 15 ms
#   a launch for nothing; serial took 214-219 ms instead of 256-261 (edges at
#   :30), 190-205 instead of 209-223 (the last 24 h) and 152-162 instead of
#   112-128 (whole hours); with every core busy serving other callers,
#   workers only add their start-up;
# - no nested loops: the planner guesses 67 rows for the per-device totals
#   (an aggregate over a UNION ALL), 10,000 in truth, and with edges at :01
#   and :59 it joined them to the links in a nested loop: 4.0-4.2 s instead
#   of 424-434 ms (measured when one statement both summed and ranked; the
#   ranking still joins 10,000 totals to the links). No join of the ranking
#   is served by a nested loop.
RANKING_PLAN_SETTINGS: Final = (
    "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('enable_nestloop', 'off', true)"
)

# The ranking's statements read one snapshot: its transaction is REPEATABLE
# READ (the first statement of the transaction), and a second connection
# that reads one of its halves imports that snapshot (pg_export_snapshot()
# while the first transaction stays open). READ ONLY: it writes nothing.
RANKING_ISOLATION: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
EXPORT_SNAPSHOT: Final = "SELECT pg_export_snapshot()"


def import_snapshot(snapshot_id: str) -> sql.Composed:
    """`SET TRANSACTION SNAPSHOT` of a snapshot EXPORT_SNAPSHOT returned.

    The one value written into SQL text: SET takes no parameters, and the id
    comes from PostgreSQL's own pg_export_snapshot(), never from a client; it
    goes in as a quoted literal all the same.
    """
    return sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id))


# now() sits in VALUES, not in DO UPDATE SET: Citus refuses functions that
# are not IMMUTABLE there, and evaluates those of VALUES on the coordinator.
UPSERT_VEHICLE_LINK: Final = """
INSERT INTO vehicle_meter_map AS m (vehicle_id, meter_id, updated_at)
VALUES (%(vehicle_id)s, %(meter_id)s, now())
ON CONFLICT (vehicle_id) DO UPDATE SET meter_id = EXCLUDED.meter_id, updated_at = EXCLUDED.updated_at
RETURNING vehicle_id, meter_id, updated_at
"""

SELECT_VEHICLE_LINK: Final = """
SELECT vehicle_id, meter_id, updated_at FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s
"""

SELECT_VEHICLE_LINKS_AFTER: Final = """
SELECT vehicle_id, meter_id, updated_at FROM vehicle_meter_map
WHERE vehicle_id > %(after)s
ORDER BY vehicle_id
LIMIT %(limit)s
"""


def _energy_parts(name: str, kind: str, device: str, energy: str) -> sql.Composed:
    """`name AS (...)`, columns `device_id, kwh`: one kind's energy in the window, in parts.

    The whole hours come from the hourly rollup's covering index on hour.
    Each edge hour is read in the cheapest exact way its rollup rows allow:

    - whole from its rollup rows when that kind has no reading in the hour
      outside the window (a window ending after the newest reading: the
      usual "last 24 hours");
    - else from the rows' quarter-hour sums (migration 0007) for the whole
      quarters inside the window, and raw for the rest of the edge, which
      lies within one quarter: at most 15 minutes instead of up to an hour;
    - else (a row of the hour written before its quarters were kept) raw.

    `head_split` is the first quarter boundary at or after the window's
    start, `tail_split` the last at or before its end; `head_first_quarter`
    and `tail_last_quarter` number the quarters of the edge hours (1 to 4)
    that lie inside the window, the first and the last, as array bounds.
    Whether an edge hour has a reading outside the window is asked of the
    fleet's minute rollup (a few rows a minute, written in the same
    transaction as the hourly rows) rather than of the 10,000 hourly rows of
    that hour. The checks read the statement's own snapshot, so a reading
    stored meanwhile cannot slip in, and each is made once per use (an
    InitPlan), so a branch not wanted is not run at all (a one-time filter).
    `head_hour` or `tail_hour` NULL means that edge is read raw. The checks
    select a column: Citus cannot read back a subplan's result that has none.
    """
    hourly, history = sql.Identifier(f"{kind}_hourly"), sql.Identifier(f"{kind}_readings")
    fleet = sql.Identifier(f"{kind}_fleet_minutely")
    device_id, rollup_energy, raw_energy = (
        sql.Identifier(device),
        sql.Identifier(f"{energy}_sum"),
        sql.Identifier(energy),
    )
    # The first branch names the columns: Citus, pushing an aggregate over
    # them down to its workers, drops a column list given after the CTE's name.
    whole = sql.SQL(
        "SELECT {device_id} AS device_id, {rollup_energy} AS kwh FROM {hourly}\n"
        "    WHERE hour >= %(rollup_start)s AND hour < %(rollup_end)s"
    ).format(device_id=device_id, rollup_energy=rollup_energy, hourly=hourly)
    quarters = sql.SQL("ARRAY[{}]").format(
        sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in quarter_columns(energy))
    )
    first_quarter = sql.Identifier(quarter_columns(energy)[0])
    # Per edge: its hour's parameter, the fleet minute rows that would hold a
    # reading of that hour outside the window, its raw range, the quarters it
    # takes from the rollup, and the raw rest.
    edges = (
        (
            "head_hour",
            sql.SQL("minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s"),
            ("head_start", "head_end"),
            sql.SQL("%(head_first_quarter)s::int4:4"),
            ("head_start", "head_split"),
        ),
        (
            "tail_hour",
            sql.SQL(
                "minute > %(tail_end)s - interval '1 minute'"
                " AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s"
            ),
            ("tail_start", "tail_end"),
            sql.SQL("1:%(tail_last_quarter)s::int4"),
            ("tail_split", "tail_end"),
        ),
    )

    def raw(start: str, end: str, when: sql.Composable) -> sql.Composed:
        """History's energies in [`start`, `end`) (parameter names), when `when` holds."""
        return sql.SQL(
            "SELECT {device_id}, {raw_energy} FROM {history}\n"
            "    WHERE ts >= {start} AND ts < {end} AND {when}"
        ).format(
            device_id=device_id,
            raw_energy=raw_energy,
            history=history,
            start=sql.Placeholder(start),
            end=sql.Placeholder(end),
            when=when,
        )

    branches: list[sql.Composable] = [whole]
    for edge_hour, outside, raw_range, quarters_in_window, rest in edges:
        hour = sql.Placeholder(edge_hour)
        in_rollup = sql.SQL(
            "({hour}::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {fleet} WHERE {outside}))"
        ).format(hour=hour, fleet=fleet, outside=outside)
        in_quarters = sql.SQL(
            "({hour}::timestamptz IS NOT NULL AND NOT {in_rollup} AND NOT EXISTS"
            " (SELECT 1 FROM {hourly} WHERE hour = {hour} AND {first_quarter} IS NULL))"
        ).format(hour=hour, in_rollup=in_rollup, hourly=hourly, first_quarter=first_quarter)

        branches += [
            sql.SQL(
                "SELECT {device_id}, {rollup_energy} FROM {hourly} WHERE hour = {hour} AND {in_rollup}"
            ).format(
                device_id=device_id,
                rollup_energy=rollup_energy,
                hourly=hourly,
                hour=hour,
                in_rollup=in_rollup,
            ),
            sql.SQL(
                "SELECT r.{device_id}, unnest(({quarters})[{quarters_in_window}]) FROM {hourly} AS r\n"
                "    WHERE r.hour = {hour} AND {in_quarters}"
            ).format(
                device_id=device_id,
                hourly=hourly,
                quarters=quarters,
                hour=hour,
                quarters_in_window=quarters_in_window,
                in_quarters=in_quarters,
            ),
            raw(*rest, in_quarters),
            raw(*raw_range, sql.SQL("NOT {} AND NOT {}").format(in_rollup, in_quarters)),
        ]
    return sql.SQL("{name} AS (\n    {branches}\n)").format(
        name=sql.Identifier(name), branches=sql.SQL("\n    UNION ALL\n    ").join(branches)
    )


def _window_energies(name: str, kind: str, device: str, energy: str) -> bytes:
    """Each device's energy in the window (`_energy_parts`), as two array
    literals in one row: device ids and their energies, in the same order.

    Text, not rows: the ranking takes them back as parameters, so the
    service only carries two strings between the statements, never 10,000
    Python objects per kind. float8's text is exact (the shortest form that
    reads back to the same double), 'Infinity' included. No device: NULLs.
    """
    return rendered(
        sql.SQL(
            """
WITH {parts},
per_device AS (SELECT device_id AS id, {kwh} AS kwh FROM {name} GROUP BY 1)
SELECT array_agg(id)::text, array_agg(kwh)::text FROM per_device
"""
        ).format(
            parts=_energy_parts(name, kind, device, energy),
            kwh=saturating_sum(sql.Identifier("kwh")),
            name=sql.Identifier(name),
        )
    )


# AC energy per meter and DC energy per vehicle in the window: the ranking's
# two halves, each one statement, so that each reads its edge checks and
# its energies in one snapshot. They run side by side on two connections
# sharing one snapshot where the repository can (about half the time of
# one statement reading both on two cores).
SELECT_METER_ENERGIES: Final = _window_energies("meter_energy", "meter", "meter_id", "kwh_consumed_ac")
SELECT_VEHICLE_ENERGIES: Final = _window_energies(
    "vehicle_energy", "vehicle", "vehicle_id", "kwh_delivered_dc"
)

# Efficiency per linked vehicle with AC energy in the window, outside
# [threshold, 1], worst first, from the energies SELECT_METER_ENERGIES and
# SELECT_VEHICLE_ENERGIES found (array literals, as they wrote them).
# Vehicles without DC readings have efficiency 0; one whose AC and DC sums
# are both +Infinity has none ('NaN') and is not listed.
# A ratio beyond the largest float8 (DC 1e308 over AC 0.5) is +Infinity, as in
# IEEE arithmetic, where PostgreSQL's division fails: only an AC below 1 can
# overflow it, and CASE tests that first, so the product cannot overflow.
SELECT_ANOMALIES: Final = """
WITH ac (meter_id, kwh) AS (
    SELECT * FROM unnest(%(meter_ids)s::text[], %(meter_energies)s::float8[])
),
dc (vehicle_id, kwh) AS (
    SELECT * FROM unnest(%(vehicle_ids)s::text[], %(vehicle_energies)s::float8[])
),
rated AS (
    SELECT l.vehicle_id, l.meter_id, ac.kwh AS ac_kwh, coalesce(dc.kwh, 0) AS dc_kwh,
           CASE WHEN ac.kwh >= 1 THEN coalesce(dc.kwh, 0) / ac.kwh
                WHEN coalesce(dc.kwh, 0) > ac.kwh * float8 '1.7976931348623157e308' THEN float8 'Infinity'
                ELSE coalesce(dc.kwh, 0) / ac.kwh END AS ratio
    FROM vehicle_meter_map AS l
    JOIN ac USING (meter_id)
    LEFT JOIN dc USING (vehicle_id)
    WHERE ac.kwh > 0
)
SELECT vehicle_id, meter_id, ac_kwh, dc_kwh, ratio,
       greatest(%(threshold)s - ratio, ratio - 1) AS deviation
FROM rated
WHERE (ratio < %(threshold)s OR ratio > 1) AND ratio <> 'NaN'
ORDER BY deviation DESC, vehicle_id
LIMIT %(limit)s OFFSET %(offset)s
"""
