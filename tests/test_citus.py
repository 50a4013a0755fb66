"""On a Citus coordinator (`make test-citus`): what `migrate` distributes, and
the conversion of a database that was migrated while it was one PostgreSQL.
Skipped elsewhere; the ingest, analytics, property and replica tests run on
the cluster beside these and must answer as on one PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from grpc import aio
from psycopg import sql

from energy.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2_grpc
from energy_server.app import create_server
from energy_server.settings import Settings
from energy_server.storage import migrate
from energy_server.storage.sql import migrations as ledger
from tests.conftest import settings_for_tests
from tests.support import BASE_TIME, meter, send, table_contents, timestamp, vehicle

DEVICE_TABLES = {
    "meter_readings": "meter_id",
    "meter_current": "meter_id",
    "meter_hourly": "meter_id",
    "vehicle_readings": "vehicle_id",
    "vehicle_current": "vehicle_id",
    "vehicle_hourly": "vehicle_id",
}


@pytest.fixture(autouse=True)
def _citus_only(on_citus: bool) -> None:
    if not on_citus:
        pytest.skip("needs a Citus coordinator (make test-citus)")


def _placement(url: str, schema: str = "public") -> dict[str, tuple[str, str, int]]:
    """Parent tables of `schema` Citus knows: (type, distribution column, co-location group)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT c.relname,
                      CASE p.partmethod WHEN 'h' THEN 'distributed' WHEN 'n' THEN 'reference' END,
                      coalesce(column_to_column_name(p.logicalrelid, p.partkey), ''),
                      p.colocationid
               FROM pg_dist_partition AS p
               JOIN pg_class AS c ON c.oid = p.logicalrelid
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
               WHERE n.nspname = %s AND NOT c.relispartition""",
            (schema,),
        ).fetchall()
    return {name: (kind, column, group) for name, kind, column, group in rows}


def test_migrate_distributes_the_schema(database_url: str) -> None:
    placed = _placement(database_url)
    for table, column in DEVICE_TABLES.items():
        assert placed[table][:2] == ("distributed", column), table
    # Every per-device table in one co-location group.
    assert len({placed[table][2] for table in DEVICE_TABLES}) == 1
    for table in ("meter_fleet_minutely", "vehicle_fleet_minutely"):
        assert placed[table][:2] == ("distributed", "shard")
    for table in ("vehicle_meter_map", "retention_horizons"):
        assert placed[table][0] == "reference"
    # Shards: 4 per worker, at least 8, unless citus.shard_count was set.
    with psycopg.connect(database_url) as connection:
        workers, shards = connection.execute(
            """SELECT (SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0),
                      (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'meter_readings'::regclass)"""
        ).fetchone() or (0, 0)
    assert shards == max(8, 4 * workers)
    # Partitions go with their parent.
    with psycopg.connect(database_url) as connection:
        local = connection.execute(
            """SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'meter_readings'::regclass
                 AND c.oid NOT IN (SELECT logicalrelid FROM pg_dist_partition)"""
        ).fetchall()
    assert local == []


@pytest.fixture
def single_node_schema(database_url: str) -> Iterator[str]:
    """A schema of the coordinator's database, migrated the way one PostgreSQL is
    (every numbered migration, nothing distributed): a database from before Citus."""
    schema = "energy_before_citus"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = psycopg.conninfo.make_conninfo(database_url, options=f"-c search_path={schema}")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(ledger.CREATE_SCHEMA_MIGRATIONS)
        for migration in migrate.load_migrations(Settings().migrations_dir):
            with connection.transaction():
                connection.execute(migration.sql.encode())
                connection.execute(
                    ledger.INSERT_SCHEMA_MIGRATION,
                    {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
                )
    yield url
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def test_migrate_converts_a_single_node_database(single_node_schema: str) -> None:
    url = single_node_schema
    assert _placement(url, "energy_before_citus") == {}
    readings = [
        reading
        for n in range(6)
        for minute in range(0, 180, 7)
        for reading in (
            meter(f"M-{n}", BASE_TIME + timedelta(minutes=minute), kwh_consumed_ac=n + minute / 10),
            vehicle(f"V-{n}", BASE_TIME + timedelta(minutes=minute), kwh_delivered_dc=n + minute / 20),
        )
    ]
    running = await create_server(settings_for_tests(), url)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await send(ingest_pb2_grpc.IngestServiceStub(channel), "stream", readings, per_message=50)
            await analytics_pb2_grpc.AnalyticsServiceStub(channel).LinkVehicle(
                analytics_pb2.LinkVehicleRequest(vehicle_id="V-1", meter_id="M-1")
            )
    finally:
        await running.stop(0)
    before = table_contents(url)

    await migrate.apply_migrations(url, Settings().migrations_dir)

    placed = _placement(url, "energy_before_citus")
    for table, column in DEVICE_TABLES.items():
        assert placed[table][:2] == ("distributed", column), table
    assert placed["vehicle_meter_map"][0] == "reference"
    assert table_contents(url) == before
    # And it goes on storing and answering, distributed.
    running = await create_server(settings_for_tests(), url)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            later = [meter("M-1", BASE_TIME + timedelta(hours=5), kwh_consumed_ac=1.5)]
            outcomes = await send(ingest_pb2_grpc.IngestServiceStub(channel), "unary", later)
            assert (outcomes.accepted, outcomes.stale, outcomes.duplicates) == (1, [], [])
            stats = await analytics_pb2_grpc.AnalyticsServiceStub(channel).GetMeterStats(
                analytics_pb2.GetMeterStatsRequest(
                    meter_id="M-1",
                    window=analytics_pb2.TimeWindow(
                        start_time=timestamp(BASE_TIME), end_time=timestamp(BASE_TIME + timedelta(days=1))
                    ),
                )
            )
    finally:
        await running.stop(0)
    expected = [
        r.meter.kwh_consumed_ac for r in readings if r.HasField("meter") and r.meter.meter_id == "M-1"
    ]
    assert stats.aggregate.reading_count == len(expected) + 1
