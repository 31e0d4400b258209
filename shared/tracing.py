"""OpenTelemetry spans, only when an exporter is configured (OTEL_EXPORTER_OTLP_ENDPOINT).

Unset (the default), nothing of opentelemetry is imported and the edge pays one `is None`
test per request. Set, the edge opens one SERVER span per request, continuing the caller's
W3C `traceparent`, and batches spans to the OTLP/HTTP exporter (which reads the standard
OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables itself).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

from shared.settings import Settings

TRACER: Tracer | None = None  # read by the edge on every request
_provider: TracerProvider | None = None
_propagator: Any = None  # W3C trace-context, once tracing is on


def configure_tracing(settings: Settings) -> None:
    """Install the OTLP pipeline once if an endpoint is configured; otherwise do nothing."""
    if not settings.otel_exporter_otlp_endpoint or _provider is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME", "online-ml")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use_provider(provider)


def use_provider(provider: TracerProvider | None) -> None:
    """Trace requests into `provider` (tests pass one with an in-memory exporter); None: off."""
    global TRACER, _provider, _propagator
    _provider = provider
    TRACER = provider.get_tracer("online-ml.http") if provider is not None else None
    if provider is not None and _propagator is None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _propagator = TraceContextTextMapPropagator()


def parent_context(traceparent: str | None) -> Any:
    """The caller's span context from a validated traceparent (None: a new trace)."""
    if traceparent is None or _propagator is None:
        return None
    return _propagator.extract({"traceparent": traceparent})


def traceparent_of(span: Any) -> str:
    """The W3C traceparent naming `span`, for logs and events downstream."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
