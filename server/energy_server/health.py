"""DatabaseHealth: `grpc.health.v1` statuses that follow the database.

A probe asks PostgreSQL over its own connection every interval (busy pools
are not an outage). While probes fail, the overall status and every
service's are NOT_SERVING and calls that need the database are refused at
once with UNAVAILABLE. Once PostgreSQL answers again, the connection pools
are renewed (rather than left to reconnect with back-off) and the statuses
return to SERVING, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2

from energy_server.errors import DomainError
from energy_server.storage.repository import DatabaseProbe

__all__ = ["DatabaseHealth", "HealthServicer"]

_log = logging.getLogger(__name__)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# grpcio-health-checking ships no type stubs, so its servicer is Any to mypy.
class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """The standard servicer with `List` too (grpcio-health-checking leaves it
    unimplemented): every registered service name with its status."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._server_status.items()
            }
        )


class DatabaseHealth:
    """Keeps the health servicer's statuses in step with the database."""

    def __init__(
        self,
        probe: DatabaseProbe,
        servicer: health.aio.HealthServicer,
        service_names: Sequence[str],
        interval_s: float,
        recover: Callable[[], Awaitable[None]],
    ) -> None:
        self._probe = probe
        self._recover = recover
        self._servicer = servicer
        self._names = ("", *service_names)
        self._interval_s = interval_s
        self._reachable: bool | None = None

    def database_reachable(self) -> bool:
        """False only after a probe failed (and until one succeeds)."""
        return self._reachable is not False

    async def probe(self) -> bool:
        try:
            await self._probe.ping()
            if self._reachable is False:
                # Back after an outage: the pools must lend working connections first.
                await self._recover()
            reachable = True
        except DomainError:
            reachable = False
        if reachable != self._reachable:
            if self._reachable is not None:
                _log.warning("database %s", "reachable again" if reachable else "unreachable")
            self._reachable = reachable
            for name in self._names:
                await self._servicer.set(name, _SERVING if reachable else _NOT_SERVING)
        return reachable

    async def run(self) -> None:
        """Probe for ever; cancel to stop."""
        while True:
            await self.probe()
            await asyncio.sleep(self._interval_s)

    async def shut_down(self) -> None:
        """NOT_SERVING for good, so balancers drain this instance."""
        await self._servicer.enter_graceful_shutdown()

    async def close(self) -> None:
        await self._probe.close()
