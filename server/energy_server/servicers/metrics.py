"""MetricsServicer: `energy.v1.MetricsService`, the server's counters on request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grpc import aio

from energy.v1 import metrics_pb2, metrics_pb2_grpc
from energy_server import convert
from energy_server.metrics import MetricsSnapshot

__all__ = ["MetricsServicer"]


class MetricsServicer(metrics_pb2_grpc.MetricsServiceServicer):
    """Answers with the same snapshot the Prometheus exporter serves."""

    def __init__(self, take_snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._take_snapshot = take_snapshot

    async def GetServerMetrics(
        self, request: metrics_pb2.GetServerMetricsRequest, context: aio.ServicerContext[Any, Any]
    ) -> metrics_pb2.GetServerMetricsResponse:
        return convert.metrics_to_proto(self._take_snapshot())
