-- What several servers on one database, and Citus, need.

-- Taken at the start of every transaction that creates partitions (the
-- maintenance task, and ingest for a late reading), in place of the bare
-- advisory lock: creators still see each other's work, one at a time.
--
-- On a Citus coordinator it also stops ingest for the moment the partitions
-- take. There, ATTACH distributes the new table and then locks shards, and
-- metadata shared by the whole co-location group, on every worker, while
-- ingest statements in flight hold those too and wait on the coordinator: a
-- distributed deadlock, which Citus breaks by cancelling one side (ingest
-- saw ABORTED, retried, and could meet it again). SHARE ROW EXCLUSIVE on
-- every partitioned table first, in the order ingest statements take them,
-- makes the DDL wait for the statements in flight and new ones wait for it.
-- Readers (ACCESS SHARE) go on. The DDL then uses one connection per worker,
-- so that its later steps see its earlier ones. One PostgreSQL is left as it
-- was: there ATTACH does not block ingest at all.
CREATE FUNCTION energy_lock_for_partition_ddl(lock_key bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        LOCK TABLE meter_readings, meter_hourly, meter_fleet_minutely,
                   vehicle_readings, vehicle_hourly, vehicle_fleet_minutely
            IN SHARE ROW EXCLUSIVE MODE;
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
$$;

-- Each server process (any number of replicas, each with ENERGY_PROCESSES
-- workers) takes a number from here at start and derives its writer lanes'
-- fleet-rollup shards from it, so no two live processes add to the same
-- fleet rows (ReadingRepository.claim_fleet_shards).
CREATE SEQUENCE fleet_writer_numbers AS bigint MINVALUE 0 START 0;
