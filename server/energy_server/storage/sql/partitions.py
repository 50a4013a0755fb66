"""SQL of the time partitions and the retention horizons (migration 0005).

Partition bounds are read back from the catalog in the session's own time
zone and cast there, so no text form of a timestamp crosses into Python.
Creating a partition is `energy_create_partition()` of migration 0005,
called with parameters; detaching and dropping one are DDL, which takes no
parameters: those statements are composed from identifiers (the parent's
and the partition's names, both read from the catalog) and nothing else.
"""

from typing import Final

from psycopg import sql

__all__ = [
    "CREATE_PARTITION",
    "LOCK_PARTITION_DDL",
    "MAINTENANCE_LOCK_KEY",
    "PARTITION_DDL_LOCK_KEY",
    "SELECT_HORIZONS",
    "SELECT_PARTITIONS",
    "TRY_LOCK_MAINTENANCE",
    "UNLOCK_MAINTENANCE",
    "UPSERT_HORIZON",
    "detach_partition",
    "drop_detached_partition",
    "finalize_detach",
]

# Arbitrary but fixed, and distinct from the migrations' key: one maintenance
# run at a time over all replicas and workers, and one partition creator.
MAINTENANCE_LOCK_KEY: Final = 7_318_530_412_002
PARTITION_DDL_LOCK_KEY: Final = 7_318_530_412_003

TRY_LOCK_MAINTENANCE: Final = "SELECT pg_try_advisory_lock(%(key)s)"
UNLOCK_MAINTENANCE: Final = "SELECT pg_advisory_unlock(%(key)s)"
# Held to the end of the transaction that creates partitions: creators (the
# maintenance task, and ingest for a late reading) see each other's work. On
# Citus it also holds ingest for that moment (migration 0006 says why).
LOCK_PARTITION_DDL: Final = "SELECT energy_lock_for_partition_ddl(%(key)s)"

# Every partition of `%(parent)s`: name, bounds, and whether an interrupted
# DETACH ... CONCURRENTLY left it pending.
SELECT_PARTITIONS: Final = """
SELECT c.relname,
       (regexp_match(bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lower_bound,
       (regexp_match(bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper_bound,
       i.inhdetachpending
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS bound
WHERE i.inhparent = %(parent)s::regclass
ORDER BY lower_bound
"""

CREATE_PARTITION: Final = "SELECT energy_create_partition(%(parent)s::regclass, %(lower)s, %(upper)s)"

SELECT_HORIZONS: Final = "SELECT tier, kept_since, moved_at FROM retention_horizons"

# A horizon only moves forward.
# now() in VALUES, as in UPSERT_VEHICLE_LINK: a reference table on Citus.
UPSERT_HORIZON: Final = """
INSERT INTO retention_horizons AS h (tier, kept_since, moved_at) VALUES (%(tier)s, %(kept_since)s, now())
ON CONFLICT (tier) DO UPDATE SET kept_since = EXCLUDED.kept_since, moved_at = EXCLUDED.moved_at
WHERE h.kept_since < EXCLUDED.kept_since
"""


def detach_partition(parent: str, partition: str, *, concurrently: bool = True) -> sql.Composed:
    """Detach without blocking ingest or reads (outside any transaction block).

    Citus does not support CONCURRENTLY; there the detach takes its brief
    ACCESS EXCLUSIVE lock on the parent."""
    text = (
        "ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY"
        if concurrently
        else "ALTER TABLE {} DETACH PARTITION {}"
    )
    return sql.SQL(text).format(sql.Identifier(parent), sql.Identifier(partition))


def finalize_detach(parent: str, partition: str) -> sql.Composed:
    """Complete a DETACH ... CONCURRENTLY that was interrupted."""
    return sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
        sql.Identifier(parent), sql.Identifier(partition)
    )


def drop_detached_partition(partition: str) -> sql.Composed:
    return sql.SQL("DROP TABLE {}").format(sql.Identifier(partition))
