"""SQL of the reading tables: history (`*_readings`) and hot state (`*_current`).

Each statement stores one batch in one round trip and judges every reading
of it. The batch arrives as typed arrays in binary (one per column, with each
reading's position in the batch) and `unnest` turns it into rows:

1. `batch`: the rows, timestamps turned from Unix microseconds into timestamptz.
2. `inserted`: append to history in key order; `ON CONFLICT DO NOTHING`
   absorbs duplicates, and RETURNING names the rows that were really new.
3. `previous`: the current rows those devices had when the statement began.
4. `upserted`: the newest inserted row per device (collapsed with DISTINCT ON)
   replaces current only when strictly newer; rows go in device order so
   that concurrent batches lock current rows in one order and cannot deadlock.
5. `rolled_up`: the inserted rows (only those: duplicates never count) added
   to their device's hourly rollup, in key order for the same reason.
6. The result: only the readings that were not plainly accepted, as
   (position, outcome) with outcome 1 = duplicate (not inserted) and
   2 = stale (inserted, but older than the device's current row before the
   batch or than an earlier reading of the batch, or beaten by a concurrent
   writer). An all-new batch returns no rows at all.

Callers must send each (device, timestamp) at most once per batch.
"""

from typing import Final

from psycopg import sql

__all__ = [
    "OUTCOME_DUPLICATE",
    "OUTCOME_STALE",
    "PING",
    "STORE_METER_BATCH",
    "STORE_VEHICLE_BATCH",
]

OUTCOME_DUPLICATE: Final = 1
OUTCOME_STALE: Final = 2

