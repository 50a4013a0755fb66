"""SQL of the migration ledger `schema_migrations`."""

from typing import Final

__all__ = [
    "CREATE_SCHEMA_MIGRATIONS",
    "INSERT_SCHEMA_MIGRATION",
    "LOCK_MIGRATIONS",
    "SELECT_CITUS_INSTALLED",
    "SELECT_LEDGER_EXISTS",
    "SELECT_SCHEMA_MIGRATIONS",
    "UNLOCK_MIGRATIONS",
]

# Arbitrary but fixed: every instance of the service contends for the same lock.
MIGRATION_LOCK_KEY: Final = 7_318_530_412_001

LOCK_MIGRATIONS: Final = "SELECT pg_advisory_lock(%(key)s)"
UNLOCK_MIGRATIONS: Final = "SELECT pg_advisory_unlock(%(key)s)"

CREATE_SCHEMA_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

SELECT_SCHEMA_MIGRATIONS: Final = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"

INSERT_SCHEMA_MIGRATION: Final = """
INSERT INTO schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)
"""

# Whether the ledger exists: an empty database has none yet, and reading it would fail.
SELECT_LEDGER_EXISTS: Final = "SELECT to_regclass('schema_migrations') IS NOT NULL"

# Whether this is a Citus coordinator: then `migrate` distributes the schema.
SELECT_CITUS_INSTALLED: Final = "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
