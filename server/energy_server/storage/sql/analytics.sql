-- Every statement of energy_server/storage/sql/analytics.py, as the server sends it.
-- Written by `make gen` (scripts/render_sql.py); do not edit: change the Python.
-- %(name)s is a parameter; values never enter the text.

-- name: METER.select_current
SELECT "meter_id", "ts", "kwh_consumed_ac", "voltage" FROM "meter_current" WHERE "meter_id" = %(device_id)s;

-- name: METER.select_current_after
SELECT "meter_id", "ts", "kwh_consumed_ac", "voltage" FROM "meter_current" WHERE "meter_id" > %(after)s AND ts >= %(seen_since)s ORDER BY "meter_id" LIMIT %(limit)s;

-- name: METER.select_device_aggregate
WITH "parts" ("device_id", "at", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts") AS (
    SELECT "meter_id" AS device_id, hour AS at, reading_count, "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", first_ts, last_ts
    FROM "meter_hourly"
    WHERE "meter_id" = %(device_id)s AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "meter_id", ts, 1, "kwh_consumed_ac", "kwh_consumed_ac", "kwh_consumed_ac", "voltage", "voltage", "voltage", ts, ts
    FROM "meter_readings"
    WHERE "meter_id" = %(device_id)s AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END, 0), min("kwh_consumed_ac_min"), max("kwh_consumed_ac_max"), coalesce(CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END, 0), min("voltage_min"), max("voltage_max"), min(first_ts), max(last_ts) FROM parts;

-- name: METER.select_linked_meter_aggregate
WITH "parts" ("device_id", "at", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts") AS (
    SELECT "meter_id" AS device_id, hour AS at, reading_count, "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", first_ts, last_ts
    FROM "meter_hourly"
    WHERE "meter_id" = (SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s) AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "meter_id", ts, 1, "kwh_consumed_ac", "kwh_consumed_ac", "kwh_consumed_ac", "voltage", "voltage", "voltage", ts, ts
    FROM "meter_readings"
    WHERE "meter_id" = (SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s) AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END, 0), min("kwh_consumed_ac_min"), max("kwh_consumed_ac_max"), coalesce(CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END, 0), min("voltage_min"), max("voltage_max"), min(first_ts), max(last_ts) FROM parts;

-- name: METER.select_fleet_aggregate
WITH parts ("reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts") AS (
    SELECT reading_count, "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", first_ts, last_ts
    FROM "meter_fleet_minutely"
    WHERE minute >= %(rollup_start)s AND minute < %(rollup_end)s
    UNION ALL
    SELECT 1, "kwh_consumed_ac", "kwh_consumed_ac", "kwh_consumed_ac", "voltage", "voltage", "voltage", ts, ts
    FROM "meter_readings"
    WHERE (ts >= %(head_start)s AND ts < %(head_end)s) OR (ts >= %(tail_start)s AND ts < %(tail_end)s)
),
active AS (
    SELECT count(*) AS devices
    FROM "meter_current" AS c
    WHERE c.ts >= %(head_start)s
      AND (c.ts < %(tail_end)s
           OR EXISTS (SELECT FROM "meter_readings" AS r
                      WHERE r."meter_id" = c."meter_id" AND r.ts >= %(head_start)s AND r.ts < %(tail_end)s))
)
SELECT (SELECT devices FROM active), coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END, 0), min("kwh_consumed_ac_min"), max("kwh_consumed_ac_max"), coalesce(CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END, 0), min("voltage_min"), max("voltage_max"), min(first_ts), max(last_ts) FROM parts;

