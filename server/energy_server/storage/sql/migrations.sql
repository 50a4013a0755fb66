-- Every statement of energy_server/storage/sql/migrations.py, as the server sends it.
-- Written by `make gen` (scripts/render_sql.py); do not edit: change the Python.
-- %(name)s is a parameter; values never enter the text.

-- name: LOCK_MIGRATIONS
SELECT pg_advisory_lock(%(key)s);

-- name: UNLOCK_MIGRATIONS
SELECT pg_advisory_unlock(%(key)s);

-- name: CREATE_SCHEMA_MIGRATIONS
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: SELECT_SCHEMA_MIGRATIONS
SELECT version, name, checksum FROM schema_migrations ORDER BY version;

-- name: INSERT_SCHEMA_MIGRATION
INSERT INTO schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: SELECT_LEDGER_EXISTS
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: SELECT_CITUS_INSTALLED
SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus');
