"""The operations layer of one gateway: guards around upstream calls, draining, and wiring.

``Operations(gateway)`` is created with the gateway and registers itself: the metrics as a call
observer and event listener, a state listener that turns server state changes into events, and
(once the store is open, in :meth:`Operations.running`) the activity recorder with its writer and
retention tasks. The gateway's ``_dispatch`` sends every upstream call through
:meth:`Operations.call`, which in order:

1. refuses at once while the gateway drains (shutting down);
2. asks the server's circuit breaker (fails fast with ``CircuitOpen`` while open);
3. takes a slot of the server's concurrency limiter (bounded queue; ``Overloaded`` past it);
4. runs the call in a cancel scope the drain can cancel (the caller then gets a clear
   ``Overloaded`` error saying the gateway is shutting down), inside a tracing span when
   tracing is on;
5. tells the breaker how it went: a timeout, a lost connection or a protocol error is a
   failure; an answer (even a JSON-RPC error or ``isError``) is a success; a timeout the caller
   set shorter than the server's own (``CallOptions.caller_limited``) is neither, so no client
   can open a server's circuit for everyone by asking for too little time.

Draining (``begin_drain`` on SIGTERM/SIGINT, ``drain`` from the gateway's close): new calls
are refused, calls in flight get ``shutdown_grace`` seconds to finish, the rest are cancelled
with an error; then the gateway closes the upstreams and the activity recorder flushes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import mcp_types as types
from anyio.abc import TaskGroup

from mcpproxy.errors import CircuitOpen, Overloaded, UpstreamError, UpstreamTimeout
from mcpproxy.observe.activity import ActivityRecorder
from mcpproxy.observe.events import OpsEvent
from mcpproxy.observe.logfiles import CHECK_INTERVAL, rotate_server_logs
from mcpproxy.observe.metrics import GatewayMetrics
from mcpproxy.store.activity import ActivityStore
from mcpproxy.store.db import Store
from mcpproxy.upstream.base import CallOptions, ServerStatus, UpstreamState
from mcpproxy.upstream.limits import CircuitBreaker, ConcurrencyLimiter, TokenBuckets

if TYPE_CHECKING:
    from mcpproxy.gateway import Gateway
    from mcpproxy.observe.tracing import CallTracer
    from mcpproxy.routing.catalog import ToolEntry
    from mcpproxy.upstream.session import ManagedUpstream

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

CANCEL_WAIT = 5.0
"""Seconds to wait for cancelled calls to unwind after the grace period."""


@dataclass(slots=True)
class ServerGuard:
    """The limiter and breaker of one server."""

    limiter: ConcurrencyLimiter
    breaker: CircuitBreaker


class Operations:
    """Guards, drain, metrics and activity for ``gateway`` (see the module docstring)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.guards: dict[str, ServerGuard] = {}
        self.inflight = 0
        self.draining = False
        self._scopes: set[anyio.CancelScope] = set()
        self._idle = anyio.Event()
        self._last_state: dict[str, UpstreamState] = {}
        self.activity: ActivityRecorder | None = None
        self.tracer: CallTracer | None = None
        self.metrics = GatewayMetrics(gateway, self)
        settings = gateway.settings
        self.buckets: TokenBuckets | None = (
            TokenBuckets(settings.rate_limit, settings.rate_limit_burst) if settings.rate_limit > 0 else None
        )
        gateway.observers.append(self.metrics)
        gateway.event_listeners.append(self.metrics.on_event)
        gateway.state_listeners.append(self._on_state)
        if settings.otlp_endpoint:
            from mcpproxy.observe.tracing import CallTracer

            self.tracer = CallTracer.from_settings(settings)
            gateway.observers.append(self.tracer)

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, store: Store, tg: TaskGroup) -> AsyncIterator[None]:
        """Start the activity recorder (writer and retention) on ``store``; flush it on the way out."""
        settings = self.gw.settings
        recorder = ActivityRecorder(
            ActivityStore(store),
            retention_days=settings.activity_retention_days,
            max_records=settings.activity_max_records,
        )
        self.activity = recorder
        self.gw.observers.insert(0, recorder)
        self.gw.event_listeners.append(recorder.on_event)
        tg.start_soon(recorder.run)
        tg.start_soon(recorder.prune_forever)
        tg.start_soon(self._rotate_logs_forever)
        try:
            yield
        finally:
            await self.drain()
            await recorder.close()
            if self.tracer is not None:
                self.tracer.shutdown()

    async def _rotate_logs_forever(self) -> None:
        while True:
            await anyio.sleep(CHECK_INTERVAL)
            s = self.gw.settings
            rotated = await anyio.to_thread.run_sync(
                rotate_server_logs, self.gw.log_dir, s.log_max_bytes, s.log_backups
            )
            if rotated:
                logger.info("rotated server logs: %s", ", ".join(rotated))

    # -- the call path -----------------------------------------------------------------------

    def guard(self, server: str) -> ServerGuard:
        guard = self.guards.get(server)
        if guard is None:
            s = self.gw.settings
            guard = ServerGuard(
                ConcurrencyLimiter(server, s.max_concurrent_calls, s.max_queued_calls),
                CircuitBreaker(server, s.breaker_failures, s.breaker_cooldown),
            )
            self.guards[server] = guard
        return guard

    async def call(
        self, upstream: ManagedUpstream, entry: ToolEntry, args: Mapping[str, Any], options: CallOptions
    ) -> types.CallToolResult:
        """One upstream call through the guards (see the module docstring)."""

        async def send() -> types.CallToolResult:
            if self.tracer is not None:
                with self.tracer.upstream_span(entry):
                    return await upstream.call_tool(entry.name, args, options)
            return await upstream.call_tool(entry.name, args, options)

        return await self.guarded(upstream, entry, options, send)

    async def guarded(
        self, upstream: ManagedUpstream, entry: ToolEntry, options: CallOptions, send: Callable[[], Awaitable[_T]]
    ) -> _T:
        """``send()`` (a request to ``upstream`` for ``entry``) through the server's guards: refused
        while draining, the concurrency limit and its queue, the circuit breaker; counted in flight
        so a shutdown waits for it."""
        if self.draining:
            raise Overloaded(
                "mcpproxy is shutting down and takes no new calls",
                hint="retry in a moment, against the restarted gateway",
            )
        guard = self.guard(entry.server)
        counted = upstream.status.state is UpstreamState.READY
        probe = guard.breaker.before_call() if counted else False
        verdict: bool | None = None
        answered = False
        result: Any = None
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            self.inflight += 1
            try:
                async with guard.limiter.slot(options.timeout):
                    result = await send()
                    answered = True
                verdict = True
            except CircuitOpen:
                raise
            except UpstreamError as exc:
                if isinstance(exc, UpstreamTimeout) and options.caller_limited:
                    raise  # the caller's own short limit ran out: no verdict on the server
                verdict = "upstream_code" in exc.data  # the server answered: it is alive
                raise
            finally:
                self._left(scope)
                if not counted or verdict is None:
                    guard.breaker.abandoned(probe)
                elif verdict:
                    guard.breaker.succeeded(probe)
                else:
                    opens = guard.breaker.opens
                    guard.breaker.failed(probe)
                    if guard.breaker.opens > opens:
                        self._breaker_opened(entry.server, guard.breaker)
        if not answered:
            raise Overloaded(
                f"the call to '{entry.key}' was cancelled: mcpproxy is shutting down",
                hint="retry against the restarted gateway",
                data={"server": entry.server},
            )
        return cast("_T", result)

    def _left(self, scope: anyio.CancelScope) -> None:
        self.inflight -= 1
        self._scopes.discard(scope)
        if self.draining and self.inflight == 0:
            self._idle.set()

    def _breaker_opened(self, server: str, breaker: CircuitBreaker) -> None:
        logger.warning("circuit of server %s opened after %d failures in a row", server, breaker.failures)
        self.gw.record_event(
            OpsEvent(kind="state", action="circuit_open", server=server,
                     message=f"{breaker.failures} failures in a row", detail={"cooldown": breaker.cooldown})
        )

    # -- client rate limits ------------------------------------------------------------------

    def rate_check(self, key: str) -> float:
        """0.0 when ``key`` may send a request now, else the seconds to wait."""
        if self.buckets is None:
            return 0.0
        wait = self.buckets.take(key)
        if wait > 0:
            self.metrics.rate_limited.inc()
        return wait

    # -- server states -----------------------------------------------------------------------

    def _on_state(self, status: ServerStatus) -> None:
        previous = self._last_state.get(status.name)
        if previous is status.state:
            return
        self._last_state[status.name] = status.state
        if status.state is UpstreamState.READY:
            guard = self.guards.get(status.name)
            if guard is not None:
                guard.breaker.reset()
        self.gw.record_event(
            OpsEvent(
                kind="state",
                action=status.state.value,
                server=status.name,
                message=status.error,
                detail={"previous": previous.value} if previous is not None else {},
                request_id=None,
                client=None,
                token=None,
            )
        )

    # -- draining ----------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Refuse new calls from now on (idempotent)."""
        if not self.draining:
            self.draining = True
            logger.info("draining: %d calls in flight get %g s to finish", self.inflight,
                        self.gw.settings.shutdown_grace)
            if self.inflight == 0:
                self._idle.set()

    async def drain(self) -> None:
        """Refuse new calls, give those in flight ``shutdown_grace`` seconds, cancel the rest."""
        self.begin_drain()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.gw.settings.shutdown_grace):
                await self._idle.wait()
            if self.inflight:
                logger.warning("draining: cancelling %d calls still in flight", self.inflight)
                for scope in list(self._scopes):
                    scope.cancel()
                with anyio.move_on_after(CANCEL_WAIT):
                    await self._idle.wait()

    def health(self, server: str) -> dict[str, Any]:
        """The guard's view of a server for status pages."""
        guard = self.guards.get(server)
        if guard is None:
            return {"circuit": "closed", "in_flight": 0, "queued": 0}
        return {
            "circuit": guard.breaker.state.value,
            "in_flight": guard.limiter.running,
            "queued": guard.limiter.waiting,
            "failures_in_a_row": guard.breaker.failures,
        }
