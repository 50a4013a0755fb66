"""OpenTelemetry traces, read back from an in-memory exporter: a span per RPC from
the gRPC instrumentation, and the database statements of an analytics call as its
children from psycopg's; off unless the OTEL_* variables ask for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from grpc import aio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from energy.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from energy_server.app import create_server
from energy_server.settings import Settings
from energy_server.tracing import Tracing, start_tracing
from tests.conftest import settings_for_tests
from tests.support import BASE_TIME, meter


def test_tracing_is_off_unless_the_standard_variables_ask_for_it() -> None:
    assert not Settings.from_env(environ={}).tracing
    assert not Settings.from_env(environ={"OTEL_TRACES_EXPORTER": "none"}).tracing
    assert Settings.from_env(environ={"OTEL_TRACES_EXPORTER": "console"}).tracing
    assert Settings.from_env(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}).tracing
    assert start_tracing(Settings.from_env(environ={})) is None


@pytest.fixture
def tracing() -> Iterator[tuple[InMemorySpanExporter, Tracing]]:
    exporter = InMemorySpanExporter()
    tracing = start_tracing(settings_for_tests(), exporter)
    assert tracing is not None
    try:
        yield exporter, tracing
    finally:
        tracing.stop()  # flushes, and takes the instrumentation away from the other tests


async def test_rpcs_and_their_database_statements_are_traced(
    database_url: str, tracing: tuple[InMemorySpanExporter, Tracing]
) -> None:
    spans, started = tracing
    running = await create_server(settings_for_tests(), database_url)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
                ingest_pb2.IngestReadingsRequest(readings=[meter("M-TRACE", BASE_TIME)])
            )
            await analytics_pb2_grpc.AnalyticsServiceStub(channel).GetMeterFleetSummary(
                analytics_pb2.GetMeterFleetSummaryRequest()
            )
    finally:
        await running.stop(0)
    started.provider.force_flush()
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    servers = {span.name: span for span in finished if span.kind == SpanKind.SERVER}
    assert {
        "/energy.v1.IngestService/IngestReadings",
        "/energy.v1.AnalyticsService/GetMeterFleetSummary",
    } <= set(servers), [span.name for span in finished]
    summary = servers["/energy.v1.AnalyticsService/GetMeterFleetSummary"]
    assert summary.context is not None
    statements = [
        span
        for span in finished
        if span.kind == SpanKind.CLIENT
        and span.parent is not None
        and span.parent.span_id == summary.context.span_id
    ]
    assert statements, [(span.name, span.kind, span.parent) for span in finished]
    assert all(span.attributes and span.attributes.get("db.system") == "postgresql" for span in statements)
    # The write lane's transaction: statements of their own, outside any RPC's span.
    assert any(span.kind == SpanKind.CLIENT and span.parent is None for span in finished)
