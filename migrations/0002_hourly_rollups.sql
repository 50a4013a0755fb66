-- Hourly rollups of history, one row per device and UTC hour, kept exactly in
-- step with history: the ingest statement adds exactly the readings it
-- inserted (duplicates never, stale readings yes: they are real energy).
-- Fleet summaries, hourly/daily time series and the anomaly ranking read
-- these for the whole hours of a window and raw history for its edges.
-- Hours are date_bin('1 hour', ts, 'epoch'): independent of the session time zone.

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
);

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
);

-- Fleet-wide queries over a window select by time alone: hour first.
CREATE INDEX meter_hourly_hour ON meter_hourly (hour);
CREATE INDEX vehicle_hourly_hour ON vehicle_hourly (hour);

-- The raw edges of fleet-wide windows select history by time alone. History
-- is appended roughly in time order, so a BRIN index finds those rows at a
-- tiny fraction of a B-tree's size and write cost.
CREATE INDEX meter_readings_ts_brin ON meter_readings USING brin (ts);
CREATE INDEX vehicle_readings_ts_brin ON vehicle_readings USING brin (ts);

-- History stored before this migration.
INSERT INTO meter_hourly
SELECT meter_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(kwh_consumed_ac), min(kwh_consumed_ac), max(kwh_consumed_ac),
       sum(voltage), min(voltage), max(voltage), min(ts), max(ts)
FROM meter_readings
GROUP BY 1, 2;

INSERT INTO vehicle_hourly
SELECT vehicle_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*),
       sum(soc), min(soc), max(soc),
       sum(kwh_delivered_dc), min(kwh_delivered_dc), max(kwh_delivered_dc),
       sum(battery_temp), min(battery_temp), max(battery_temp), min(ts), max(ts)
FROM vehicle_readings
GROUP BY 1, 2;
