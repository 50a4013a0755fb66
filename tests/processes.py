"""A real server process the tests can kill, restart and measure."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

SERVING_LINE = re.compile(rb"serving energy.v1 on \S+:(\d+)")
_FLEET_SHARDS_LINE = re.compile(r"fleet-rollup shards (\d+)-(\d+)")


def claimed_fleet_shards(log: list[str]) -> list[set[int]]:
    """The fleet-rollup shards each server process of `log` said it took."""
    return [set(range(int(low), int(high) + 1)) for low, high in _FLEET_SHARDS_LINE.findall("".join(log))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`python -m energy_server serve` on loopback; its stderr is kept in `log`."""

    def __init__(
        self,
        database_url: str,
        settings: Mapping[str, str] | None = None,
        *,
        python: str = sys.executable,
        cwd: Path | None = None,
    ) -> None:
        self._python = python
        self._cwd = cwd
        self._env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ENERGY_HOST": "127.0.0.1",
            "ENERGY_PORT": "0",
            "ENERGY_METRICS_PORT": "off",
            "ENERGY_MIGRATE_ON_START": "false",
            **(settings or {}),
        }
        # Worker processes share one port, which they cannot each pick: pick it here.
        self._workers = int(self._env.get("ENERGY_PROCESSES", "1"))
        self.port = _free_port() if self._workers > 1 else 0
        self.log: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> int:
        """Start and return once it (every worker) serves; later starts reuse the first port."""
        env = {**self._env, "ENERGY_PORT": str(self.port)}
        process = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "energy_server",
            "serve",
            env=env,
            cwd=self._cwd,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        self._process = process
        serving = 0
        async with asyncio.timeout(60):
            while serving < self._workers:
                line = await process.stderr.readline()
                if not line:
                    raise AssertionError("server exited before serving:\n" + "".join(self.log))
                self.log.append(line.decode(errors="replace"))
                if match := SERVING_LINE.search(line):
                    self.port = int(match[1])
                    serving += 1
        self._drain = asyncio.create_task(self._keep_reading(process.stderr))
        return self.port

    async def _keep_reading(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.log.append(line.decode(errors="replace"))

    async def kill(self) -> None:
        """SIGKILL: no drain, no goodbye, as a crash or the OOM killer would."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code."""
        return await self._end(signal.SIGTERM)

    def send_signal(self, signum: int) -> None:
        """Signal the process if it still runs; `wait()` for it to exit."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signum)

    async def wait(self) -> int:
        """Its exit code, once it has exited and its log is read to the end."""
        assert self._process is not None
        async with asyncio.timeout(60):
            code = await self._process.wait()
        if self._drain is not None:
            await self._drain
        return code

    async def _end(self, signum: int) -> int:
        if self._process is None:
            return 0
        self.send_signal(signum)
        return await self.wait()

    def peak_rss_kib(self) -> int:
        """The process's high-water resident memory (VmHWM), while it runs."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")