-- name: METER.select_fleet_aggregate_by_device
WITH "parts" ("device_id", "at", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts") AS (
    SELECT "meter_id" AS device_id, hour AS at, reading_count, "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", first_ts, last_ts
    FROM "meter_hourly"
    WHERE hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "meter_id", ts, 1, "kwh_consumed_ac", "kwh_consumed_ac", "kwh_consumed_ac", "voltage", "voltage", "voltage", ts, ts
    FROM "meter_readings"
    WHERE ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT count(*), coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END, 0), min("kwh_consumed_ac_min"), max("kwh_consumed_ac_max"), coalesce(CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END, 0), min("voltage_min"), max("voltage_max"), min(first_ts), max(last_ts) FROM (SELECT device_id, sum(reading_count) AS reading_count, CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END AS "kwh_consumed_ac_sum", min("kwh_consumed_ac_min") AS "kwh_consumed_ac_min", max("kwh_consumed_ac_max") AS "kwh_consumed_ac_max", CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END AS "voltage_sum", min("voltage_min") AS "voltage_min", max("voltage_max") AS "voltage_max", min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM parts GROUP BY device_id) AS per_device;

-- name: METER.select_time_series
WITH "parts" ("device_id", "at", "reading_count", "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", "first_ts", "last_ts") AS (
    SELECT "meter_id" AS device_id, hour AS at, reading_count, "kwh_consumed_ac_sum", "kwh_consumed_ac_min", "kwh_consumed_ac_max", "voltage_sum", "voltage_min", "voltage_max", first_ts, last_ts
    FROM "meter_hourly"
    WHERE "meter_id" = %(device_id)s AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "meter_id", ts, 1, "kwh_consumed_ac", "kwh_consumed_ac", "kwh_consumed_ac", "voltage", "voltage", "voltage", ts, ts
    FROM "meter_readings"
    WHERE "meter_id" = %(device_id)s AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT date_bin(%(bucket)s, at, timestamptz 'epoch') AS bucket, coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') WHEN saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') IS NULL THEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') WHEN sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" < float8 '1e290') + saturating_sum("kwh_consumed_ac_sum") FILTER (WHERE "kwh_consumed_ac_sum" >= float8 '1e290') END, 0), min("kwh_consumed_ac_min"), max("kwh_consumed_ac_max"), coalesce(CASE WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') IS NULL THEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') WHEN saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') IS NULL THEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') WHEN sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("voltage_sum") FILTER (WHERE "voltage_sum" < float8 '1e290') + saturating_sum("voltage_sum") FILTER (WHERE "voltage_sum" >= float8 '1e290') END, 0), min("voltage_min"), max("voltage_max"), min(first_ts), max(last_ts) FROM parts GROUP BY 1 ORDER BY 1;

-- name: VEHICLE.select_current
SELECT "vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp" FROM "vehicle_current" WHERE "vehicle_id" = %(device_id)s;

-- name: VEHICLE.select_current_after
SELECT "vehicle_id", "ts", "soc", "kwh_delivered_dc", "battery_temp" FROM "vehicle_current" WHERE "vehicle_id" > %(after)s AND ts >= %(seen_since)s ORDER BY "vehicle_id" LIMIT %(limit)s;

-- name: VEHICLE.select_device_aggregate
WITH "parts" ("device_id", "at", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts") AS (
    SELECT "vehicle_id" AS device_id, hour AS at, reading_count, "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", first_ts, last_ts
    FROM "vehicle_hourly"
    WHERE "vehicle_id" = %(device_id)s AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "vehicle_id", ts, 1, "soc", "soc", "soc", "kwh_delivered_dc", "kwh_delivered_dc", "kwh_delivered_dc", "battery_temp", "battery_temp", "battery_temp", ts, ts
    FROM "vehicle_readings"
    WHERE "vehicle_id" = %(device_id)s AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END, 0), min("soc_min"), max("soc_max"), coalesce(CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END, 0), min("kwh_delivered_dc_min"), max("kwh_delivered_dc_max"), coalesce(CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END, 0), min("battery_temp_min"), max("battery_temp_max"), min(first_ts), max(last_ts) FROM parts;

-- name: VEHICLE.select_linked_meter_aggregate
WITH "parts" ("device_id", "at", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts") AS (
    SELECT "vehicle_id" AS device_id, hour AS at, reading_count, "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", first_ts, last_ts
    FROM "vehicle_hourly"
    WHERE "vehicle_id" = (SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s) AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "vehicle_id", ts, 1, "soc", "soc", "soc", "kwh_delivered_dc", "kwh_delivered_dc", "kwh_delivered_dc", "battery_temp", "battery_temp", "battery_temp", ts, ts
    FROM "vehicle_readings"
    WHERE "vehicle_id" = (SELECT meter_id FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s) AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END, 0), min("soc_min"), max("soc_max"), coalesce(CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END, 0), min("kwh_delivered_dc_min"), max("kwh_delivered_dc_max"), coalesce(CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END, 0), min("battery_temp_min"), max("battery_temp_max"), min(first_ts), max(last_ts) FROM parts;

