-- Each device's energy per quarter hour, on its hourly rollup row.
--
-- A window whose edges fall inside an hour needs the energy of part of that
-- hour: before this, every reading of the fleet in those partial hours
-- (up to 600,000 per kind for a 24 h ListEfficiencyAnomalies) was read raw.
-- With the hour's energy split into its four quarters, an edge hour is read
-- from its rollup rows for the whole quarters inside the window, and raw
-- only for the part of one quarter (at most 15 minutes) that is left.
--
-- `<energy>_sum_00` holds the energy of readings at minutes 0-14 of the hour,
-- `_15` of 15-29, `_30` of 30-44, `_45` of 45-59; an empty quarter holds 0.
-- NULL means "not known": rows written before this migration keep NULL
-- (adding a column without a default rewrites nothing, on PostgreSQL and on
-- Citus alike), ingest never adds to an unknown quarter, and reads fall back
-- to raw history for an edge hour with any unknown row. `energy-server
-- backfill` rebuilds the rollups with every quarter known.
ALTER TABLE meter_hourly
    ADD COLUMN kwh_consumed_ac_sum_00 double precision,
    ADD COLUMN kwh_consumed_ac_sum_15 double precision,
    ADD COLUMN kwh_consumed_ac_sum_30 double precision,
    ADD COLUMN kwh_consumed_ac_sum_45 double precision;

ALTER TABLE vehicle_hourly
    ADD COLUMN kwh_delivered_dc_sum_00 double precision,
    ADD COLUMN kwh_delivered_dc_sum_15 double precision,
    ADD COLUMN kwh_delivered_dc_sum_30 double precision,
    ADD COLUMN kwh_delivered_dc_sum_45 double precision;

-- Whether an edge hour has a row with unknown quarters is asked on every
-- windowed ListEfficiencyAnomalies: without this index the answer "none"
-- means visiting every row of the hour (10,000 at 10,000 devices, 5 ms).
-- Only rows written before this migration are in it, and it empties as
-- retention drops their partitions. Building it reads the existing rollups
-- once; ingest waits for that, as for any migration.
CREATE INDEX meter_hourly_unknown_quarters ON meter_hourly (hour) WHERE kwh_consumed_ac_sum_00 IS NULL;
CREATE INDEX vehicle_hourly_unknown_quarters ON vehicle_hourly (hour) WHERE kwh_delivered_dc_sum_00 IS NULL;
