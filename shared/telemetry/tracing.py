"""OpenTelemetry traces: one tracer provider per process, W3C trace context across calls and events.

Spans are always made (so trace ids reach the logs and travel with calls and events); they leave the
process only when TelemetrySettings.otlp_endpoint is set (OTLP over gRPC, batched)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, MutableSequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import TelemetrySettings
from shared.telemetry.context import request_id_of

if TYPE_CHECKING:
    from tenure.events.v1 import events_pb2

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_lock = threading.Lock()


def setup(settings: TelemetrySettings | None = None, service_name: str = "") -> TracerProvider:
    """The process's tracer provider, made on first use (a provider set before, such as a test's, is kept).

    `service_name` names the process in the exported spans (OTEL_SERVICE_NAME wins; `tenure` when several
    services share the process); each span also names its service in `tenure.service`."""
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        settings = settings or TelemetrySettings()
        name = os.environ.get("OTEL_SERVICE_NAME") or service_name or "tenure"
        provider = TracerProvider(
            resource=Resource.create({"service.name": name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=settings.otlp_endpoint, insecure=settings.otlp_endpoint.startswith("http://")
            )
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer("tenure")


def context_from(traceparent: str) -> otel_context.Context | None:
    """The trace context a `traceparent` value names (None when empty or malformed: a new trace)."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def current_traceparent() -> str:
    """The `traceparent` of the current span ("" outside any span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def trace_id_of(span: Span | None = None) -> str:
    """The current (or `span`'s) trace id in hex, "" outside any span."""
    ctx = (span or trace.get_current_span()).get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def inject(metadata: MutableSequence[tuple[str, str]]) -> None:
    """Add the current trace context (traceparent, tracestate) to outgoing gRPC metadata."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    present = {k for k, _ in metadata}
    metadata.extend((k, v) for k, v in carrier.items() if k not in present)


@contextmanager
def consuming(ev: events_pb2.Event, service: str) -> Iterator[Span]:
    """A consumer span for applying `ev`, in the trace of the span that published it, with the request id
    the event carries. Inside a delivery RPC of the same trace the span is the RPC's child."""
    parent = context_from(ev.traceparent)
    here = trace.get_current_span().get_span_context()
    if parent is not None and here.is_valid:
        if here.trace_id == trace.get_current_span(parent).get_span_context().trace_id:
            parent = None  # the current span (the Deliver RPC) already continues the event's trace
    with (
        request_id_of(ev.request_id),
        tracer().start_as_current_span(
            f"apply {ev.event_type}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "tenure.service": service,
                "messaging.message.id": ev.event_id,
                "tenure.event_type": ev.event_type,
                "tenure.source": ev.source,
                "tenure.account_id": ev.account_id,
            },
        ) as span,
    ):
        yield span


_R = TypeVar("_R")
_S = TypeVar("_S")


@contextmanager
def internal(name: str, service: str) -> Iterator[Span]:
    """A span of the service's own work outside any call (a background loop's pass): a trace of its own."""
    with tracer().start_as_current_span(
        name, context=otel_context.Context(), attributes={"tenure.service": service}
    ) as span:
        yield span