-- name: VEHICLE.select_fleet_aggregate
WITH parts ("reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts") AS (
    SELECT reading_count, "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", first_ts, last_ts
    FROM "vehicle_fleet_minutely"
    WHERE minute >= %(rollup_start)s AND minute < %(rollup_end)s
    UNION ALL
    SELECT 1, "soc", "soc", "soc", "kwh_delivered_dc", "kwh_delivered_dc", "kwh_delivered_dc", "battery_temp", "battery_temp", "battery_temp", ts, ts
    FROM "vehicle_readings"
    WHERE (ts >= %(head_start)s AND ts < %(head_end)s) OR (ts >= %(tail_start)s AND ts < %(tail_end)s)
),
active AS (
    SELECT count(*) AS devices
    FROM "vehicle_current" AS c
    WHERE c.ts >= %(head_start)s
      AND (c.ts < %(tail_end)s
           OR EXISTS (SELECT FROM "vehicle_readings" AS r
                      WHERE r."vehicle_id" = c."vehicle_id" AND r.ts >= %(head_start)s AND r.ts < %(tail_end)s))
)
SELECT (SELECT devices FROM active), coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END, 0), min("soc_min"), max("soc_max"), coalesce(CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END, 0), min("kwh_delivered_dc_min"), max("kwh_delivered_dc_max"), coalesce(CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END, 0), min("battery_temp_min"), max("battery_temp_max"), min(first_ts), max(last_ts) FROM parts;

-- name: VEHICLE.select_fleet_aggregate_by_device
WITH "parts" ("device_id", "at", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts") AS (
    SELECT "vehicle_id" AS device_id, hour AS at, reading_count, "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", first_ts, last_ts
    FROM "vehicle_hourly"
    WHERE hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "vehicle_id", ts, 1, "soc", "soc", "soc", "kwh_delivered_dc", "kwh_delivered_dc", "kwh_delivered_dc", "battery_temp", "battery_temp", "battery_temp", ts, ts
    FROM "vehicle_readings"
    WHERE ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT count(*), coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END, 0), min("soc_min"), max("soc_max"), coalesce(CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END, 0), min("kwh_delivered_dc_min"), max("kwh_delivered_dc_max"), coalesce(CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END, 0), min("battery_temp_min"), max("battery_temp_max"), min(first_ts), max(last_ts) FROM (SELECT device_id, sum(reading_count) AS reading_count, CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END AS "soc_sum", min("soc_min") AS "soc_min", max("soc_max") AS "soc_max", CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END AS "kwh_delivered_dc_sum", min("kwh_delivered_dc_min") AS "kwh_delivered_dc_min", max("kwh_delivered_dc_max") AS "kwh_delivered_dc_max", CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END AS "battery_temp_sum", min("battery_temp_min") AS "battery_temp_min", max("battery_temp_max") AS "battery_temp_max", min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM parts GROUP BY device_id) AS per_device;

