"""Process lifecycle: migrations, and SIGTERM draining a real server process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import psycopg
import pytest
from grpc import aio

from energy.v1 import ingest_pb2, ingest_pb2_grpc
from energy_server.errors import StorageFailure
from energy_server.settings import Settings, SettingsError
from energy_server.storage.migrate import apply_migrations, load_migrations
from tests.processes import ServerProcess, claimed_fleet_shards
from tests.support import BASE_TIME, fetch, meter, minutes

MIGRATIONS = Settings().migrations_dir


async def test_migrations_apply_to_an_empty_database_and_a_second_run_is_a_no_op(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    applied = await apply_migrations(url, MIGRATIONS)
    assert [m.version for m in applied] == [m.version for m in load_migrations(MIGRATIONS)]
    assert await apply_migrations(url, MIGRATIONS) == []
    recorded = await fetch(url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in recorded] == [m.version for m in applied]
    tables = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert {row[0] for row in tables} >= {
        "meter_readings",
        "vehicle_readings",
        "meter_current",
        "vehicle_current",
        "vehicle_meter_map",
    }


async def test_concurrent_migrations_apply_once(new_database: Callable[[], str]) -> None:
    url = new_database()
    results = await asyncio.gather(*(apply_migrations(url, MIGRATIONS) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations(MIGRATIONS))]


async def test_changed_applied_migration_is_refused(new_database: Callable[[], str], tmp_path: Path) -> None:
    url = new_database()
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int);")
    await apply_migrations(url, tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a bigint);")
    with pytest.raises(StorageFailure, match="changed after it was applied"):
        await apply_migrations(url, tmp_path)


async def test_sigterm_during_an_open_stream_keeps_what_was_acked_and_exits_zero(
    database_url: str,
) -> None:
    grace_s = 5.0
    server = ServerProcess(database_url, {"ENERGY_SHUTDOWN_GRACE_S": str(grace_s)})
    port = await server.start()
    try:
        acked: list[int] = []
        outbox: asyncio.Queue[ingest_pb2.StreamReadingsRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[ingest_pb2.StreamReadingsRequest]:
            while (request := await outbox.get()) is not None:
                yield request

        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = ingest_pb2_grpc.IngestServiceStub(channel).StreamReadings(requests())
            for sequence in range(1, 11):
                readings = [meter("M-1", BASE_TIME + minutes(sequence * 100 + i)) for i in range(50)]
                await outbox.put(ingest_pb2.StreamReadingsRequest(sequence=sequence, readings=readings))
            async with asyncio.timeout(30):
                while len(acked) < 5:
                    ack = await stream.read()
                    assert isinstance(ack, ingest_pb2.StreamReadingsResponse)
                    acked.append(ack.sequence)
            started = asyncio.get_running_loop().time()
            server.send_signal(signal.SIGTERM)
            # The open stream may still finish: the client half-closes and reads its acks.
            await outbox.put(None)
            async with asyncio.timeout(30):
                while isinstance(ack := await stream.read(), ingest_pb2.StreamReadingsResponse):
                    acked.append(ack.sequence)
        async with asyncio.timeout(grace_s + 10):
            code = await server.wait()
        assert code == 0
        assert asyncio.get_running_loop().time() - started < grace_s + 5
    finally:
        await server.kill()

    assert acked == list(range(1, 11))
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute("SELECT count(*) FROM meter_readings")
        stored = await cursor.fetchone()
    assert stored == (50 * len(acked),)


async def test_worker_processes_share_the_port_and_stop_together(database_url: str) -> None:
    server = ServerProcess(database_url, {"ENERGY_PROCESSES": "2", "ENERGY_WRITERS": "2"})
    port = await server.start()
    try:
        assert sum("as worker" in line for line in server.log) == 2

        async def send(sender: int) -> None:
            # A channel, and so a connection, of its own: the kernel spreads connections
            # over the workers (16 of them all reaching one worker: odds of 1 in 32,768).
            options = [("grpc.use_local_subchannel_pool", 1)]
            async with aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                response = await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
                    ingest_pb2.IngestReadingsRequest(
                        readings=[meter(f"M-{sender}", BASE_TIME + minutes(i)) for i in range(20)]
                    )
                )
                assert response.summary.accepted_count == 20

        await asyncio.gather(*(send(sender) for sender in range(16)))
        # Each worker commits through the fleet shards it took: both served.
        used = {
            shard for (shard,) in await fetch(database_url, "SELECT DISTINCT shard FROM meter_fleet_minutely")
        }
        claimed = claimed_fleet_shards(server.log)
        assert len(claimed) == 2
        assert all(used & shards for shards in claimed), (used, claimed)
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    finally:
        await server.kill()
    assert await fetch(database_url, "SELECT count(*) FROM meter_readings") == [(16 * 20,)]
    assert psutil.pid_exists(server.pid) is False


async def test_a_dead_worker_stops_the_whole_server_with_failure(database_url: str) -> None:
    server = ServerProcess(database_url, {"ENERGY_PROCESSES": "2"})
    await server.start()
    try:
        workers = psutil.Process(server.pid).children()
        assert len(workers) == 2
        workers[0].kill()
        assert await server.wait() == 1
        assert not any(worker.is_running() for worker in workers)
        assert any(re.search(r"worker \d exited with -9: stopping the others", line) for line in server.log)
    finally:
        await server.kill()


def test_several_processes_need_a_fixed_port() -> None:
    with pytest.raises(SettingsError, match="ENERGY_PROCESSES above 1 needs a fixed ENERGY_PORT"):
        Settings.from_env(environ={"ENERGY_PROCESSES": "2", "ENERGY_PORT": "0"})


async def _command(database_url: str, *arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "energy_server",
        *arguments,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_migrate_command_reports_what_it_did(new_database: Callable[[], str]) -> None:
    url = new_database()
    code, output = await _command(url, "migrate")
    assert code == 0, output
    assert "applied 0001_readings" in output
    code, output = await _command(url, "migrate")
    assert (code, output.strip().splitlines()[-1]) == (0, "schema is up to date")


async def test_backfill_command_rebuilds_rollups_with_progress(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute(
            "INSERT INTO meter_readings VALUES"
            " ('M', '2026-01-01T10:05Z', 1.5, 230), ('M', '2026-01-01T10:35Z', 2, 231)"
        )
    code, output = await _command(database_url, "backfill")
    assert code == 0, output
    assert "rebuilding meter rollups from history ... 1 hourly rows, 2 fleet minute rows" in output
    rows = await fetch(database_url, "SELECT meter_id, reading_count, kwh_consumed_ac_sum FROM meter_hourly")
    assert rows == [("M", 2, 3.5)]
    fleet = await fetch(
        database_url, "SELECT minute, shard, reading_count, voltage_max FROM meter_fleet_minutely ORDER BY 1"
    )
    assert [row[1:] for row in fleet] == [(0, 1, 230.0), (0, 1, 231.0)]


async def test_migrate_without_migration_files_fails_naming_the_folder(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "energy_server",
        "migrate",
        env={**os.environ, "DATABASE_URL": url, "ENERGY_MIGRATIONS_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode == 1, output
    assert f"no migration files (NNNN_name.sql) in {tmp_path}" in output.decode()
    assert "up to date" not in output.decode()


async def test_serve_refuses_a_schema_older_than_the_code(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    # The first migration only, as an older release of the service would have left it.
    older = tmp_path / "older"
    older.mkdir()
    first = Settings().migrations_dir / "0001_readings.sql"
    (older / first.name).write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    await apply_migrations(url, older)
    server = ServerProcess(url)  # ENERGY_MIGRATE_ON_START=false, as a rollout would run it
    with pytest.raises(AssertionError, match="exited before serving"):
        await server.start()
    assert await server.wait() == 1
    log = "".join(server.log)
    assert "the database schema is older than this server: 0002_hourly_rollups" in log
    assert "run `make migrate` (or `energy-server migrate`)" in log
    assert "Traceback" not in log


async def test_a_second_server_on_the_same_embedded_folder_leaves_the_first_untouched(tmp_path: Path) -> None:
    embedded = {"ENERGY_EMBEDDED_DATA_DIR": str(tmp_path / "pgdata"), "ENERGY_MIGRATE_ON_START": "true"}
    first = ServerProcess("", embedded)
    port = await first.start()
    try:
        second = ServerProcess("", embedded)
        with pytest.raises(AssertionError, match="exited before serving"):
            await second.start()
        assert await second.wait() == 2
        said = "".join(second.log)
        assert f"is in use by energy-server serve (pid {first.pid}, gRPC port {port})" in said, said
        assert "Traceback" not in said
        # The first one still serves and stores: its PostgreSQL was not touched.
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
                ingest_pb2.IngestReadingsRequest(readings=[meter("M-FIRST", BASE_TIME)]), timeout=10
            )
        assert answer.summary.accepted_count == 1
        # A port in use is one line naming the setting (the second has a folder of its own).
        taken = ServerProcess(
            "", {"ENERGY_EMBEDDED_DATA_DIR": str(tmp_path / "other"), "ENERGY_PORT": str(port)}
        )
        taken.port = port
        with pytest.raises(AssertionError, match="exited before serving"):
            await taken.start()
        assert await taken.wait() == 2
        refused = "".join(taken.log)
        assert f"ENERGY_PORT={port}: cannot listen on 127.0.0.1:{port}" in refused, refused
        assert "Traceback" not in refused
        assert "embedded PostgreSQL stopped" in refused  # its own, which it did start
    finally:
        assert await first.stop() == 0
    stopped = "".join(first.log)
    assert stopped.count("embedded PostgreSQL stopped") == 1
