-- Distributes the schema over a Citus cluster. `energy-server migrate` runs
-- this after the numbered migrations whenever the database has the citus
-- extension, so a single-node database that gains Citus later is converted
-- by the same command. It is idempotent: a table already distributed is left
-- as it is, and a table still local is distributed with its rows.
--
-- Why each table goes where it goes (DESIGN.md §7):
-- * Readings, current state and the hourly rollups of a device kind are
--   distributed by device id and co-located, every one of them in one
--   co-location group (the same text key, the same shard count): every
--   per-device statement, and each batch's share of a shard, then runs on one
--   worker, and the joins of history with current state or rollups stay on
--   the shard. The time partitions are kept: Citus distributes each
--   partition with its parent (its "time-partitioned distributed tables").
-- * The fleet minute rollups are distributed by `shard`, the writer's own
--   number: a batch adds to one row per minute of its writer's shard, so it
--   touches one shard of these tables, and writers never contend. They are
--   not co-located with the device tables (their key is a writer, not a
--   device); reads sum over all shards, 1,440 rows a day per writer.
-- * `vehicle_meter_map` and `retention_horizons` are small and joined with
--   (or read beside) every kind of table: reference tables, a copy on every
--   node, so those joins need no data movement.
-- * `schema_migrations` stays on the coordinator: only `migrate` reads it.
DO $$
DECLARE
    t record;
BEGIN
    -- create_distributed_table in a transaction that has already written
    -- must use one connection per node, or it could not see those writes.
    SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
    FOR t IN
        SELECT * FROM (VALUES
            -- (table, distribution column or NULL for a reference table, co-locate with)
            ('meter_readings', 'meter_id', 'default'),
            ('meter_current', 'meter_id', 'meter_readings'),
            ('meter_hourly', 'meter_id', 'meter_readings'),
            ('vehicle_readings', 'vehicle_id', 'meter_readings'),
            ('vehicle_current', 'vehicle_id', 'meter_readings'),
            ('vehicle_hourly', 'vehicle_id', 'meter_readings'),
            ('meter_fleet_minutely', 'shard', 'none'),
            ('vehicle_fleet_minutely', 'shard', 'none'),
            ('vehicle_meter_map', NULL, NULL),
            ('retention_horizons', NULL, NULL)
        ) AS v (name, key, colocate_with)
        WHERE NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = v.name::regclass)
    LOOP
        IF t.key IS NULL THEN
            RAISE NOTICE 'making % a reference table', t.name;
            PERFORM create_reference_table(t.name);
        ELSE
            RAISE NOTICE 'distributing % by %', t.name, t.key;
            PERFORM create_distributed_table(t.name, t.key, colocate_with => t.colocate_with);
        END IF;
    END LOOP;
END
$$;
