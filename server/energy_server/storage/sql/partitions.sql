-- Every statement of energy_server/storage/sql/partitions.py, as the server sends it.
-- Written by `make gen` (scripts/render_sql.py); do not edit: change the Python.
-- %(name)s is a parameter; values never enter the text.

-- name: TRY_LOCK_MAINTENANCE
SELECT pg_try_advisory_lock(%(key)s);

-- name: UNLOCK_MAINTENANCE
SELECT pg_advisory_unlock(%(key)s);

-- name: LOCK_PARTITION_DDL
SELECT energy_lock_for_partition_ddl(%(key)s);

-- name: SELECT_PARTITIONS
SELECT c.relname,
       (regexp_match(bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lower_bound,
       (regexp_match(bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound,
       i.inhdetachpending
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS bound
WHERE i.inhparent = %(parent)s::regclass
ORDER BY lower_bound;

-- name: CREATE_PARTITION
SELECT energy_create_partition(%(parent)s::regclass, %(lower)s, %(upper)s);

-- name: SELECT_HORIZONS
SELECT tier, kept_since, moved_at FROM retention_horizons;

-- name: UPSERT_HORIZON
INSERT INTO retention_horizons AS h (tier, kept_since, moved_at) VALUES (%(tier)s, %(kept_since)s, now())
ON CONFLICT (tier) DO UPDATE SET kept_since = EXCLUDED.kept_since, moved_at = EXCLUDED.moved_at
WHERE h.kept_since < EXCLUDED.kept_since;

-- name: detach_partition(meter_readings, meter_readings_20260101)
ALTER TABLE "meter_readings" DETACH PARTITION "meter_readings_20260101" CONCURRENTLY;

-- name: finalize_detach(meter_readings, meter_readings_20260101)
ALTER TABLE "meter_readings" DETACH PARTITION "meter_readings_20260101" FINALIZE;

-- name: drop_detached_partition(meter_readings_20260101)
DROP TABLE "meter_readings_20260101";
