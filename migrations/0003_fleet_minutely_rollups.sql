-- Fleet-wide rollups per UTC minute, kept exactly in step with history like
-- the hourly ones (0002). Fleet summaries read these for the whole minutes of
-- a window and raw history only for the partial minutes at its edges: a day
-- is 1,440 rows per shard instead of every device's hourly rows plus up to
-- two hours of raw readings.
-- Each writer adds to its own shard's row (the service: its group-commit
-- lane), so concurrent transactions never queue for one hot row; readers sum
-- the shards. Minutes are date_bin('1 minute', ts, 'epoch').

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
);

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
);

-- History stored before this migration, as shard 0.
INSERT INTO meter_fleet_minutely
SELECT date_bin('1 minute', ts, timestamptz 'epoch'), 0, count(*),
       sum(kwh_consumed_ac), min(kwh_consumed_ac), max(kwh_consumed_ac),
       sum(voltage), min(voltage), max(voltage), min(ts), max(ts)
FROM meter_readings
GROUP BY 1;

INSERT INTO vehicle_fleet_minutely
SELECT date_bin('1 minute', ts, timestamptz 'epoch'), 0, count(*),
       sum(soc), min(soc), max(soc),
       sum(kwh_delivered_dc), min(kwh_delivered_dc), max(kwh_delivered_dc),
       sum(battery_temp), min(battery_temp), max(battery_temp), min(ts), max(ts)
FROM vehicle_readings
GROUP BY 1;