-- name: VEHICLE.select_time_series
WITH "parts" ("device_id", "at", "reading_count", "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", "first_ts", "last_ts") AS (
    SELECT "vehicle_id" AS device_id, hour AS at, reading_count, "soc_sum", "soc_min", "soc_max", "kwh_delivered_dc_sum", "kwh_delivered_dc_min", "kwh_delivered_dc_max", "battery_temp_sum", "battery_temp_min", "battery_temp_max", first_ts, last_ts
    FROM "vehicle_hourly"
    WHERE "vehicle_id" = %(device_id)s AND hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "vehicle_id", ts, 1, "soc", "soc", "soc", "kwh_delivered_dc", "kwh_delivered_dc", "kwh_delivered_dc", "battery_temp", "battery_temp", "battery_temp", ts, ts
    FROM "vehicle_readings"
    WHERE "vehicle_id" = %(device_id)s AND ((ts >= %(head_start)s AND ts < %(head_end)s)
                        OR (ts >= %(tail_start)s AND ts < %(tail_end)s))
)
SELECT date_bin(%(bucket)s, at, timestamptz 'epoch') AS bucket, coalesce(sum(reading_count), 0)::int8, coalesce(CASE WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') IS NULL THEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') WHEN saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') IS NULL THEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') WHEN sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("soc_sum") FILTER (WHERE "soc_sum" < float8 '1e290') + saturating_sum("soc_sum") FILTER (WHERE "soc_sum" >= float8 '1e290') END, 0), min("soc_min"), max("soc_max"), coalesce(CASE WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') IS NULL THEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') WHEN saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') IS NULL THEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') WHEN sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" < float8 '1e290') + saturating_sum("kwh_delivered_dc_sum") FILTER (WHERE "kwh_delivered_dc_sum" >= float8 '1e290') END, 0), min("kwh_delivered_dc_min"), max("kwh_delivered_dc_max"), coalesce(CASE WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') IS NULL THEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') WHEN saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') IS NULL THEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') WHEN sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" < float8 '1e290') + saturating_sum("battery_temp_sum") FILTER (WHERE "battery_temp_sum" >= float8 '1e290') END, 0), min("battery_temp_min"), max("battery_temp_max"), min(first_ts), max(last_ts) FROM parts GROUP BY 1 ORDER BY 1;

-- name: READ_SESSION
SET jit = off;

-- name: RANKING_PLAN_SETTINGS
SELECT set_config('max_parallel_workers_per_gather', '0', true), set_config('enable_nestloop', 'off', true);

-- name: RANKING_ISOLATION
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: EXPORT_SNAPSHOT
SELECT pg_export_snapshot();

-- name: UPSERT_VEHICLE_LINK
INSERT INTO vehicle_meter_map AS m (vehicle_id, meter_id, updated_at)
VALUES (%(vehicle_id)s, %(meter_id)s, now())
ON CONFLICT (vehicle_id) DO UPDATE SET meter_id = EXCLUDED.meter_id, updated_at = EXCLUDED.updated_at
RETURNING vehicle_id, meter_id, updated_at;

-- name: SELECT_VEHICLE_LINK
SELECT vehicle_id, meter_id, updated_at FROM vehicle_meter_map WHERE vehicle_id = %(vehicle_id)s;

-- name: SELECT_VEHICLE_LINKS_AFTER
SELECT vehicle_id, meter_id, updated_at FROM vehicle_meter_map
WHERE vehicle_id > %(after)s
ORDER BY vehicle_id
LIMIT %(limit)s;

