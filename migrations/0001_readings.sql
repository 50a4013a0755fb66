-- History and hot state of meter and vehicle readings (DESIGN.md section 3).
-- The natural key (device id, ts) is the idempotency key and the analytics
-- index in one; there is no surrogate id.
-- CHECKs repeat the service's validation so no other writer can store what the
-- service would reject ('NaN' sorts above 'Infinity' in PostgreSQL, so
-- "< 'Infinity'" also excludes NaN).

CREATE TABLE meter_readings (
    meter_id text NOT NULL CHECK (char_length(meter_id) BETWEEN 1 AND 100),
    ts timestamptz NOT NULL,
    kwh_consumed_ac double precision NOT NULL
        CHECK (kwh_consumed_ac >= 0 AND kwh_consumed_ac < 'Infinity'),
    voltage double precision NOT NULL CHECK (voltage BETWEEN 0 AND 2000),
    PRIMARY KEY (meter_id, ts)
);

CREATE TABLE vehicle_readings (
    vehicle_id text NOT NULL CHECK (char_length(vehicle_id) BETWEEN 1 AND 100),
    ts timestamptz NOT NULL,
    soc double precision NOT NULL CHECK (soc BETWEEN 0 AND 100),
    kwh_delivered_dc double precision NOT NULL
        CHECK (kwh_delivered_dc >= 0 AND kwh_delivered_dc < 'Infinity'),
    battery_temp double precision NOT NULL CHECK (battery_temp BETWEEN -50 AND 200),
    PRIMARY KEY (vehicle_id, ts)
);

-- One row per device: its newest reading. Only ever replaced by a strictly newer one.
CREATE TABLE meter_current (
    meter_id text PRIMARY KEY,
    ts timestamptz NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage double precision NOT NULL
);

CREATE TABLE vehicle_current (
    vehicle_id text PRIMARY KEY,
    ts timestamptz NOT NULL,
    soc double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp double precision NOT NULL
);

-- Which meter charges which vehicle (set by AnalyticsService.LinkVehicle).
CREATE TABLE vehicle_meter_map (
    vehicle_id text PRIMARY KEY CHECK (char_length(vehicle_id) BETWEEN 1 AND 100),
    meter_id text NOT NULL CHECK (char_length(meter_id) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
