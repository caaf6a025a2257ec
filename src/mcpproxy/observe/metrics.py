"""Prometheus metrics of one gateway, served at ``/metrics``.

Each gateway has its own registry (several gateways can live in one process, as in tests).
Counters and histograms are updated by the call observer and the event listener: a few
microseconds per call. Everything that is a current value (server states, circuit states,
queue depths, index size, in-flight calls, event-loop tasks) is read at scrape time by a
collector, so it costs nothing between scrapes.

Names (all prefixed ``mcpproxy_``)::

    tool_calls_total{server,tool,status}         calls by outcome (ok, error, input_required, refused,
                                                 failed, cancelled)
    tool_call_duration_seconds{server}           whole time of a call in the gateway
    upstream_duration_seconds{server}            time waiting for the upstream
    gateway_overhead_seconds                     the first minus the second: the gateway's own time
    upstream_state{server,state}                 1 for the server's current state
    upstream_reconnects_total{server}            connection attempts after the first
    circuit_state{server}                        0 closed, 1 half-open, 2 open
    circuit_opens_total{server}                  times the circuit opened
    upstream_calls_in_flight{server}             calls running on the server
    upstream_queue_depth{server}                 calls waiting for a slot
    upstream_overload_refusals_total{server}     calls refused as overloaded (queue full, or no slot in time)
    policy_decisions_total{check,action}         tier, arguments, quarantine, pin, scanner, redaction, auth
    rate_limited_total                           HTTP requests answered 429
    sandbox_starts_total{outcome}                sandboxed server starts (from sandbox events)
    code_executions_total{status}                code executions (from code events)
    index_tools                                  tools in the search index
    activity_queue_depth / activity_dropped_total / activity_written_total
    calls_in_flight, draining, event_loop_tasks, threads, build_info{version}

plus the standard ``process_*`` metrics (memory, CPU, open file descriptors).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from mcpproxy import __version__
from mcpproxy.observe.events import OpsEvent
from mcpproxy.upstream.base import UpstreamState

if TYPE_CHECKING:
    from mcpproxy.gateway import CallRecord, Gateway
    from mcpproxy.observe.ops import Operations

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_CIRCUIT_VALUE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_POLICY_ERRORS = {"tier_mismatch": "tier", "invalid_arguments": "arguments", "quarantined": "quarantine"}


class GatewayMetrics:
    """The metrics of ``gateway``; a call observer and an event listener.

    Args:
        gateway: The gateway whose live values are read at scrape time.
        ops: The operations layer (limits, breakers, activity queue).
    """

    def __init__(self, gateway: Gateway, ops: Operations) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.calls = Counter(
            "mcpproxy_tool_calls", "Tool calls by outcome.", ["server", "tool", "status"], registry=reg
        )
        self.duration = Histogram(
            "mcpproxy_tool_call_duration_seconds",
            "Whole time of a tool call in the gateway, upstream included.",
            ["server"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.upstream = Histogram(
            "mcpproxy_upstream_duration_seconds",
            "Time a tool call waited for its upstream.",
            ["server"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.overhead = Histogram(
            "mcpproxy_gateway_overhead_seconds",
            "Time of a dispatched tool call spent in the gateway itself (policy, filters, bookkeeping).",
            buckets=_OVERHEAD_BUCKETS,
            registry=reg,
        )
        self.reconnects = Counter(
            "mcpproxy_upstream_reconnects", "Connection attempts to a server after its first.", ["server"], registry=reg
        )
        self.policy = Counter(
            "mcpproxy_policy_decisions", "Policy decisions by check and action.", ["check", "action"], registry=reg
        )
        self.rate_limited = Counter("mcpproxy_rate_limited", "HTTP requests refused by a rate limit.", registry=reg)
        self.sandbox = Counter(
            "mcpproxy_sandbox_starts", "Sandboxed server starts by outcome.", ["outcome"], registry=reg
        )
        self.code = Counter("mcpproxy_code_executions", "Code executions by status.", ["status"], registry=reg)
        self.events = Counter("mcpproxy_events", "Operational events by kind and action.", ["kind", "action"],
                              registry=reg)
        ProcessCollector(registry=reg)
        reg.register(_LiveCollector(gateway, ops))
        self._connected_before: set[str] = set()

    # -- call observer -------------------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        entry = record.entry
        server, tool = (entry.server, entry.name) if entry is not None else ("-", "-")
        self.calls.labels(server, tool, record.status).inc()
        seconds = record.duration_ms / 1000.0
        self.duration.labels(server).observe(seconds)
        if record.upstream_ms is not None:
            upstream = record.upstream_ms / 1000.0
            self.upstream.labels(server).observe(upstream)
            self.overhead.observe(max(0.0, seconds - upstream))
        if record.status == "refused" and record.error is not None:
            check = _POLICY_ERRORS.get(getattr(record.error, "kind", ""))
            if check is not None:
                self.policy.labels(check, "deny").inc()

    # -- event listener ------------------------------------------------------------------

    def on_event(self, event: OpsEvent) -> None:
        self.events.labels(event.kind, event.action).inc()
        if event.kind in ("policy", "auth"):
            self.policy.labels(event.check or event.kind, event.action).inc()
        elif event.kind == "sandbox":
            self.sandbox.labels(event.action).inc()
        elif event.kind == "code":
            self.code.labels(event.action).inc()
        elif event.kind == "state" and event.server is not None and event.action == UpstreamState.CONNECTING.value:
            if event.server in self._connected_before:
                self.reconnects.labels(event.server).inc()
            self._connected_before.add(event.server)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Current values, read at scrape time."""

    def __init__(self, gateway: Gateway, ops: Operations) -> None:
        self.gw = gateway
        self.ops = ops

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        gauge: Callable[..., GaugeMetricFamily] = GaugeMetricFamily
        states = gauge("mcpproxy_upstream_state", "1 for each server's current state.", labels=["server", "state"])
        circuit = gauge("mcpproxy_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", labels=["server"])
        opens = gauge("mcpproxy_circuit_opens", "Times the circuit of a server opened.", labels=["server"])
        inflight = gauge("mcpproxy_upstream_calls_in_flight", "Calls running on a server.", labels=["server"])
        queued = gauge("mcpproxy_upstream_queue_depth", "Calls waiting for a slot on a server.", labels=["server"])
        refused = gauge(
            "mcpproxy_upstream_overload_refusals",
            "Calls refused as overloaded: a server's queue was full, or no slot came free in time.",
            labels=["server"],
        )
        statuses = self.gw.statuses()
        for status in statuses:
            for state in UpstreamState:
                states.add_metric([status.name, state.value], 1.0 if status.state is state else 0.0)
        present = {status.name for status in statuses}
        for name, guard in sorted(self.ops.guards.items()):
            if name not in present:
                continue  # a removed server
            circuit.add_metric([name], _CIRCUIT_VALUE[guard.breaker.state.value])
            opens.add_metric([name], float(guard.breaker.opens))
            inflight.add_metric([name], float(guard.limiter.running))
            queued.add_metric([name], float(guard.limiter.waiting))
            refused.add_metric([name], float(guard.limiter.refused))
        yield from (states, circuit, opens, inflight, queued, refused)
        yield gauge("mcpproxy_index_tools", "Tools in the search index.", value=float(len(self.gw.index)))
        yield gauge("mcpproxy_calls_in_flight", "Tool calls being served.", value=float(self.ops.inflight))
        yield gauge("mcpproxy_draining", "1 while shutting down.", value=1.0 if self.ops.draining else 0.0)
        recorder = self.ops.activity
        yield gauge("mcpproxy_activity_queue_depth", "Activity records waiting to be written.",
                    value=float(recorder.queued if recorder else 0))
        yield gauge("mcpproxy_activity_dropped",
                    "Activity records not written: the queue was full, or the database refused them.",
                    value=float(recorder.dropped if recorder else 0))
        yield gauge("mcpproxy_activity_written", "Activity records written.",
                    value=float(recorder.written if recorder else 0))
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:
            tasks = 0
        yield gauge("mcpproxy_event_loop_tasks", "Tasks alive in the event loop.", value=float(tasks))
        yield gauge("mcpproxy_threads", "Threads alive in the process.", value=float(threading.active_count()))
        info = gauge("mcpproxy_build_info", "mcpproxy's version.", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info
