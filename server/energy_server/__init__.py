"""Energy Ingestion Engine: a gRPC service that stores EV-charging telemetry in PostgreSQL."""

import os

# The embedded PostgreSQL is started and stopped by forking a child that
# changes user (pg_ctl must not run as root) while gRPC's threads are live.
# gRPC's fork handlers then crash that child (seen as SIGSEGV in pg_ctl), and
# this service never forks to serve, so they are switched off before gRPC loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

__all__: list[str] = []