-- name: SELECT_METER_ENERGIES
WITH "meter_energy" AS (
    SELECT "meter_id" AS device_id, "kwh_consumed_ac_sum" AS kwh FROM "meter_hourly"
    WHERE hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac_sum" FROM "meter_hourly" WHERE hour = %(head_hour)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s))
    UNION ALL
    SELECT r."meter_id", unnest((ARRAY[r."kwh_consumed_ac_sum_00", r."kwh_consumed_ac_sum_15", r."kwh_consumed_ac_sum_30", r."kwh_consumed_ac_sum_45"])[%(head_first_quarter)s::int4:4]) FROM "meter_hourly" AS r
    WHERE r.hour = %(head_hour)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(head_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac" FROM "meter_readings"
    WHERE ts >= %(head_start)s AND ts < %(head_split)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(head_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac" FROM "meter_readings"
    WHERE ts >= %(head_start)s AND ts < %(head_end)s AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(head_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac_sum" FROM "meter_hourly" WHERE hour = %(tail_hour)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s))
    UNION ALL
    SELECT r."meter_id", unnest((ARRAY[r."kwh_consumed_ac_sum_00", r."kwh_consumed_ac_sum_15", r."kwh_consumed_ac_sum_30", r."kwh_consumed_ac_sum_45"])[1:%(tail_last_quarter)s::int4]) FROM "meter_hourly" AS r
    WHERE r.hour = %(tail_hour)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(tail_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac" FROM "meter_readings"
    WHERE ts >= %(tail_split)s AND ts < %(tail_end)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(tail_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
    UNION ALL
    SELECT "meter_id", "kwh_consumed_ac" FROM "meter_readings"
    WHERE ts >= %(tail_start)s AND ts < %(tail_end)s AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "meter_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "meter_hourly" WHERE hour = %(tail_hour)s AND "kwh_consumed_ac_sum_00" IS NULL))
),
per_device AS (SELECT device_id AS id, CASE WHEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') IS NULL THEN saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') WHEN saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') IS NULL THEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') WHEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') + saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') END AS kwh FROM "meter_energy" GROUP BY 1)
SELECT array_agg(id)::text, array_agg(kwh)::text FROM per_device;

-- name: SELECT_VEHICLE_ENERGIES
WITH "vehicle_energy" AS (
    SELECT "vehicle_id" AS device_id, "kwh_delivered_dc_sum" AS kwh FROM "vehicle_hourly"
    WHERE hour >= %(rollup_start)s AND hour < %(rollup_end)s
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc_sum" FROM "vehicle_hourly" WHERE hour = %(head_hour)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s))
    UNION ALL
    SELECT r."vehicle_id", unnest((ARRAY[r."kwh_delivered_dc_sum_00", r."kwh_delivered_dc_sum_15", r."kwh_delivered_dc_sum_30", r."kwh_delivered_dc_sum_45"])[%(head_first_quarter)s::int4:4]) FROM "vehicle_hourly" AS r
    WHERE r.hour = %(head_hour)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(head_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc" FROM "vehicle_readings"
    WHERE ts >= %(head_start)s AND ts < %(head_split)s AND (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(head_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc" FROM "vehicle_readings"
    WHERE ts >= %(head_start)s AND ts < %(head_end)s AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT (%(head_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute >= %(head_hour)s AND minute < %(head_start)s AND first_ts < %(head_start)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(head_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc_sum" FROM "vehicle_hourly" WHERE hour = %(tail_hour)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s))
    UNION ALL
    SELECT r."vehicle_id", unnest((ARRAY[r."kwh_delivered_dc_sum_00", r."kwh_delivered_dc_sum_15", r."kwh_delivered_dc_sum_30", r."kwh_delivered_dc_sum_45"])[1:%(tail_last_quarter)s::int4]) FROM "vehicle_hourly" AS r
    WHERE r.hour = %(tail_hour)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(tail_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc" FROM "vehicle_readings"
    WHERE ts >= %(tail_split)s AND ts < %(tail_end)s AND (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(tail_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
    UNION ALL
    SELECT "vehicle_id", "kwh_delivered_dc" FROM "vehicle_readings"
    WHERE ts >= %(tail_start)s AND ts < %(tail_end)s AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT (%(tail_hour)s::timestamptz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "vehicle_fleet_minutely" WHERE minute > %(tail_end)s - interval '1 minute' AND minute < %(tail_hour)s + interval '1 hour' AND last_ts >= %(tail_end)s)) AND NOT EXISTS (SELECT 1 FROM "vehicle_hourly" WHERE hour = %(tail_hour)s AND "kwh_delivered_dc_sum_00" IS NULL))
),
per_device AS (SELECT device_id AS id, CASE WHEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') IS NULL THEN saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') WHEN saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') IS NULL THEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') WHEN sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') > float8 '1.7976931348623157e308' - saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') THEN float8 'Infinity' ELSE sum("kwh") FILTER (WHERE "kwh" < float8 '1e290') + saturating_sum("kwh") FILTER (WHERE "kwh" >= float8 '1e290') END AS kwh FROM "vehicle_energy" GROUP BY 1)
SELECT array_agg(id)::text, array_agg(kwh)::text FROM per_device;

-- name: SELECT_ANOMALIES
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
LIMIT %(limit)s OFFSET %(offset)s;

-- name: import_snapshot(00000003-0000001B-1)
SET TRANSACTION SNAPSHOT '00000003-0000001B-1';
