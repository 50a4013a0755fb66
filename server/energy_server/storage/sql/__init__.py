"""Named SQL, one module per table group; values always travel as parameters."""

from typing import Final

from psycopg import sql

__all__ = [
    "DATA_TABLES",
    "ENERGY_FIELDS",
    "QUARTER_MINUTES",
    "STATISTICS",
    "combined_statistic",
    "quarter_columns",
    "rendered",
    "saturating_add",
    "saturating_sum",
    "statistic_columns",
    "statistic_of",
]

# Every table that holds data (the migration ledger and retention horizons aside).
DATA_TABLES: Final = (
    "meter_readings",
    "vehicle_readings",
    "meter_current",
    "vehicle_current",
    "vehicle_meter_map",
    "meter_hourly",
    "vehicle_hourly",
    "meter_fleet_minutely",
    "vehicle_fleet_minutely",
)

# What a rollup row keeps of each field, in column order.
STATISTICS: Final = ("sum", "min", "max")


def statistic_columns(fields: tuple[str, ...]) -> list[str]:
    """A rollup table's statistic columns: `<field>_sum`, `_min`, `_max` for each field."""
    return [f"{field}_{statistic}" for field in fields for statistic in STATISTICS]


# The field of each device kind whose hourly rollup is also kept per quarter
# hour (migration 0007): the energies, which window totals add up.
ENERGY_FIELDS: Final = {"meter": "kwh_consumed_ac", "vehicle": "kwh_delivered_dc"}
# The minute of the hour each quarter starts at.
QUARTER_MINUTES: Final = (0, 15, 30, 45)


def quarter_columns(field: str) -> list[str]:
    """A rollup row's quarter-hour sums of `field`: `<field>_sum_00`, `_15`, `_30`, `_45`."""
    return [f"{field}_sum_{minute:02d}" for minute in QUARTER_MINUTES]


# Below this a value goes to the built-in sum(): no fewer than 1.7e18 of them overflow.
_LARGE: Final = sql.SQL("float8 '1e290'")


def saturating_add(total: sql.Composable, amount: sql.Composable) -> sql.Composed:
    """`total + amount`, +Infinity where that overflows float8 (migration 0004 says why).

    NULL stands for "no rows", as sum() has it: NULL plus x is x. Inline
    rather than a call of the migration's function, so that the rollup
    upsert pays a comparison per row, not a PL/pgSQL call.
    """
    return sql.SQL(
        "CASE WHEN {total} IS NULL THEN {amount} WHEN {amount} IS NULL THEN {total}"
        " WHEN {total} > float8 '1.7976931348623157e308' - {amount} THEN float8 'Infinity'"
        " ELSE {total} + {amount} END"
    ).format(total=total, amount=amount)


def saturating_sum(column: sql.Composable, where: sql.Composable | None = None) -> sql.Composed:
    """sum(column) that saturates at +Infinity instead of failing with an overflow,
    over the rows that satisfy `where` when given.

    Values below 1e290 go to the built-in sum(); only larger ones pay the
    PL/pgSQL aggregate of migration 0004.
    """
    also = sql.SQL("") if where is None else sql.SQL(" AND {}").format(where)
    return saturating_add(
        sql.SQL("sum({0}) FILTER (WHERE {0} < {large}{also})").format(column, large=_LARGE, also=also),
        sql.SQL("saturating_sum({0}) FILTER (WHERE {0} >= {large}{also})").format(
            column, large=_LARGE, also=also
        ),
    )


def statistic_of(statistic: str, column: sql.Composable) -> sql.Composed:
    """The aggregate computing `statistic` over rows of `column` (raw values or partial statistics)."""
    if statistic == "sum":
        return saturating_sum(column)
    return sql.SQL("{}({})").format(sql.SQL(statistic), column)


def combined_statistic(statistic: str, left: sql.Composable, right: sql.Composable) -> sql.Composed:
    """Two partial values of `statistic` combined into one (adding rollups is associative)."""
    if statistic == "sum":
        return saturating_add(left, right)
    combine = {"min": "least", "max": "greatest"}[statistic]
    return sql.SQL("{}({}, {})").format(sql.SQL(combine), left, right)


def rendered(statement: sql.Composable) -> bytes:
    """A statement composed from identifiers, rendered once, at import.

    psycopg renders a `sql.Composed` again on every execute: 0.6 ms for the
    ingest statement, paid per committed batch (measured with cProfile, about
    a sixth of the server's CPU at one reading per call). Identifiers here are
    our own table and column names, so rendering without a connection is exact.
    """
    return statement.as_bytes(None)
