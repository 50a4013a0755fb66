"""Storage: everything that talks to PostgreSQL.

`repository` stores and reads (it owns the transactions), `sql` holds every
statement as a named constant (rendered as plain SQL into `sql/*.sql` by
`make gen`), `migrate` applies the numbered migrations, `partitions` keeps
the time partitions and the retention horizons, `pools` opens the
connection pools and `embedded` runs a PostgreSQL of its own when no
DATABASE_URL is given.
"""
