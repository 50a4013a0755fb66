-- Time partitions (DESIGN.md section 6): history, the hourly rollups and the
-- fleet minute rollups become range-partitioned on their time column, so
-- that old data leaves by dropping whole partitions (never DELETE and
-- VACUUM) and a read's cost depends on its window, not on how much history
-- exists. Keys stay (device id, ts), (device id, hour) and (minute, shard):
-- each includes the partition key, as PostgreSQL requires of a primary key.
--
-- Layout: history and the fleet minute rollups one partition a day, the
-- hourly rollups (60 times fewer rows) one partition a week; UTC-aligned
-- (date_bin from the Unix epoch). The service creates later partitions
-- itself at the spans of ENERGY_PARTITION_INTERVAL and
-- ENERGY_ROLLUP_PARTITION_INTERVAL (energy_server/storage/partitions.py);
-- partitions made here keep the default spans.
--
-- An existing database is converted in place: each table is renamed aside,
-- its partitioned twin created, every row copied in one pass, the old one
-- dropped. It runs in the migration's transaction, so a failure leaves the
-- old schema untouched. Copying runs at roughly bulk-insert speed (the
-- README's Data lifecycle section gives a measured rate); progress goes to
-- the log as NOTICEs.
--
-- No DEFAULT partition: a row without a partition fails loudly instead of
-- landing in a catch-all that would have to be scanned on every ATTACH; the
-- service creates the partition a reading needs before storing it.

-- Creates the partition of `parent` for [lower_bound, upper_bound), named
-- after the parent and its lower bound in UTC (`meter_readings_20261202`,
-- `meter_readings_20261202_0600` when it does not start at midnight), and
-- returns its name. The table is created apart and then attached: ATTACH
-- takes SHARE UPDATE EXCLUSIVE on the parent, which lets ingest and reads
-- go on, where CREATE TABLE ... PARTITION OF would block them. ATTACH
-- creates the partition's share of every index of the parent.
CREATE FUNCTION energy_create_partition(parent regclass, lower_bound timestamptz, upper_bound timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    parent_schema text;
    parent_name text;
    utc_lower timestamp := lower_bound AT TIME ZONE 'UTC';
    child text;
BEGIN
    SELECT n.nspname, c.relname INTO parent_schema, parent_name
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = parent;
    child := parent_name || '_' || to_char(utc_lower, 'YYYYMMDD')
             || CASE WHEN utc_lower::time = time '00:00' THEN '' ELSE to_char(utc_lower, '_HH24MI') END;
    EXECUTE format(
        'CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
        parent_schema, child, parent_schema, parent_name);
    EXECUTE format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
        parent_schema, parent_name, parent_schema, child, lower_bound, upper_bound);
    RETURN child;
END
$$;

-- This migration's own helper: partitions of `span` covering every `key` of
-- `old`, then every row of `old` copied into `new`.
CREATE FUNCTION pg_temp.energy_copy_into_partitions(old regclass, new regclass, key text, span interval)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    oldest timestamptz;
    newest timestamptz;
    lower_bound timestamptz;
    partitions integer := 0;
    copied bigint;
    started timestamptz := clock_timestamp();
BEGIN
    EXECUTE format('SELECT min(%I), max(%I) FROM %s', key, key, old) INTO oldest, newest;
    IF oldest IS NULL THEN
        RAISE NOTICE '%: empty, nothing to copy', new;
        RETURN;
    END IF;
    lower_bound := date_bin(span, oldest, timestamptz 'epoch');
    WHILE lower_bound <= newest LOOP
        PERFORM energy_create_partition(new, lower_bound, lower_bound + span);
        lower_bound := lower_bound + span;
        partitions := partitions + 1;
    END LOOP;
    RAISE NOTICE '%: copying rows from % to % into % partitions', new, oldest, newest, partitions;
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', new, old);
    GET DIAGNOSTICS copied = ROW_COUNT;
    RAISE NOTICE '%: % rows copied in % s', new, copied,
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END
$$;

-- The old tables step aside, with their indexes (index names share one
-- namespace with tables).
ALTER TABLE meter_readings RENAME TO meter_readings_unpartitioned;
ALTER INDEX meter_readings_pkey RENAME TO meter_readings_unpartitioned_pkey;
ALTER INDEX meter_readings_ts_brin RENAME TO meter_readings_unpartitioned_ts_brin;
ALTER TABLE vehicle_readings RENAME TO vehicle_readings_unpartitioned;
ALTER INDEX vehicle_readings_pkey RENAME TO vehicle_readings_unpartitioned_pkey;
ALTER INDEX vehicle_readings_ts_brin RENAME TO vehicle_readings_unpartitioned_ts_brin;
ALTER TABLE meter_hourly RENAME TO meter_hourly_unpartitioned;
ALTER INDEX meter_hourly_pkey RENAME TO meter_hourly_unpartitioned_pkey;
ALTER INDEX meter_hourly_hour RENAME TO meter_hourly_unpartitioned_hour;
ALTER TABLE vehicle_hourly RENAME TO vehicle_hourly_unpartitioned;
ALTER INDEX vehicle_hourly_pkey RENAME TO vehicle_hourly_unpartitioned_pkey;
ALTER INDEX vehicle_hourly_hour RENAME TO vehicle_hourly_unpartitioned_hour;
ALTER TABLE meter_fleet_minutely RENAME TO meter_fleet_minutely_unpartitioned;
ALTER INDEX meter_fleet_minutely_pkey RENAME TO meter_fleet_minutely_unpartitioned_pkey;
ALTER TABLE vehicle_fleet_minutely RENAME TO vehicle_fleet_minutely_unpartitioned;
ALTER INDEX vehicle_fleet_minutely_pkey RENAME TO vehicle_fleet_minutely_unpartitioned_pkey;

-- The same columns, in the same order, and the same CHECKs as 0001.
CREATE TABLE meter_readings (
    meter_id text NOT NULL CHECK (char_length(meter_id) BETWEEN 1 AND 100),
    ts timestamptz NOT NULL,
    kwh_consumed_ac double precision NOT NULL
        CHECK (kwh_consumed_ac >= 0 AND kwh_consumed_ac < 'Infinity'),
    voltage double precision NOT NULL CHECK (voltage BETWEEN 0 AND 2000),
    PRIMARY KEY (meter_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE vehicle_readings (
    vehicle_id text NOT NULL CHECK (char_length(vehicle_id) BETWEEN 1 AND 100),
    ts timestamptz NOT NULL,
    soc double precision NOT NULL CHECK (soc BETWEEN 0 AND 100),
    kwh_delivered_dc double precision NOT NULL
        CHECK (kwh_delivered_dc >= 0 AND kwh_delivered_dc < 'Infinity'),
    battery_temp double precision NOT NULL CHECK (battery_temp BETWEEN -50 AND 200),
    PRIMARY KEY (vehicle_id, ts)
) PARTITION BY RANGE (ts);

-- Within a day's partition the raw edges of fleet-wide windows still select
-- by time alone: BRIN, as in 0002.
CREATE INDEX meter_readings_ts_brin ON meter_readings USING brin (ts);
CREATE INDEX vehicle_readings_ts_brin ON vehicle_readings USING brin (ts);

-- The same columns as 0002.
CREATE TABLE meter_hourly (
    meter_id text NOT NULL,
    hour timestamptz NOT NULL,
    reading_count bigint NOT NULL,
    kwh_consumed_ac_sum double precision NOT NULL,
    kwh_consumed_ac_min double precision NOT NULL,
    kwh_consumed_ac_max double precision NOT NULL,
    voltage_sum double precision NOT NULL,
    voltage_min double precision NOT NULL,
    voltage_max double precision NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (meter_id, hour)
) PARTITION BY RANGE (hour);

CREATE TABLE vehicle_hourly (
    vehicle_id text NOT NULL,
    hour timestamptz NOT NULL,
    reading_count bigint NOT NULL,
    soc_sum double precision NOT NULL,
    soc_min double precision NOT NULL,
    soc_max double precision NOT NULL,
    kwh_delivered_dc_sum double precision NOT NULL,
    kwh_delivered_dc_min double precision NOT NULL,
    kwh_delivered_dc_max double precision NOT NULL,
    battery_temp_sum double precision NOT NULL,
    battery_temp_min double precision NOT NULL,
    battery_temp_max double precision NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, hour)
) PARTITION BY RANGE (hour);

-- Fleet-wide reads of whole hours (the anomaly ranking, old windows) select
-- by hour alone, and need only the device and its energy sum: a covering
-- index lets them read the index alone.
CREATE INDEX meter_hourly_hour ON meter_hourly (hour) INCLUDE (meter_id, kwh_consumed_ac_sum);
CREATE INDEX vehicle_hourly_hour ON vehicle_hourly (hour) INCLUDE (vehicle_id, kwh_delivered_dc_sum);

-- The same columns as 0003.
CREATE TABLE meter_fleet_minutely (
    minute timestamptz NOT NULL,
    shard smallint NOT NULL,
    reading_count bigint NOT NULL,
    kwh_consumed_ac_sum double precision NOT NULL,
    kwh_consumed_ac_min double precision NOT NULL,
    kwh_consumed_ac_max double precision NOT NULL,
    voltage_sum double precision NOT NULL,
    voltage_min double precision NOT NULL,
    voltage_max double precision NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (minute, shard)
) PARTITION BY RANGE (minute);

CREATE TABLE vehicle_fleet_minutely (
    minute timestamptz NOT NULL,
    shard smallint NOT NULL,
    reading_count bigint NOT NULL,
    soc_sum double precision NOT NULL,
    soc_min double precision NOT NULL,
    soc_max double precision NOT NULL,
    kwh_delivered_dc_sum double precision NOT NULL,
    kwh_delivered_dc_min double precision NOT NULL,
    kwh_delivered_dc_max double precision NOT NULL,
    battery_temp_sum double precision NOT NULL,
    battery_temp_min double precision NOT NULL,
    battery_temp_max double precision NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (minute, shard)
) PARTITION BY RANGE (minute);

SELECT pg_temp.energy_copy_into_partitions('meter_readings_unpartitioned', 'meter_readings', 'ts', '1 day');
SELECT pg_temp.energy_copy_into_partitions('vehicle_readings_unpartitioned', 'vehicle_readings', 'ts', '1 day');
SELECT pg_temp.energy_copy_into_partitions('meter_hourly_unpartitioned', 'meter_hourly', 'hour', '7 days');
SELECT pg_temp.energy_copy_into_partitions('vehicle_hourly_unpartitioned', 'vehicle_hourly', 'hour', '7 days');
SELECT pg_temp.energy_copy_into_partitions(
    'meter_fleet_minutely_unpartitioned', 'meter_fleet_minutely', 'minute', '1 day');
SELECT pg_temp.energy_copy_into_partitions(
    'vehicle_fleet_minutely_unpartitioned', 'vehicle_fleet_minutely', 'minute', '1 day');

-- The partition holding now and three after it: servers of the previous
-- version, which cannot make partitions, keep storing during a rollout.
CREATE FUNCTION pg_temp.energy_partitions_ahead(parent regclass, span interval)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    lower_bound timestamptz;
BEGIN
    FOR step IN 0..3 LOOP
        lower_bound := date_bin(span, now(), timestamptz 'epoch') + step * span;
        IF NOT EXISTS (
            SELECT FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
            WHERE i.inhparent = parent
              AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)',
                                                                lower_bound, lower_bound + span)
        ) THEN
            PERFORM energy_create_partition(parent, lower_bound, lower_bound + span);
        END IF;
    END LOOP;