# The tail both statements share; identifiers are filled in through psycopg.sql.
_JUDGE: Final = sql.SQL(
    """
previous AS (
    SELECT c.{device}, c.ts
    FROM {current} AS c
    WHERE c.{device} IN (SELECT {device} FROM inserted)
),
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

STORE_METER_BATCH: Final = sql.Composed(
    [
        sql.SQL(
            """
WITH batch AS (
    SELECT b.position, b.meter_id,
           timestamptz 'epoch' + b.ts_us * interval '1 microsecond' AS ts,
           b.kwh_consumed_ac, b.voltage
    FROM unnest(%(positions)b::int4[], %(device_ids)b::text[], %(ts_us)b::int8[],
                %(kwh_consumed_ac)b::float8[], %(voltage)b::float8[])
        AS b (position, meter_id, ts_us, kwh_consumed_ac, voltage)
),
inserted AS (
    INSERT INTO meter_readings (meter_id, ts, kwh_consumed_ac, voltage)
    SELECT meter_id, ts, kwh_consumed_ac, voltage FROM batch ORDER BY meter_id, ts
    ON CONFLICT (meter_id, ts) DO NOTHING
    RETURNING meter_id, ts, kwh_consumed_ac, voltage
),
upserted AS (
    INSERT INTO meter_current AS c (meter_id, ts, kwh_consumed_ac, voltage)
    SELECT DISTINCT ON (meter_id) meter_id, ts, kwh_consumed_ac, voltage
    FROM inserted
    ORDER BY meter_id, ts DESC
    ON CONFLICT (meter_id) DO UPDATE SET
        ts = EXCLUDED.ts,
        kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
        voltage = EXCLUDED.voltage
    WHERE c.ts < EXCLUDED.ts
    RETURNING meter_id
),
rolled_up AS (
    INSERT INTO meter_hourly AS h
    SELECT meter_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
           sum(kwh_consumed_ac), min(kwh_consumed_ac), max(kwh_consumed_ac),
           sum(voltage), min(voltage), max(voltage), min(ts), max(ts)
    FROM inserted
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (meter_id, hour) DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        kwh_consumed_ac_sum = h.kwh_consumed_ac_sum + EXCLUDED.kwh_consumed_ac_sum,
        kwh_consumed_ac_min = least(h.kwh_consumed_ac_min, EXCLUDED.kwh_consumed_ac_min),
        kwh_consumed_ac_max = greatest(h.kwh_consumed_ac_max, EXCLUDED.kwh_consumed_ac_max),
        voltage_sum = h.voltage_sum + EXCLUDED.voltage_sum,
        voltage_min = least(h.voltage_min, EXCLUDED.voltage_min),
        voltage_max = greatest(h.voltage_max, EXCLUDED.voltage_max),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),"""
        ),
        _JUDGE.format(device=sql.Identifier("meter_id"), current=sql.Identifier("meter_current")),
    ]
)

STORE_VEHICLE_BATCH: Final = sql.Composed(
    [
        sql.SQL(
            """
WITH batch AS (
    SELECT b.position, b.vehicle_id,
           timestamptz 'epoch' + b.ts_us * interval '1 microsecond' AS ts,
           b.soc, b.kwh_delivered_dc, b.battery_temp
    FROM unnest(%(positions)b::int4[], %(device_ids)b::text[], %(ts_us)b::int8[], %(soc)b::float8[],
                %(kwh_delivered_dc)b::float8[], %(battery_temp)b::float8[])
        AS b (position, vehicle_id, ts_us, soc, kwh_delivered_dc, battery_temp)
),
inserted AS (
    INSERT INTO vehicle_readings (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)
    SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp FROM batch ORDER BY vehicle_id, ts
    ON CONFLICT (vehicle_id, ts) DO NOTHING
    RETURNING vehicle_id, ts, soc, kwh_delivered_dc, battery_temp
),
upserted AS (
    INSERT INTO vehicle_current AS c (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)
    SELECT DISTINCT ON (vehicle_id) vehicle_id, ts, soc, kwh_delivered_dc, battery_temp
    FROM inserted
    ORDER BY vehicle_id, ts DESC
    ON CONFLICT (vehicle_id) DO UPDATE SET
        ts = EXCLUDED.ts,
        soc = EXCLUDED.soc,
        kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
        battery_temp = EXCLUDED.battery_temp
    WHERE c.ts < EXCLUDED.ts
    RETURNING vehicle_id
),
rolled_up AS (
    INSERT INTO vehicle_hourly AS h
    SELECT vehicle_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
           sum(soc), min(soc), max(soc),
           sum(kwh_delivered_dc), min(kwh_delivered_dc), max(kwh_delivered_dc),
           sum(battery_temp), min(battery_temp), max(battery_temp), min(ts), max(ts)
    FROM inserted
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (vehicle_id, hour) DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        soc_sum = h.soc_sum + EXCLUDED.soc_sum,
        soc_min = least(h.soc_min, EXCLUDED.soc_min),
        soc_max = greatest(h.soc_max, EXCLUDED.soc_max),
        kwh_delivered_dc_sum = h.kwh_delivered_dc_sum + EXCLUDED.kwh_delivered_dc_sum,
        kwh_delivered_dc_min = least(h.kwh_delivered_dc_min, EXCLUDED.kwh_delivered_dc_min),
        kwh_delivered_dc_max = greatest(h.kwh_delivered_dc_max, EXCLUDED.kwh_delivered_dc_max),
        battery_temp_sum = h.battery_temp_sum + EXCLUDED.battery_temp_sum,
        battery_temp_min = least(h.battery_temp_min, EXCLUDED.battery_temp_min),
        battery_temp_max = greatest(h.battery_temp_max, EXCLUDED.battery_temp_max),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),"""
        ),
        _JUDGE.format(device=sql.Identifier("vehicle_id"), current=sql.Identifier("vehicle_current")),
    ]
)

PING: Final = "SELECT 1"

# Rebuild a rollup table from history (the `backfill` command). History is
# locked against writes for the duration, so no ingest lands between the
# DELETE and the INSERT; ingest waits and then adds to the rebuilt rows.
LOCK_METER_HISTORY: Final = "LOCK TABLE meter_readings IN SHARE MODE"
DELETE_METER_HOURLY: Final = "DELETE FROM meter_hourly"
INSERT_METER_HOURLY_FROM_HISTORY: Final = """
INSERT INTO meter_hourly
SELECT meter_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(kwh_consumed_ac), min(kwh_consumed_ac), max(kwh_consumed_ac),
       sum(voltage), min(voltage), max(voltage), min(ts), max(ts)
FROM meter_readings
GROUP BY 1, 2
"""
LOCK_VEHICLE_HISTORY: Final = "LOCK TABLE vehicle_readings IN SHARE MODE"
DELETE_VEHICLE_HOURLY: Final = "DELETE FROM vehicle_hourly"
INSERT_VEHICLE_HOURLY_FROM_HISTORY: Final = """
INSERT INTO vehicle_hourly
SELECT vehicle_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(soc), min(soc), max(soc),
       sum(kwh_delivered_dc), min(kwh_delivered_dc), max(kwh_delivered_dc),
       sum(battery_temp), min(battery_temp), max(battery_temp), min(ts), max(ts)
FROM vehicle_readings
GROUP BY 1, 2
"""
