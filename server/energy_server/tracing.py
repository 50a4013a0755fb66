"""OpenTelemetry tracing of RPCs and their database statements; off unless configured.

The standard variables switch it on and shape it: `OTEL_TRACES_EXPORTER`
(`otlp`, `console` or `none`), `OTEL_EXPORTER_OTLP_ENDPOINT` (and the rest of
the OTLP exporter's), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`. The
spans come from the maintained instrumentations, not hand-made ones: the
gRPC aio server's (a span per RPC, propagating the caller's trace context)
and psycopg's (a span per statement). Ingest's statements run in the write
lanes, one transaction for many calls, so they are root spans of their own;
analytics statements are children of their RPC's span.

Needs the `tracing` extra (`pip install 'energy-ingestion-server[tracing]'`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from energy_server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["Tracing", "start_tracing"]


@dataclass(slots=True)
class Tracing:
    """Tracing as started; `stop()` flushes the spans and removes the instrumentation."""

    provider: TracerProvider

    def stop(self) -> None:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        GrpcAioInstrumentorServer().uninstrument()
        PsycopgInstrumentor().uninstrument()
        self.provider.shutdown()


def _exporter(settings: Settings) -> SpanExporter:
    if settings.otel_traces_exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, TLS: from the OTEL_EXPORTER_OTLP_* variables


def start_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Instrument gRPC and psycopg when the settings ask for traces (or `exporter` is given);
    call before the gRPC server is created. None when tracing is off."""
    if exporter is None and not settings.tracing:
        return None
    try:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise SettingsError(
            "OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT ask for traces, but OpenTelemetry is not "
            "installed: pip install 'energy-ingestion-server[tracing]'"
        ) from None
    provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(settings)))
    GrpcAioInstrumentorServer().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    return Tracing(provider)
