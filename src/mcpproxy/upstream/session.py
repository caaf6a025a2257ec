"""One upstream server kept connected: the supervisor and its live session.

Design. Each upstream has one supervisor task (started by the pool) that loops for the
life of the gateway: connect (bounded by ``connect_timeout``), list the tools (every page),
report them, then wait until the session is lost, a re-list is asked for (the server sent
``tools/list_changed``), the health interval passes (a re-list that doubles as a liveness
check), or a restart is requested. A lost or failed session goes to ``backoff`` with a capped
exponential delay with jitter, then tries again; a restart skips the delay.

The session itself lives in its own task (``_hold``) inside a per-attempt task group, so
that the SDK client's task group and the connect timeout never interleave cancel scopes.
Cancelling that task group closes the client; the SDK then shuts a stdio server down
(close stdin, SIGTERM the process group, SIGKILL) in a shielded, bounded way.

Every call reuses the one live session; calls never open sessions of their own.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp import Client
from mcp.client._transport import TransportStreams
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpproxy import __version__
from mcpproxy.errors import UpstreamProtocolError, UpstreamUnavailable
from mcpproxy.observe.logfiles import rotate_if_larger
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.upstream import relay
from mcpproxy.upstream.base import CallOptions, ServerStatus, UpstreamState
from mcpproxy.upstream.errors import describe, is_connection_loss, map_upstream_errors, translate
from mcpproxy.upstream.isolation import IsolationPlan
from mcpproxy.upstream.streams import WatchedReadStream
from mcpproxy.upstream.transports import ProcessHooks, new_http_client, open_transport, resolve_references

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")
MAX_TOOL_PAGES = 1000
"""A hostile or broken server could hand out cursors forever; past this many pages we stop."""

ToolsCallback = Callable[[ServerStatus, list[types.Tool]], Awaitable[None]]
StateCallback = Callable[[ServerStatus], None]
NotificationCallback = Callable[[str, types.ServerNotification], Awaitable[None]]
"""Hears every other notification of an upstream (list changes, resource updates, logs)."""

_MODES: dict[str, str] = {"auto": "auto", "legacy": "legacy", "modern": types.LATEST_PROTOCOL_VERSION}


def server_log_path(log_dir: Path, name: str) -> Path:
    """The file a server's stderr (stdio) goes to."""
    return log_dir / f"upstream-{name}.log"


async def list_all_tools(client: Client, server: str) -> list[types.Tool]:
    """Every tool of ``server``, following ``nextCursor`` page by page."""

    async def page(cursor: str | None) -> tuple[list[types.Tool], str | None]:
        listed = await client.list_tools(cursor=cursor, cache_mode="bypass")
        return listed.tools, listed.next_cursor

    return await paginate(page, server=server, method="tools/list", items="tools", max_pages=MAX_TOOL_PAGES)


async def paginate(
    page: Callable[[str | None], Awaitable[tuple[list[_Item], str | None]]],
    *,
    server: str,
    method: str,
    items: str,
    max_pages: int,
) -> list[_Item]:
    """Every item of a paginated upstream list: ``page(cursor)`` until there is no next cursor;
    a repeated cursor or more than ``max_pages`` pages is the server's protocol error."""
    out: list[_Item] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        found, cursor = await page(cursor)
        out.extend(found)
        if not cursor:
            return out
        if cursor in seen:
            raise UpstreamProtocolError(f"server '{server}' repeated the {method} cursor {cursor!r}")
        seen.add(cursor)
    raise UpstreamProtocolError(f"server '{server}' listed more than {max_pages} pages of {items}")


