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
    shards int;
BEGIN
    -- Shards per table: citus.shard_count when the operator set it (before
    -- migrate: ALTER DATABASE ... SET citus.shard_count = N), else 4 per
    -- worker and at least 8. Citus's own default, 32, costs ingest dearly
    -- on a small cluster: every batch sends each shard it touches a task
    -- per step (one lane, 500-reading batches: 340 ms at 32 shards on 2
    -- workers, 89 ms at 8). Four per worker leaves room to add workers and
    -- move shards to them; citus_split_shard_by_split_points splits more.
    SELECT CASE WHEN s.source = 'default'
                THEN greatest(8, 4 * (SELECT count(*) FROM pg_dist_node
                                      WHERE noderole = 'primary' AND isactive AND groupid <> 0))
                ELSE current_setting('citus.shard_count')::int END
    INTO shards
    FROM pg_settings AS s WHERE s.name = 'citus.shard_count';
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
            IF t.colocate_with IN ('default', 'none') THEN
                PERFORM create_distributed_table(t.name, t.key, colocate_with => t.colocate_with,
                                                 shard_count => shards);
            ELSE  -- the shard count of the table it goes with
                PERFORM create_distributed_table(t.name, t.key, colocate_with => t.colocate_with);
            END IF;
        END IF;
    END LOOP;
END
$$;
