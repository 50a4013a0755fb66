"""Fixtures: a real PostgreSQL (DATABASE_URL, else the embedded one), a
migrated test database emptied before each test, and the real server on a
free port with the generated stubs as its client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from grpc import aio
from psycopg import sql

from energy.v1 import analytics_pb2_grpc, ingest_pb2_grpc, metrics_pb2_grpc
from energy_server.app import RunningServer, create_server
from energy_server.settings import Settings
from energy_server.storage.embedded import EmbeddedPostgres
from energy_server.storage.sql import DATA_TABLES
from tests.support import empty_tables, is_citus_coordinator, run_migrations

TABLES = DATA_TABLES


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server the tests may create databases on."""
    configured = Settings.from_env().database_url
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "pgdata")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


def database_url_for(server_url: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(server_url, dbname=database)


def drop_database(server_url: str, name: str) -> None:
    """Drop a test's database, ending what is still connected to it.

    FORCE ends the test's own lingering sessions, but refuses (and ends
    nothing) when a process of no role of ours is in the database: an
    autovacuum worker that happened to start there (seen once in CI on
    PostgreSQL 15: "must be a member of the role whose process is being
    terminated"). A plain DROP stops autovacuum workers itself.
    """
    drop = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    with psycopg.connect(server_url, autocommit=True) as admin:
        try:
            admin.execute(drop + sql.SQL(" WITH (FORCE)"))
        except psycopg.errors.InsufficientPrivilege:
            admin.execute(drop)


@pytest.fixture(scope="session")
def scratch_databases(server_url: str) -> Iterator[list[str]]:
    """Names of databases created by tests; all dropped at the end of the session."""
    created: list[str] = []
    yield created
    for name in created:
        drop_database(server_url, name)


@pytest.fixture(scope="session")
def new_database(server_url: str, scratch_databases: list[str]) -> Callable[[], str]:
    """A factory of empty databases: returns the URL of a new one each call."""

    def create() -> str:
        name = f"energy_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        scratch_databases.append(name)
        return database_url_for(server_url, name)

    return create


@pytest.fixture(scope="session")
def on_citus(server_url: str) -> bool:
    return is_citus_coordinator(server_url)


@pytest.fixture(scope="session")
def migrated_url(server_url: str, new_database: Callable[[], str], on_citus: bool) -> str:
    # A Citus cluster's workers are registered in the coordinator's own
    # database only: the tests use that one (a throw-away cluster).
    url = server_url if on_citus else new_database()
    run_migrations(url)
    return url


@pytest.fixture
def database_url(migrated_url: str) -> str:
    """The migrated test database, emptied for this test."""
    asyncio.run(empty_tables(migrated_url))
    return migrated_url


def settings_for_tests(**overrides: object) -> Settings:
    """Settings for a server bound to a free loopback port, already-migrated database."""
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "migrate_on_start": False,
        "metrics_port": None,
    }
    values.update(overrides)
    return Settings.from_env(environ={}, **values)


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[RunningServer]:
    running = await create_server(settings_for_tests(), database_url)
    try:
        yield running
    finally:
        await running.stop(0)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


@pytest.fixture
def ingest(channel: aio.Channel) -> ingest_pb2_grpc.IngestServiceAsyncStub:
    return ingest_pb2_grpc.IngestServiceStub(channel)


@pytest.fixture
def metrics(channel: aio.Channel) -> metrics_pb2_grpc.MetricsServiceAsyncStub:
    return metrics_pb2_grpc.MetricsServiceStub(channel)


@pytest.fixture
def analytics(channel: aio.Channel) -> analytics_pb2_grpc.AnalyticsServiceAsyncStub:
    return analytics_pb2_grpc.AnalyticsServiceStub(channel)


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL this test alone may stop and start."""
    postgres = EmbeddedPostgres(tmp_path / "pgdata")
    url = postgres.start()
    run_migrations(url)
    try:
        yield postgres, url
    finally:
        postgres.stop()
