-- Every statement of energy_server/storage/sql/readings.py, as the server sends it.
-- Written by `make gen` (scripts/render_sql.py); do not edit: change the Python.
-- %(name)s is a parameter; values never enter the text.

-- name: STORE_METER_BATCH
WITH batch AS (
    SELECT b.position, b."meter_id", timestamptz 'epoch' + b.ts_us * interval '1 microsecond' AS ts,
           b."kwh_consumed_ac", b."voltage"
    FROM unnest(%(positions)b::int4[], %(device_ids)b::text[], %(ts_us)b::int8[], %(kwh_consumed_ac)b::float8[], %(voltage)b::float8[]) AS b ("position", "meter_id", "ts_us", "kwh_consumed_ac", "voltage")
),
previous AS MATERIALIZED (
    SELECT c."meter_id", c.ts
    FROM "meter_current" AS c
    WHERE c."meter_id" = ANY(%(device_ids)b::text[])
),
inserted AS (
    INSERT INTO "meter_readings" ("meter_id", "ts", "kwh_consumed_ac", "voltage")
    SELECT "meter_id", "ts", "kwh_consumed_ac", "voltage" FROM batch ORDER BY "meter_id", ts
    ON CONFLICT ("meter_id", ts) DO NOTHING
    RETURNING "meter_id", "ts", "kwh_consumed_ac", "voltage"
),
upserted AS (
    INSERT INTO "meter_current" AS c ("meter_id", "ts", "kwh_consumed_ac", "voltage")
    SELECT DISTINCT ON ("meter_id") "meter_id", "ts", "kwh_consumed_ac", "voltage"
    FROM inserted
    ORDER BY "meter_id", ts DESC
    ON CONFLICT ("meter_id") DO UPDATE SET "ts" = EXCLUDED."ts", "kwh_consumed_ac" = EXCLUDED."kwh_consumed_ac", "voltage" = EXCLUDED."voltage"
    WHERE c.ts < EXCLUDED.ts
    RETURNING "meter_id"
),
rolled_up AS (
    INSERT INTO "meter_hourly" AS h ("meter_id", "hour", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts")
    SELECT "meter_id", date_bin('1 hour', ts, timestamptz 'epoch'), count(*), CASE WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') + saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') END, min("kwh_consumed_ac"), max("kwh_consumed_ac"), CASE WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') IS NULL THEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') WHEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') IS NULL THEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') + saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') END, min("voltage"), max("voltage"), min(ts), max(ts)
    FROM "inserted"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("meter_id", "hour") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "kwh_consumed_ac_sum" = CASE WHEN h."kwh_consumed_ac_sum" IS NULL THEN EXCLUDED."kwh_consumed_ac_sum" WHEN EXCLUDED."kwh_consumed_ac_sum" IS NULL THEN h."kwh_consumed_ac_sum" WHEN h."kwh_consumed_ac_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_consumed_ac_sum" THEN float8 'Infinity' ELSE h."kwh_consumed_ac_sum" + EXCLUDED."kwh_consumed_ac_sum" END,
        "kwh_consumed_ac_min" = least(h."kwh_consumed_ac_min", EXCLUDED."kwh_consumed_ac_min"),
        "kwh_consumed_ac_max" = greatest(h."kwh_consumed_ac_max", EXCLUDED."kwh_consumed_ac_max"),
        "voltage_sum" = CASE WHEN h."voltage_sum" IS NULL THEN EXCLUDED."voltage_sum" WHEN EXCLUDED."voltage_sum" IS NULL THEN h."voltage_sum" WHEN h."voltage_sum" > float8 '1.7976931348623157e308' - EXCLUDED."voltage_sum" THEN float8 'Infinity' ELSE h."voltage_sum" + EXCLUDED."voltage_sum" END,
        "voltage_min" = least(h."voltage_min", EXCLUDED."voltage_min"),
        "voltage_max" = greatest(h."voltage_max", EXCLUDED."voltage_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),
fleet_rolled_up AS (
    INSERT INTO "meter_fleet_minutely" AS h ("minute", "shard", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts")
    SELECT date_bin('1 minute', ts, timestamptz 'epoch'), %(shard)s::int2, count(*), CASE WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') + saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') END, min("kwh_consumed_ac"), max("kwh_consumed_ac"), CASE WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') IS NULL THEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') WHEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') IS NULL THEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') + saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') END, min("voltage"), max("voltage"), min(ts), max(ts)
    FROM "inserted"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("minute", "shard") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "kwh_consumed_ac_sum" = CASE WHEN h."kwh_consumed_ac_sum" IS NULL THEN EXCLUDED."kwh_consumed_ac_sum" WHEN EXCLUDED."kwh_consumed_ac_sum" IS NULL THEN h."kwh_consumed_ac_sum" WHEN h."kwh_consumed_ac_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_consumed_ac_sum" THEN float8 'Infinity' ELSE h."kwh_consumed_ac_sum" + EXCLUDED."kwh_consumed_ac_sum" END,
        "kwh_consumed_ac_min" = least(h."kwh_consumed_ac_min", EXCLUDED."kwh_consumed_ac_min"),
        "kwh_consumed_ac_max" = greatest(h."kwh_consumed_ac_max", EXCLUDED."kwh_consumed_ac_max"),
        "voltage_sum" = CASE WHEN h."voltage_sum" IS NULL THEN EXCLUDED."voltage_sum" WHEN EXCLUDED."voltage_sum" IS NULL THEN h."voltage_sum" WHEN h."voltage_sum" > float8 '1.7976931348623157e308' - EXCLUDED."voltage_sum" THEN float8 'Infinity' ELSE h."voltage_sum" + EXCLUDED."voltage_sum" END,
        "voltage_min" = least(h."voltage_min", EXCLUDED."voltage_min"),
        "voltage_max" = greatest(h."voltage_max", EXCLUDED."voltage_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),
joined AS (
    SELECT b.position, b."meter_id", b.ts, i."meter_id" IS NOT NULL AS is_new
    FROM batch AS b
    LEFT JOIN inserted AS i USING ("meter_id", ts)
),
fresh AS (
    SELECT position, "meter_id", ts,
           max(ts) OVER (PARTITION BY "meter_id" ORDER BY position
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest_before
    FROM joined
    WHERE is_new
)
SELECT position, 1 AS outcome FROM joined WHERE NOT is_new
UNION ALL
SELECT f.position, 2
FROM fresh AS f
LEFT JOIN previous AS p USING ("meter_id")
LEFT JOIN upserted AS u USING ("meter_id")
WHERE f.ts < p.ts OR f.ts < f.newest_before OR u."meter_id" IS NULL;

-- name: STORE_VEHICLE_BATCH
WITH batch AS (
    SELECT b.position, b."vehicle_id", timestamptz 'epoch' + b.ts_us * interval '1 microsecond' AS ts,
           b."soc", b."kwh_delivered_dc", b."battery_temp"
    FROM unnest(%(positions)b::int4[], %(device_ids)b::text[], %(ts_us)b::int8[], %(soc)b::float8[], %(kwh_delivered_dc)b::float8[], %(battery_temp)b::float8[]) AS b ("position", "vehicle_id", "ts_us", "soc", "kwh_delivered_dc", "battery_temp")
),
previous AS MATERIALIZED (
    SELECT c."vehicle_id", c.ts
    FROM "vehicle_current" AS c
    WHERE c."vehicle_id" = ANY(%(device_ids)b::text[])
),
inserted AS (
    INSERT INTO "vehicle_readings" ("vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp")
    SELECT "vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp" FROM batch ORDER BY "vehicle_id", ts
    ON CONFLICT ("vehicle_id", ts) DO NOTHING
    RETURNING "vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp"
),
upserted AS (
    INSERT INTO "vehicle_current" AS c ("vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp")
    SELECT DISTINCT ON ("vehicle_id") "vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp"
    FROM inserted
    ORDER BY "vehicle_id", ts DESC
    ON CONFLICT ("vehicle_id") DO UPDATE SET "ts" = EXCLUDED."ts", "soc" = EXCLUDED."soc", "kwh_delivered_dc" = EXCLUDED."kwh_delivered_dc", "battery_temp" = EXCLUDED."battery_temp"
    WHERE c.ts < EXCLUDED.ts
    RETURNING "vehicle_id"
),
rolled_up AS (
    INSERT INTO "vehicle_hourly" AS h ("vehicle_id", "hour", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts")
    SELECT "vehicle_id", date_bin('1 hour', ts, timestamptz 'epoch'), count(*), CASE WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') IS NULL THEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') WHEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') IS NULL THEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc") FILTER (WHERE "soc" < float8 '1e290') + saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') END, min("soc"), max("soc"), CASE WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') + saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') END, min("kwh_delivered_dc"), max("kwh_delivered_dc"), CASE WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') WHEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') IS NULL THEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') + saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') END, min("battery_temp"), max("battery_temp"), min(ts), max(ts)
    FROM "inserted"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("vehicle_id", "hour") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "soc_sum" = CASE WHEN h."soc_sum" IS NULL THEN EXCLUDED."soc_sum" WHEN EXCLUDED."soc_sum" IS NULL THEN h."soc_sum" WHEN h."soc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."soc_sum" THEN float8 'Infinity' ELSE h."soc_sum" + EXCLUDED."soc_sum" END,
        "soc_min" = least(h."soc_min", EXCLUDED."soc_min"),
        "soc_max" = greatest(h."soc_max", EXCLUDED."soc_max"),
        "kwh_delivered_dc_sum" = CASE WHEN h."kwh_delivered_dc_sum" IS NULL THEN EXCLUDED."kwh_delivered_dc_sum" WHEN EXCLUDED."kwh_delivered_dc_sum" IS NULL THEN h."kwh_delivered_dc_sum" WHEN h."kwh_delivered_dc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_delivered_dc_sum" THEN float8 'Infinity' ELSE h."kwh_delivered_dc_sum" + EXCLUDED."kwh_delivered_dc_sum" END,
        "kwh_delivered_dc_min" = least(h."kwh_delivered_dc_min", EXCLUDED."kwh_delivered_dc_min"),
        "kwh_delivered_dc_max" = greatest(h."kwh_delivered_dc_max", EXCLUDED."kwh_delivered_dc_max"),
        "battery_temp_sum" = CASE WHEN h."battery_temp_sum" IS NULL THEN EXCLUDED."battery_temp_sum" WHEN EXCLUDED."battery_temp_sum" IS NULL THEN h."battery_temp_sum" WHEN h."battery_temp_sum" > float8 '1.7976931348623157e308' - EXCLUDED."battery_temp_sum" THEN float8 'Infinity' ELSE h."battery_temp_sum" + EXCLUDED."battery_temp_sum" END,
        "battery_temp_min" = least(h."battery_temp_min", EXCLUDED."battery_temp_min"),
        "battery_temp_max" = greatest(h."battery_temp_max", EXCLUDED."battery_temp_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),
fleet_rolled_up AS (
    INSERT INTO "vehicle_fleet_minutely" AS h ("minute", "shard", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts")
    SELECT date_bin('1 minute', ts, timestamptz 'epoch'), %(shard)s::int2, count(*), CASE WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') IS NULL THEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') WHEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') IS NULL THEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc") FILTER (WHERE "soc" < float8 '1e290') + saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') END, min("soc"), max("soc"), CASE WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') + saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') END, min("kwh_delivered_dc"), max("kwh_delivered_dc"), CASE WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') WHEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') IS NULL THEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') + saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') END, min("battery_temp"), max("battery_temp"), min(ts), max(ts)
    FROM "inserted"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("minute", "shard") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "soc_sum" = CASE WHEN h."soc_sum" IS NULL THEN EXCLUDED."soc_sum" WHEN EXCLUDED."soc_sum" IS NULL THEN h."soc_sum" WHEN h."soc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."soc_sum" THEN float8 'Infinity' ELSE h."soc_sum" + EXCLUDED."soc_sum" END,
        "soc_min" = least(h."soc_min", EXCLUDED."soc_min"),
        "soc_max" = greatest(h."soc_max", EXCLUDED."soc_max"),
        "kwh_delivered_dc_sum" = CASE WHEN h."kwh_delivered_dc_sum" IS NULL THEN EXCLUDED."kwh_delivered_dc_sum" WHEN EXCLUDED."kwh_delivered_dc_sum" IS NULL THEN h."kwh_delivered_dc_sum" WHEN h."kwh_delivered_dc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_delivered_dc_sum" THEN float8 'Infinity' ELSE h."kwh_delivered_dc_sum" + EXCLUDED."kwh_delivered_dc_sum" END,
        "kwh_delivered_dc_min" = least(h."kwh_delivered_dc_min", EXCLUDED."kwh_delivered_dc_min"),
        "kwh_delivered_dc_max" = greatest(h."kwh_delivered_dc_max", EXCLUDED."kwh_delivered_dc_max"),
        "battery_temp_sum" = CASE WHEN h."battery_temp_sum" IS NULL THEN EXCLUDED."battery_temp_sum" WHEN EXCLUDED."battery_temp_sum" IS NULL THEN h."battery_temp_sum" WHEN h."battery_temp_sum" > float8 '1.7976931348623157e308' - EXCLUDED."battery_temp_sum" THEN float8 'Infinity' ELSE h."battery_temp_sum" + EXCLUDED."battery_temp_sum" END,
        "battery_temp_min" = least(h."battery_temp_min", EXCLUDED."battery_temp_min"),
        "battery_temp_max" = greatest(h."battery_temp_max", EXCLUDED."battery_temp_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts)
),
joined AS (
    SELECT b.position, b."vehicle_id", b.ts, i."vehicle_id" IS NOT NULL AS is_new
    FROM batch AS b
    LEFT JOIN inserted AS i USING ("vehicle_id", ts)
),
fresh AS (
    SELECT position, "vehicle_id", ts,
           max(ts) OVER (PARTITION BY "vehicle_id" ORDER BY position
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest_before
    FROM joined
    WHERE is_new
)
SELECT position, 1 AS outcome FROM joined WHERE NOT is_new
UNION ALL
SELECT f.position, 2
FROM fresh AS f
LEFT JOIN previous AS p USING ("vehicle_id")
LEFT JOIN upserted AS u USING ("vehicle_id")
WHERE f.ts < p.ts OR f.ts < f.newest_before OR u."vehicle_id" IS NULL;

-- name: PING
SELECT 1;

-- name: CLAIM_WRITER_NUMBER
SELECT nextval('fleet_writer_numbers');

-- name: LOCK_METER_HISTORY
LOCK TABLE meter_readings IN SHARE MODE;

-- name: DELETE_METER_ROLLUPS[0]
DELETE FROM meter_hourly;

-- name: DELETE_METER_ROLLUPS[1]
DELETE FROM meter_fleet_minutely;

-- name: INSERT_METER_HOURLY_FROM_HISTORY
INSERT INTO "meter_hourly" AS h ("meter_id", "hour", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts")
    SELECT "meter_id", date_bin('1 hour', ts, timestamptz 'epoch'), count(*), CASE WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') + saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') END, min("kwh_consumed_ac"), max("kwh_consumed_ac"), CASE WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') IS NULL THEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') WHEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') IS NULL THEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') + saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') END, min("voltage"), max("voltage"), min(ts), max(ts)
    FROM "meter_readings"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("meter_id", "hour") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "kwh_consumed_ac_sum" = CASE WHEN h."kwh_consumed_ac_sum" IS NULL THEN EXCLUDED."kwh_consumed_ac_sum" WHEN EXCLUDED."kwh_consumed_ac_sum" IS NULL THEN h."kwh_consumed_ac_sum" WHEN h."kwh_consumed_ac_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_consumed_ac_sum" THEN float8 'Infinity' ELSE h."kwh_consumed_ac_sum" + EXCLUDED."kwh_consumed_ac_sum" END,
        "kwh_consumed_ac_min" = least(h."kwh_consumed_ac_min", EXCLUDED."kwh_consumed_ac_min"),
        "kwh_consumed_ac_max" = greatest(h."kwh_consumed_ac_max", EXCLUDED."kwh_consumed_ac_max"),
        "voltage_sum" = CASE WHEN h."voltage_sum" IS NULL THEN EXCLUDED."voltage_sum" WHEN EXCLUDED."voltage_sum" IS NULL THEN h."voltage_sum" WHEN h."voltage_sum" > float8 '1.7976931348623157e308' - EXCLUDED."voltage_sum" THEN float8 'Infinity' ELSE h."voltage_sum" + EXCLUDED."voltage_sum" END,
        "voltage_min" = least(h."voltage_min", EXCLUDED."voltage_min"),
        "voltage_max" = greatest(h."voltage_max", EXCLUDED."voltage_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts);

-- name: INSERT_METER_FLEET_FROM_HISTORY
INSERT INTO "meter_fleet_minutely" AS h ("minute", "shard", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts")
    SELECT date_bin('1 minute', ts, timestamptz 'epoch'), 0::int2, count(*), CASE WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') WHEN sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" < float8 '1e290') + saturating_sum("kwh_consumed_ac") FILTER (WHERE "kwh_consumed_ac" >= float8 '1e290') END, min("kwh_consumed_ac"), max("kwh_consumed_ac"), CASE WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') IS NULL THEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') WHEN saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') IS NULL THEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') WHEN sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage") FILTER (WHERE "voltage" < float8 '1e290') + saturating_sum("voltage") FILTER (WHERE "voltage" >= float8 '1e290') END, min("voltage"), max("voltage"), min(ts), max(ts)
    FROM "meter_readings"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("minute", "shard") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "kwh_consumed_ac_sum" = CASE WHEN h."kwh_consumed_ac_sum" IS NULL THEN EXCLUDED."kwh_consumed_ac_sum" WHEN EXCLUDED."kwh_consumed_ac_sum" IS NULL THEN h."kwh_consumed_ac_sum" WHEN h."kwh_consumed_ac_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_consumed_ac_sum" THEN float8 'Infinity' ELSE h."kwh_consumed_ac_sum" + EXCLUDED."kwh_consumed_ac_sum" END,
        "kwh_consumed_ac_min" = least(h."kwh_consumed_ac_min", EXCLUDED."kwh_consumed_ac_min"),
        "kwh_consumed_ac_max" = greatest(h."kwh_consumed_ac_max", EXCLUDED."kwh_consumed_ac_max"),
        "voltage_sum" = CASE WHEN h."voltage_sum" IS NULL THEN EXCLUDED."voltage_sum" WHEN EXCLUDED."voltage_sum" IS NULL THEN h."voltage_sum" WHEN h."voltage_sum" > float8 '1.7976931348623157e308' - EXCLUDED."voltage_sum" THEN float8 'Infinity' ELSE h."voltage_sum" + EXCLUDED."voltage_sum" END,
        "voltage_min" = least(h."voltage_min", EXCLUDED."voltage_min"),
        "voltage_max" = greatest(h."voltage_max", EXCLUDED."voltage_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts);

-- name: LOCK_VEHICLE_HISTORY
LOCK TABLE vehicle_readings IN SHARE MODE;

-- name: DELETE_VEHICLE_ROLLUPS[0]
DELETE FROM vehicle_hourly;

-- name: DELETE_VEHICLE_ROLLUPS[1]
DELETE FROM vehicle_fleet_minutely;

-- name: INSERT_VEHICLE_HOURLY_FROM_HISTORY
INSERT INTO "vehicle_hourly" AS h ("vehicle_id", "hour", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts")
    SELECT "vehicle_id", date_bin('1 hour', ts, timestamptz 'epoch'), count(*), CASE WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') IS NULL THEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') WHEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') IS NULL THEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc") FILTER (WHERE "soc" < float8 '1e290') + saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') END, min("soc"), max("soc"), CASE WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') + saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') END, min("kwh_delivered_dc"), max("kwh_delivered_dc"), CASE WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') WHEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') IS NULL THEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') + saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') END, min("battery_temp"), max("battery_temp"), min(ts), max(ts)
    FROM "vehicle_readings"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("vehicle_id", "hour") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "soc_sum" = CASE WHEN h."soc_sum" IS NULL THEN EXCLUDED."soc_sum" WHEN EXCLUDED."soc_sum" IS NULL THEN h."soc_sum" WHEN h."soc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."soc_sum" THEN float8 'Infinity' ELSE h."soc_sum" + EXCLUDED."soc_sum" END,
        "soc_min" = least(h."soc_min", EXCLUDED."soc_min"),
        "soc_max" = greatest(h."soc_max", EXCLUDED."soc_max"),
        "kwh_delivered_dc_sum" = CASE WHEN h."kwh_delivered_dc_sum" IS NULL THEN EXCLUDED."kwh_delivered_dc_sum" WHEN EXCLUDED."kwh_delivered_dc_sum" IS NULL THEN h."kwh_delivered_dc_sum" WHEN h."kwh_delivered_dc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_delivered_dc_sum" THEN float8 'Infinity' ELSE h."kwh_delivered_dc_sum" + EXCLUDED."kwh_delivered_dc_sum" END,
        "kwh_delivered_dc_min" = least(h."kwh_delivered_dc_min", EXCLUDED."kwh_delivered_dc_min"),
        "kwh_delivered_dc_max" = greatest(h."kwh_delivered_dc_max", EXCLUDED."kwh_delivered_dc_max"),
        "battery_temp_sum" = CASE WHEN h."battery_temp_sum" IS NULL THEN EXCLUDED."battery_temp_sum" WHEN EXCLUDED."battery_temp_sum" IS NULL THEN h."battery_temp_sum" WHEN h."battery_temp_sum" > float8 '1.7976931348623157e308' - EXCLUDED."battery_temp_sum" THEN float8 'Infinity' ELSE h."battery_temp_sum" + EXCLUDED."battery_temp_sum" END,
        "battery_temp_min" = least(h."battery_temp_min", EXCLUDED."battery_temp_min"),
        "battery_temp_max" = greatest(h."battery_temp_max", EXCLUDED."battery_temp_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts);

-- name: INSERT_VEHICLE_FLEET_FROM_HISTORY
INSERT INTO "vehicle_fleet_minutely" AS h ("minute", "shard", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts")
    SELECT date_bin('1 minute', ts, timestamptz 'epoch'), 0::int2, count(*), CASE WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') IS NULL THEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') WHEN saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') IS NULL THEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') WHEN sum("soc") FILTER (WHERE "soc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc") FILTER (WHERE "soc" < float8 '1e290') + saturating_sum("soc") FILTER (WHERE "soc" >= float8 '1e290') END, min("soc"), max("soc"), CASE WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') WHEN sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" < float8 '1e290') + saturating_sum("kwh_delivered_dc") FILTER (WHERE "kwh_delivered_dc" >= float8 '1e290') END, min("kwh_delivered_dc"), max("kwh_delivered_dc"), CASE WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') WHEN saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') IS NULL THEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') WHEN sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp") FILTER (WHERE "battery_temp" < float8 '1e290') + saturating_sum("battery_temp") FILTER (WHERE "battery_temp" >= float8 '1e290') END, min("battery_temp"), max("battery_temp"), min(ts), max(ts)
    FROM "vehicle_readings"
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT ("minute", "shard") DO UPDATE SET
        reading_count = h.reading_count + EXCLUDED.reading_count,
        "soc_sum" = CASE WHEN h."soc_sum" IS NULL THEN EXCLUDED."soc_sum" WHEN EXCLUDED."soc_sum" IS NULL THEN h."soc_sum" WHEN h."soc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."soc_sum" THEN float8 'Infinity' ELSE h."soc_sum" + EXCLUDED."soc_sum" END,
        "soc_min" = least(h."soc_min", EXCLUDED."soc_min"),
        "soc_max" = greatest(h."soc_max", EXCLUDED."soc_max"),
        "kwh_delivered_dc_sum" = CASE WHEN h."kwh_delivered_dc_sum" IS NULL THEN EXCLUDED."kwh_delivered_dc_sum" WHEN EXCLUDED."kwh_delivered_dc_sum" IS NULL THEN h."kwh_delivered_dc_sum" WHEN h."kwh_delivered_dc_sum" > float8 '1.7976931348623157e308' - EXCLUDED."kwh_delivered_dc_sum" THEN float8 'Infinity' ELSE h."kwh_delivered_dc_sum" + EXCLUDED."kwh_delivered_dc_sum" END,
        "kwh_delivered_dc_min" = least(h."kwh_delivered_dc_min", EXCLUDED."kwh_delivered_dc_min"),
        "kwh_delivered_dc_max" = greatest(h."kwh_delivered_dc_max", EXCLUDED."kwh_delivered_dc_max"),
        "battery_temp_sum" = CASE WHEN h."battery_temp_sum" IS NULL THEN EXCLUDED."battery_temp_sum" WHEN EXCLUDED."battery_temp_sum" IS NULL THEN h."battery_temp_sum" WHEN h."battery_temp_sum" > float8 '1.7976931348623157e308' - EXCLUDED."battery_temp_sum" THEN float8 'Infinity' ELSE h."battery_temp_sum" + EXCLUDED."battery_temp_sum" END,
        "battery_temp_min" = least(h."battery_temp_min", EXCLUDED."battery_temp_min"),
        "battery_temp_max" = greatest(h."battery_temp_max", EXCLUDED."battery_temp_max"),
        first_ts = least(h.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(h.last_ts, EXCLUDED.last_ts);
