"""OpenTelemetry traces of tool calls (off unless ``otlp_endpoint`` is set).

A call gets a span ``mcpproxy.call <name>`` with three children: ``policy`` (routing and the
checks, from the start of the call to the dispatch), ``upstream`` (the wait for the server;
current while it runs, so the MCP SDK's client span and the ``traceparent`` it injects into
the upstream request's ``_meta`` descend from it) and ``filters`` (from the answer to the end).

The call span's parent is the client's trace context: the ``traceparent`` of the request's
``_meta`` (which the SDK's server middleware also makes current), else the one of the HTTP
request's headers (``traceparent``/``tracestate``, kept by the HTTP middleware), else none.

Spans go to an OTLP/HTTP collector through a batching processor (one background thread,
bounded queue). The exporter is an optional dependency: ``pip install 'mcpproxy[otlp]'``.
With tracing off nothing here is imported or run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from mcpproxy import __version__
from mcpproxy.errors import ConfigError, ProxyError
from mcpproxy.observe.events import current_call_var, trace_headers_var

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from mcpproxy.gateway import CallRecord
    from mcpproxy.routing.catalog import ToolEntry
    from mcpproxy.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _CallSpans:
    span: Span
    token: object
    started_ns: int
    upstream_started_ns: int | None = None
    upstream_ended_ns: int | None = None


class CallTracer:
    """A call observer that emits the spans of every call.

    Args:
        provider: The SDK tracer provider spans go to.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("mcpproxy", __version__)
        self._calls: dict[str, _CallSpans] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CallTracer:
        """A tracer exporting to ``settings.otlp_endpoint`` over OTLP/HTTP.

        Raises:
            ConfigError: The OpenTelemetry SDK or its OTLP exporter is not installed.
        """
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError(
                "otlp_endpoint is set but the OpenTelemetry exporter is not installed",
                key="otlp_endpoint",
                hint="pip install 'mcpproxy[otlp]', or leave otlp_endpoint empty",
            ) from exc
        return cls.with_exporter(OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=5))

    @classmethod
    def with_exporter(cls, exporter: SpanExporter) -> CallTracer:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": "mcpproxy", "service.version": __version__})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=4096, schedule_delay_millis=500))
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            # The first tracer of the process also records the MCP SDK's own client and server spans.
            trace.set_tracer_provider(provider)
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is queued (bounded by the exporter's timeout) and stop."""
        try:
            self.provider.shutdown()
        except Exception:
            logger.warning("tracing: flushing spans failed", exc_info=True)

    # -- call observer -----------------------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        parent = _parent_context(record.ctx.meta)
        span = self.tracer.start_span(
            f"mcpproxy.call {record.name}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={"mcp.tool.name": record.name, "mcpproxy.via": record.ctx.via, "mcpproxy.call_id": record.id},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._calls[record.id] = _CallSpans(span, token, time.time_ns())

    @contextmanager
    def upstream_span(self, entry: ToolEntry) -> Iterator[None]:
        """The ``upstream`` span, current while the upstream call runs (opened by ``Operations.call``)."""
        call_id = current_call_var.get()
        state = self._calls.get(call_id) if call_id is not None else None
        if state is None:
            yield
            return
        now = time.time_ns()
        state.upstream_started_ns = now
        self._child(state, "policy", state.started_ns, now)
        ctx = trace.set_span_in_context(state.span)
        span = self.tracer.start_span(
            "upstream", context=ctx, kind=SpanKind.CLIENT, start_time=now,
            attributes={"mcp.server": entry.server, "mcp.tool.name": entry.name},
        )
        token = otel_context.attach(trace.set_span_in_context(span, ctx))
        try:
            yield
        except BaseException as exc:
            _set_error(span, exc)
            raise
        finally:
            otel_context.detach(token)
            state.upstream_ended_ns = time.time_ns()
            span.end(end_time=state.upstream_ended_ns)

    def call_finished(self, record: CallRecord) -> None:
        state = self._calls.pop(record.id, None)
        if state is None:
            return
        span = state.span
        now = time.time_ns()
        if state.upstream_started_ns is None:
            self._child(state, "policy", state.started_ns, now, error=record.error)
        elif state.upstream_ended_ns is not None:
            self._child(state, "filters", state.upstream_ended_ns, now,
                        error=record.error if record.upstream_ms is not None else None)
        if record.entry is not None:
            span.set_attribute("mcp.server", record.entry.server)
        span.set_attribute("mcpproxy.status", record.status)
        if record.error is not None:
            _set_error(span, record.error)
        elif record.status == "error":
            span.set_status(Status(StatusCode.ERROR, "the tool returned isError"))
        with suppress(ValueError):  # finished in another context than it started
            otel_context.detach(state.token)  # type: ignore[arg-type]
        span.end(end_time=now)

    def _child(self, state: _CallSpans, name: str, start: int, end: int, *, error: BaseException | None = None) -> None:
        span = self.tracer.start_span(name, context=trace.set_span_in_context(state.span), start_time=start)
        if error is not None:
            _set_error(span, error)
        span.end(end_time=end)


def _set_error(span: Span, error: BaseException) -> None:
    kind = error.kind if isinstance(error, ProxyError) else type(error).__name__
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))


def _parent_context(meta: Any) -> otel_context.Context | None:
    """The client's trace context: ``_meta``, else HTTP headers, else the current one."""
    for carrier in (meta if isinstance(meta, dict) else None, trace_headers_var.get()):
        if carrier and "traceparent" in carrier:
            try:
                ctx = propagate.extract(carrier)
            except (ValueError, TypeError):
                continue
            if trace.get_current_span(ctx).get_span_context().is_valid:
                return ctx
    return None
