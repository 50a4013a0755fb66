"""What the benchmarks share: a database to measure on and the server as `make run` starts it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

import energy_server  # noqa: F401  (switches off gRPC fork handlers first)
from energy_server.settings import Settings
from energy_server.storage.embedded import EmbeddedPostgres


@contextlib.contextmanager
def database(settings: Settings, prefix: str) -> Iterator[str]:
    """DATABASE_URL when set, else a fresh embedded PostgreSQL, deleted afterwards
    (a day of history for the reads is gigabytes)."""
    if settings.database_url:
        yield settings.database_url
        return
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = EmbeddedPostgres(folder / "pgdata")
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Server:
    """A running server process: where it listens, and its pid for CPU and memory figures."""

    port: int
    pid: int

    def peak_rss_mib(self) -> float:
        """High-water resident memory (VmHWM) of the server, summed over its worker processes."""
        total_kib = 0
        for process in _with_children(self.pid):
            with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
                total_kib += next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
        return total_kib / 1024


def _with_children(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process, its live descendants, and the children
    it has reaped (PostgreSQL backends come and go) have used so far."""
    own = psutil.Process(pid).cpu_times()
    total = float(own.children_user + own.children_system)
    for process in _with_children(pid):
        with contextlib.suppress(psutil.NoSuchProcess):  # a child may exit meanwhile
            times = process.cpu_times()
            total += float(times.user + times.system)
    return total


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine (live ones)."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] == "postgres" and process.info["cpu_times"] is not None:
            times = process.info["cpu_times"]
            total += times.user + times.system
    return total


RESULTS = Path(__file__).resolve().parent / "results"


def write_report(name: str, quick: bool, report: dict[str, Any]) -> Path:
    """bench/results/NAME-latest.json (NAME-quick.json for a smoke run)."""
    out = RESULTS / f"{name}-{'quick' if quick else 'latest'}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")
    return out


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(database_url: str, settings: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m energy_server serve` on a free loopback port.

    `settings` are extra ENERGY_* variables (TLS files, say). Several processes
    (ENERGY_PROCESSES) share a port picked here, since they cannot each pick one.
    """
    processes = int((settings or {}).get("ENERGY_PROCESSES", "1"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENERGY_PORT": str(free_port()) if processes > 1 else "0",
        "ENERGY_HOST": "127.0.0.1",
        "ENERGY_METRICS_PORT": "0",
        **(settings or {}),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "energy_server", "serve"], env=env, stderr=subprocess.PIPE
    )
    assert server.stderr is not None
    try:
        deadline = time.monotonic() + 60
        port = None
        serving = 0
        while serving < processes and time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                raise SystemExit("server exited before serving")
            if match := re.search(rb"serving energy.v1 on \S+:(\d+)", line):
                port = int(match[1])
                serving += 1
        if port is None or serving < processes:
            raise SystemExit("server did not start within 60 s")
        # Keep draining its log so the pipe never fills and blocks the server.
        subprocess.Popen(["cat"], stdin=server.stderr, stdout=subprocess.DEVNULL)
        yield Server(port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def percentiles(values: list[float]) -> list[float]:
    """The 99 cut points of `values` (p50 is [49], p99 [98]); NaN for fewer than two."""
    return statistics.quantiles(values, n=100) if len(values) > 1 else [float("nan")] * 99
