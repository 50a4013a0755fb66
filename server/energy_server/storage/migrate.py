"""Forward-only schema migrations: numbered SQL files under `migrations/`.

Each file runs in its own transaction and is recorded in `schema_migrations`
with its checksum; the whole run holds an advisory lock, so instances that
start together migrate once. A recorded migration whose file changed is an
error: history must not be rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg

from energy_server.errors import StorageFailure, from_database_error
from energy_server.storage.sql import migrations as sql

__all__ = ["Migration", "apply_migrations", "check_schema", "citus_installed", "load_migrations"]

_log = logging.getLogger(__name__)
# Beside the numbered files; what it does is explained in the file.
CITUS_DISTRIBUTION: Final = "citus/distribute.sql"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """The migrations of `directory`, in order; StorageFailure when it holds none
    (a broken install must not pass for an up-to-date schema)."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise StorageFailure(f"migration file {path.name} is not named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    if not migrations:
        raise StorageFailure(
            f"no migration files (NNNN_name.sql) in {directory}: a broken install, "
            "or ENERGY_MIGRATIONS_DIR names the wrong folder"
        )
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StorageFailure("two migration files share a version number")
    return migrations


async def apply_migrations(database_url: str, directory: Path) -> list[Migration]:
    """Apply the pending migrations; returns those applied (empty when up to date)."""
    migrations = load_migrations(directory)
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            await connection.execute(sql.LOCK_MIGRATIONS, {"key": sql.MIGRATION_LOCK_KEY})
            try:
                applied = await _apply_pending(connection, migrations)
                await _distribute_on_citus(connection, directory)
                return applied
            finally:
                await connection.execute(sql.UNLOCK_MIGRATIONS, {"key": sql.MIGRATION_LOCK_KEY})
    except psycopg.Error as error:
        raise from_database_error(error) from error


async def citus_installed(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether `connection` is to a Citus coordinator."""
    cursor = await connection.execute(sql.SELECT_CITUS_INSTALLED)
    row = await cursor.fetchone()
    return row is not None and bool(row[0])


async def _distribute_on_citus(
    connection: psycopg.AsyncConnection[tuple[object, ...]], directory: Path
) -> None:
    """On a Citus coordinator, distribute what is not distributed yet (idempotent).

    Run on every `migrate`, not recorded as a migration: a database migrated on
    one PostgreSQL is converted by the same command once Citus is added to it."""
    if not await citus_installed(connection):
        return
    path = directory / CITUS_DISTRIBUTION
    if not path.is_file():
        raise StorageFailure(f"this is a Citus coordinator but {path} is missing: a broken install")
    script = path.read_text(encoding="utf-8")
    async with connection.transaction():
        await connection.execute(script.encode())
    _log.info("the schema is distributed over the Citus cluster")


async def check_schema(database_url: str, directory: Path) -> None:
    """StorageFailure, saying what to run, unless every migration of this code is applied."""
    migrations = load_migrations(directory)
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            cursor = await connection.execute(sql.SELECT_LEDGER_EXISTS)
            exists = await cursor.fetchone()
            applied: set[int] = set()
            if exists is not None and exists[0]:
                cursor = await connection.execute(sql.SELECT_SCHEMA_MIGRATIONS)
                applied = {int(str(version)) for version, _, _ in await cursor.fetchall()}
    except psycopg.Error as error:
        raise from_database_error(error) from error
    missing = [f"{m.version:04d}_{m.name}" for m in migrations if m.version not in applied]
    if missing:
        raise StorageFailure(
            f"the database schema is older than this server: {', '.join(missing)} not applied; "
            "run `make migrate` (or `energy-server migrate`) first, or set ENERGY_MIGRATE_ON_START=true"
        )


async def _apply_pending(
    connection: psycopg.AsyncConnection[tuple[object, ...]], migrations: list[Migration]
) -> list[Migration]:
    await connection.execute(sql.CREATE_SCHEMA_MIGRATIONS)
    # Long migrations (0005 copies every row) say how far they got.
    connection.add_notice_handler(lambda notice: _log.info("migration: %s", notice.message_primary))
    cursor = await connection.execute(sql.SELECT_SCHEMA_MIGRATIONS)
    recorded = {int(str(version)): str(checksum) for version, _, checksum in await cursor.fetchall()}
    applied = []
    for migration in migrations:
        if migration.version in recorded:
            if recorded[migration.version] != migration.checksum:
                raise StorageFailure(
                    f"migration {migration.version:04d}_{migration.name} was changed after it was applied"
                )
            continue
        async with connection.transaction():
            await connection.execute(migration.sql.encode())
            await connection.execute(
                sql.INSERT_SCHEMA_MIGRATION,
                {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
            )
        _log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration)
    return applied