END
$$;

SELECT pg_temp.energy_partitions_ahead('meter_readings', '1 day');
SELECT pg_temp.energy_partitions_ahead('vehicle_readings', '1 day');
SELECT pg_temp.energy_partitions_ahead('meter_fleet_minutely', '1 day');
SELECT pg_temp.energy_partitions_ahead('vehicle_fleet_minutely', '1 day');
SELECT pg_temp.energy_partitions_ahead('meter_hourly', '7 days');
SELECT pg_temp.energy_partitions_ahead('vehicle_hourly', '7 days');

DROP TABLE meter_readings_unpartitioned, vehicle_readings_unpartitioned,
    meter_hourly_unpartitioned, vehicle_hourly_unpartitioned,
    meter_fleet_minutely_unpartitioned, vehicle_fleet_minutely_unpartitioned;

-- What retention has dropped: data of a tier before `kept_since` is gone
-- (raw: history and the fleet minute rollups; hourly: the hourly rollups).
-- Maintenance moves a horizon forward first and drops the partitions behind
-- it only on a later run, so every server reads the new horizon before any
-- data behind it disappears (partitions.py says how long it waits).
CREATE TABLE retention_horizons (
    tier text PRIMARY KEY CHECK (tier IN ('raw', 'hourly')),
    kept_since timestamptz NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now()
);