class ManagedUpstream:
    """An upstream server with its supervisor, state and one reusable session.

    Args:
        spec: The server entry.
        settings: Global settings (timeouts, backoff).
        log_dir: Where the server's own log file goes.
        on_tools: Called with the status and the full tool list after every listing.
        on_state: Called on every state change (must not block).
        on_notification: Called with every other notification the server sends.
    """

    def __init__(
        self,
        spec: ServerSpec,
        settings: Settings,
        *,
        log_dir: Path,
        on_tools: ToolsCallback,
        on_state: StateCallback,
        on_notification: NotificationCallback | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self._log_dir = log_dir
        self._on_tools = on_tools
        self._on_state = on_state
        self._on_notification = on_notification
        self._status = ServerStatus(name=spec.name, transport=spec.transport)
        self._client: Client | None = None
        self._poke = anyio.Event()
        self._relist_requested = False
        self._restart_requested = False
        self._lost_reason: str | None = None
        self._exit_reason: str | None = None
        self._scope: anyio.CancelScope | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def status(self) -> ServerStatus:
        return self._status

    # -- control, called by the pool ------------------------------------------------------

    def request_restart(self, spec: ServerSpec | None = None) -> None:
        """Reconnect now (with a new spec if given), skipping any backoff delay."""
        if spec is not None:
            self.spec = spec
            self._status.transport = spec.transport
        self._restart_requested = True
        self._poke.set()

    def request_relist(self) -> None:
        self._relist_requested = True
        self._poke.set()

    def stop(self) -> None:
        """Cancel the supervisor; its session closes on the way out."""
        if self._scope is not None:
            self._scope.cancel()

    # -- calls -----------------------------------------------------------------------------

    def live_client(self) -> Client:
        """The live session's client, for requests other than tool calls.

        Raises:
            UpstreamUnavailable: The server is not ready.
        """
        client = self._client
        if client is None or self._status.state is not UpstreamState.READY:
            raise self._unavailable()
        return client

    def lost(self, reason: str) -> None:
        """Tell the supervisor the session is gone (a request failed with a connection loss)."""
        self._mark_lost(reason)

    async def call_tool(self, tool: str, arguments: Mapping[str, Any], options: CallOptions) -> types.CallToolResult:
        """Call ``tool`` through the live session.

        Raises:
            UpstreamUnavailable: The server is not ready (its state and reason are in the message).
            UpstreamTimeout: No answer within ``options.timeout``.
            UpstreamError: The server answered with a JSON-RPC error.
        """
        client = self._client
        if client is None or self._status.state is not UpstreamState.READY:
            raise self._unavailable()
        target = relay.relay_target.get()
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        meta: types.RequestParamsMeta | None = relay.upstream_meta(  # type: ignore[assignment]
            target, modern_upstream=modern, base=dict(options.meta) if options.meta else None
        )
        progress = target.progress_callback() if target is not None else None
        result: types.CallToolResult | types.InputRequiredResult | types.Result
        try:
            with (
                relay.tracking(self.name),
                map_upstream_errors(self.name, timeout=options.timeout),
                anyio.fail_after(options.timeout),
            ):
                if (
                    target is not None
                    and target.link.modern
                    and not modern
                    and target.input_relay is not None
                    and (target.request_state is not None or target.link.may_give_input())
                ):
                    # A stateless-era client, a handshake-era upstream that may ask it for input:
                    # those requests become input_required (``upstream.inputs``).
                    result = await target.input_relay.call(self.name, client, tool, arguments, target, meta=meta)
                elif target is not None and target.link.modern:
                    # A stateless-era client retries by itself: input_required goes back untouched.
                    result = await client.session.call_tool(
                        tool,
                        dict(arguments),
                        progress_callback=progress,
                        input_responses=target.input_responses,
                        request_state=target.request_state,
                        meta=meta,
                        allow_input_required=True,
                    )
                    if isinstance(result, types.InputRequiredResult):
                        raise relay.InputRequiredRelay(result)
                else:
                    # A handshake-era client (or none): input requests are asked of it by the relay.
                    result = await client.call_tool(tool, dict(arguments), progress_callback=progress, meta=meta)
        except UpstreamUnavailable as exc:
            if self._exit_reason is not None:  # the process died: say why, not "connection closed"
                exc = UpstreamUnavailable(
                    f"server '{self.name}' stopped: {self._exit_reason}", hint=exc.hint, data=exc.data
                )
            elif self._request_stream_only(exc):
                # Over HTTP one request's response stream ended early: the session, and every other
                # call on it, goes on (a transport that really ended is noticed by its read stream).
                raise
            self._mark_lost(exc.message)
            raise exc from None
        if not isinstance(result, types.CallToolResult):
            raise UpstreamProtocolError(f"server '{self.name}' answered tools/call with {type(result).__name__}")
        return result

    def _request_stream_only(self, exc: UpstreamUnavailable) -> bool:
        """Whether ``exc`` is one HTTP request's stream ending without its response, on a live session."""
        cause = exc.__cause__
        return (
            self.spec.transport == "http"
            and self._lost_reason is None
            and isinstance(cause, MCPError)
            and cause.code == types.CONNECTION_CLOSED
        )

    def _unavailable(self) -> UpstreamUnavailable:
        st = self._status
        reason = f": {st.error}" if st.error else ""
        if st.state is UpstreamState.DISABLED:
            hint = f"enable it with `mcpproxy upstream enable {self.name}`"
        elif st.state is UpstreamState.BACKOFF and st.retry_at is not None:
            hint = (
                f"next attempt in {max(0.0, st.retry_at - time.time()):.0f} s; see `mcpproxy upstream logs {self.name}`"
            )
        else:
            hint = "retry in a moment; `mcpproxy upstream list` shows its state"
        return UpstreamUnavailable(
            f"server '{self.name}' is {st.state.value}{reason}", hint=hint, data={"server": self.name}
        )

    def _mark_lost(self, reason: str) -> None:
        if self._lost_reason is None:
            self._lost_reason = reason
        self._poke.set()

    # -- supervisor ------------------------------------------------------------------------

    def _set_state(self, state: UpstreamState, *, error: str | None = None) -> None:
        st = self._status
        st.state = state
        st.error = error
        if state is not UpstreamState.BACKOFF:
            st.retry_at = None
        if state is not UpstreamState.READY:
            st.connected_at = None
        self._on_state(st)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Supervise the server until cancelled (see the module docstring)."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            while True:
                self._restart_requested = False
                if not self.spec.enabled:
                    self._set_state(UpstreamState.DISABLED)
                    await self._wait_poke()
                    self._status.attempts = 0
                    continue
                reason = await self._attempt()
                if self._restart_requested:
                    self._status.attempts = 0
                    continue
                self._status.attempts += 1
                delay = self._backoff_delay(self._status.attempts)
                self._set_state(UpstreamState.ERROR, error=reason)
                self._status.retry_at = time.time() + delay
                self._set_state(UpstreamState.BACKOFF, error=reason)
                logger.warning("upstream %s: %s; retrying in %.1f s", self.name, reason, delay)
                with anyio.move_on_after(delay):
                    while not self._restart_requested:
                        await self._wait_poke()

    def _backoff_delay(self, attempts: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_initial * 2.0 ** (attempts - 1))
        return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography

    async def _wait_poke(self) -> None:
        await self._poke.wait()
        self._poke = anyio.Event()

    async def _attempt(self) -> str:
        """One connection attempt and the life of its session; returns why it ended."""
        self._lost_reason = None
        self._exit_reason = None
        self._relist_requested = False
        # Reconnecting after a failure keeps its reason on show until this attempt ends; a fresh
        # start (first attempt, restart, re-enable) has none.
        st = self._status
        self._set_state(UpstreamState.CONNECTING, error=st.error if st.attempts else None)
        connect_timeout = self.settings.connect_timeout_for(self.spec)
        try:
            async with anyio.create_task_group() as tg:
                # A restart (or a new spec, or disable) must not wait for a hanging connect.
                connecting = anyio.CancelScope()
                tg.start_soon(self._cancel_on_restart, connecting, tg.cancel_scope)
                try:
                    with anyio.fail_after(connect_timeout):
                        client, tools = await tg.start(self._hold)
                except TimeoutError:
                    tg.cancel_scope.cancel()
                    return f"no answer within {connect_timeout:g} s while connecting"
                finally:
                    connecting.cancel()
                self._client = client
                await self._became_ready(client, tools)
                try:
                    await self._serve(client)
                finally:
                    self._client = None
                    tg.cancel_scope.cancel()
        except Exception as exc:
            if self._lost_reason is None:
                self._lost_reason = describe(exc)
            logger.debug("upstream %s session ended", self.name, exc_info=True)
        finally:
            self._client = None
        return self._lost_reason or "session ended"

    async def _cancel_on_restart(self, connecting: anyio.CancelScope, attempt: anyio.CancelScope) -> None:
        """While connecting, cancel the attempt as soon as a restart is requested."""
        with connecting:
            while not self._restart_requested:
                await self._wait_poke()
            attempt.cancel()

    async def _became_ready(self, client: Client, tools: list[types.Tool]) -> None:
        st = self._status
        info = client.server_info
        st.protocol_version = client.protocol_version
        st.server_name = info.name if info else None
        st.server_version = info.version if info else None
        st.instructions = client.instructions
        st.tool_count = len(tools)
        st.attempts = 0
        # Tools are pinned, scanned and indexed before the server counts as ready.
        await self._on_tools(st, tools)
        self._set_state(UpstreamState.READY)
        st.connected_at = time.time()
        logger.info("upstream %s ready (%s, %d tools)", self.name, st.protocol_version, len(tools))

    async def _serve(self, client: Client) -> None:
        """Wait for loss, re-list requests and health checks until the session ends."""
        while True:
            with anyio.move_on_after(self.settings.health_interval) as timer:
                while not (self._lost_reason or self._restart_requested or self._relist_requested):
                    await self._wait_poke()
            if self._lost_reason or self._restart_requested:
                return
            if self._relist_requested or timer.cancelled_caught:
                self._relist_requested = False
                await self._relist(client)

    async def _relist(self, client: Client) -> None:
        timeout = self.settings.connect_timeout_for(self.spec)
        try:
            with map_upstream_errors(self.name, timeout=timeout), anyio.fail_after(timeout):
                tools = await list_all_tools(client, self.name)
        except UpstreamUnavailable as exc:
            self._mark_lost(exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a failed health check ends the session, whatever it was
            self._mark_lost(f"health check failed: {describe(exc)}")
            return
        self._status.tool_count = len(tools)
        await self._on_tools(self._status, tools)

    async def _hold(self, *, task_status: TaskStatus[tuple[Client, list[types.Tool]]]) -> None:
        """Open the session, list the tools, hand both over, then keep the session open."""
        async with AsyncExitStack() as stack:
            errlog = stack.enter_context(self._open_errlog())
            # Secret references resolved for this connection only; ``spec`` is never stored.
            spec = await anyio.to_thread.run_sync(resolve_references, self.spec, self.settings.data_path)
            http_client = None
            if spec.transport == "http":
                http_client = await stack.enter_async_context(
                    new_http_client(
                        spec,
                        connect_timeout=self.settings.connect_timeout_for(self.spec),
                        lean=self.settings.upstream_http_transport == "lean",
                    )
                )
            transport = open_transport(
                spec,
                connect_timeout=self.settings.connect_timeout_for(self.spec),
                errlog=errlog,
                http_client=http_client,
                process=ProcessHooks(self.settings, self._on_isolation, self._on_process_exit),
            )
            upstream_relay = relay.UpstreamRelay(self.name, self.settings.call_timeout_for(self.spec))
            client = Client(
                self._watched(transport),
                mode=_MODES[self.spec.protocol],
                client_info=types.Implementation(name="mcpproxy", version=__version__),
                message_handler=self._on_message,
                sampling_callback=upstream_relay.sampling,
                elicitation_callback=upstream_relay.elicitation,
                list_roots_callback=upstream_relay.roots,
                cache=None,
            )
            try:
                await stack.enter_async_context(client)
                tools = await list_all_tools(client, self.name)
            except MCPError as exc:
                raise translate(self.name, exc) from exc
            task_status.started((client, tools))
            await anyio.sleep_forever()

    def _on_isolation(self, plan: IsolationPlan) -> None:
        self._status.isolation = plan.summary

    def _on_process_exit(self, reason: str) -> None:
        """The stdio server's process ended by itself: its reason wins over "connection closed"."""
        self._exit_reason = reason
        self._lost_reason = reason
        self._poke.set()

    def _open_errlog(self) -> TextIO:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        path = server_log_path(self._log_dir, self.name)
        rotate_if_larger(path, self.settings.log_max_bytes, self.settings.log_backups)  # before the server writes
        return path.open("a", encoding="utf-8")

    @asynccontextmanager
    async def _watched(
        self, transport: AbstractAsyncContextManager[TransportStreams]
    ) -> AsyncIterator[TransportStreams]:
        async with transport as (read_stream, write_stream):
            yield (
                WatchedReadStream(read_stream, lambda: self._mark_lost("connection closed by the server")),
                write_stream,
            )

    async def _on_message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            logger.info("upstream %s: tools changed, re-listing", self.name)
            self.request_relist()
            if self._on_notification is not None:
                await self._on_notification(self.name, message)
        elif isinstance(message, Exception):
            logger.debug("upstream %s transport error: %s", self.name, describe(message))
            if is_connection_loss(message):
                self._mark_lost(describe(message))
        elif self._on_notification is not None:
            await self._on_notification(self.name, message)
