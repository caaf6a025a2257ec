"""The composition root: one gateway owns the store, the pool, the catalog and the index.

``Gateway.call_tool`` is the one pipeline every tool call goes through, whoever makes it
(the MCP proxy tools, direct mode, the REST API, later code execution)::

    route (catalog) -> policy (tier, arguments) -> upstream (live session) -> filters (truncate)

Each step raises a ``ProxyError`` to stop the chain; nothing is signalled with flags.

Lifecycle: ``async with Gateway(settings, config_path=...) as gw`` opens the data dir and
the SQLite store, rebuilds the search index from the last known tool lists (so search works
at once after a restart, before servers reconnect), starts every server in parallel
(returning before any of them is connected), and watches the config file. Leaving the
block stops the watcher, closes every upstream session and flushes the store.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcpproxy.config.loader import load_settings
from mcpproxy.config.watch import ConfigWatcher
from mcpproxy.endpoints.auth import check_token, new_token, token_allows
from mcpproxy.errors import (
    ConfigError,
    Conflict,
    InvalidArguments,
    NotFound,
    PolicyDenied,
    ProxyError,
    UnknownServer,
    UnknownTool,
)
from mcpproxy.filters.shield import shield_result
from mcpproxy.filters.truncate import Page, ResponseCache, truncate_result
from mcpproxy.observe.events import OpsEvent, new_id
from mcpproxy.observe.ops import Operations
from mcpproxy.policy.arguments import validate_arguments
from mcpproxy.policy.security import Decision, SecurityPolicy
from mcpproxy.policy.tiers import check_tier
from mcpproxy.routing.catalog import Catalog, Tier, ToolEntry
from mcpproxy.search.base import ToolDoc
from mcpproxy.search.engine import ToolSearch
from mcpproxy.search.service import SearchService, server_context
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.state import StateService
from mcpproxy.store.db import Store
from mcpproxy.store.security import AgentToken, SecurityStore
from mcpproxy.store.tools import ToolStore
from mcpproxy.upstream.base import CallOptions, ServerStatus, UpstreamState
from mcpproxy.upstream.inputs import InputRelay
from mcpproxy.upstream.pool import UpstreamPool
from mcpproxy.upstream.relay import InputRequiredRelay
from mcpproxy.upstream.session import ManagedUpstream, server_log_path

logger = logging.getLogger(__name__)

STATS_BUFFER = 10_000
"""Call statistics wait here for the store's writer; past this the newest are dropped, never the call."""

DB_FILE_NAME = "mcpproxy.db"

_Started = TypeVar("_Started")


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling, and how.

    Attributes:
        via: ``mcp``, ``mcp-direct``, ``rest``, ``stdio`` (later ``code``).
        tier: The tier the caller asked for (``None``: no tier check, e.g. direct mode).
        client: Client name or address, when known.
        request_id: Correlation id of the call.
        meta: ``_meta`` to pass upstream (trace context).
        token: The agent token the caller presented (``None``: the API key or no auth).
        events: Policy decisions taken on this call (redactions, ...), for the activity log.
        parent_id: The call this one is made from (calls from code); ``None``: the call in
            progress in this task, if any.
        timeout: Seconds the caller allows this call: it shortens the server's ``call_timeout``,
            never lengthens it (``None``: the server's).
    """

    via: str
    tier: Tier | None = None
    client: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    meta: Mapping[str, Any] | None = None
    token: AgentToken | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    parent_id: str | None = None
    timeout: float | None = None


def positive_seconds(value: object, field: str, hint: str | None = None) -> float | None:
    """A duration a caller gave in a request body (``None`` when not given).

    JSON allows what no duration is: ``true`` (a number to Python), ``NaN`` and ``Infinity``
    (Python's parser reads them, and ``1e999`` as infinity), which would give a token without
    end or a response that cannot be serialised, and an integer too large for a float.

    Raises:
        InvalidArguments: Not a finite, positive number of seconds.
    """
    if value is None:
        return None
    try:
        seconds = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer of hundreds of digits
        seconds = math.inf
    if not 0 < seconds < math.inf:
        raise InvalidArguments(f"'{field}' must be a positive number of seconds", hint=hint)
    return seconds


def caller_timeout(value: object) -> float | None:
    """A call's own ``timeout`` as a caller gave it (seconds; ``None`` when not given).

    Raises:
        InvalidArguments: Not a positive number of seconds.
    """
    return positive_seconds(
        value, "timeout", hint="it can shorten the server's call_timeout for this call, not lengthen it"
    )


@dataclass(slots=True)
class CallRecord:
    """One tool call as observers see it (activity log, metrics, tracing).

    Attributes:
        name: The tool name as the caller gave it.
        arguments: The arguments as the caller gave them (observers redact before storing).
        ctx: Who called, and how.
        entry: The resolved tool, once routing succeeded.
        status: ``running``, then ``ok``, ``error`` (the tool said isError), ``input_required``
            (a stateless-era client must answer the server's questions and call again),
            ``refused`` (a gateway error before or after dispatch) or ``failed`` (anything else).
        error: The error, when there was one.
        result: The result returned to the caller, when there was one.
        started: ``time.time()`` at the start.
        duration_ms: Whole time in the gateway, upstream included.
        upstream_ms: Time spent waiting for the upstream.
        id: The call's id (time-ordered hex): its activity record, and the parent of calls made from it.
        parent_id: The call this one was made from, if any.
    """

    name: str
    arguments: dict[str, Any]
    ctx: CallContext
    entry: ToolEntry | None = None
    status: str = "running"
    error: BaseException | None = None
    result: types.CallToolResult | None = None
    started: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    upstream_ms: float | None = None
    id: str = field(default_factory=new_id)
    parent_id: str | None = None
    _t0: float = field(default_factory=time.perf_counter)

    def finish(self, *, result: types.CallToolResult | None = None, error: BaseException | None = None) -> None:
        self.duration_ms = (time.perf_counter() - self._t0) * 1000
        self.result = result
        self.error = error
        if error is None:
            self.status = "error" if result is not None and result.is_error else "ok"
        elif isinstance(error, InputRequiredRelay):
            self.status = "input_required"
        else:
            self.status = "refused" if isinstance(error, ProxyError) else "failed"


class CallObserver(Protocol):
    """Hears of every call; must be quick and must not raise (failures are logged, not propagated)."""

    def call_started(self, record: CallRecord) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class SearchResult:
    entry: ToolEntry
    score: float
    why: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    read_only_only: bool = False
    exclude_destructive: bool = False
    exclude_open_world: bool = False
    servers: frozenset[str] | None = None
    max_tier: Tier | None = None

    @classmethod
    def for_token(
        cls,
        token: AgentToken | None,
        *,
        read_only_only: bool = False,
        exclude_destructive: bool = False,
        exclude_open_world: bool = False,
    ) -> SearchFilters:
        """Filters that also keep a token's caller to its servers and tier."""
        servers = frozenset(token.servers) if token is not None and token.servers is not None else None
        return cls(
            read_only_only=read_only_only,
            exclude_destructive=exclude_destructive,
            exclude_open_world=exclude_open_world,
            servers=servers,
            max_tier=Tier[token.tier.upper()] if token is not None else None,
        )

    def allows(self, entry: ToolEntry) -> bool:
        if self.servers is not None and entry.server not in self.servers:
            return False
        if self.max_tier is not None and entry.tier > self.max_tier:
            return False
        if self.read_only_only and entry.tier is not Tier.READ:
            return False
        if self.exclude_destructive and entry.tier is Tier.DESTRUCTIVE:
            return False
        ann = entry.tool.annotations
        # The spec's default for openWorldHint is true.
        return not (self.exclude_open_world and (ann is None or ann.open_world_hint is not False))


def tool_doc(server: str, tool: types.Tool) -> ToolDoc:
    ann = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
    return ToolDoc(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema or {}),
        title=tool.title,
        annotations=ann,
    )


ChangeListener = Callable[[], None]

FeatureCheck = Callable[[str, str, "CallContext"], None]
"""A policy step before a resources, prompts or completion request ``(server, method, ctx)`` goes
upstream: returns to let it proceed, raises a ``ProxyError`` to refuse."""

NotificationListener = Callable[[str, types.ServerNotification], Awaitable[None]]

Check = Callable[[ToolEntry, dict[str, Any], "CallContext"], None]
"""A policy step before dispatch: returns to let the call proceed, raises a ``ProxyError`` to refuse."""

Filter = Callable[[ToolEntry, types.CallToolResult, "CallContext"], types.CallToolResult]
"""A step on the result, in order: returns the (possibly changed) result."""


def _check_token_server(server: str, method: str, ctx: CallContext) -> None:
    token = ctx.token
    if token is not None and token.servers is not None and server not in token.servers:
        raise PolicyDenied(
            f"this agent token may not use server '{server}'",
            hint=f"the token is limited to: {', '.join(token.servers)}",
            data={"server": server, "token": token.name},
        )


def _check_tier(entry: ToolEntry, args: dict[str, Any], ctx: CallContext) -> None:
    check_tier(entry, ctx.tier)


def _check_arguments(entry: ToolEntry, args: dict[str, Any], ctx: CallContext) -> None:
    validate_arguments(entry, args)


class Gateway:
    """The running gateway.

    Args:
        settings: Validated settings.
        config_path: The config file to persist changes to and watch (``None``: neither).
        watch_config: Whether to reload the config file when it is edited.
    """

    def __init__(self, settings: Settings, *, config_path: Path | None = None, watch_config: bool = True) -> None:
        self.settings = settings
        self.config_path = config_path
        self.data_dir = settings.data_path
        self.log_dir = self.data_dir / "logs"
        self.catalog = Catalog()
        self.index = ToolSearch()
        self.searcher = SearchService(self.index)
        self.cache = ResponseCache()
        self.started_at = time.time()
        self._watch = watch_config and config_path is not None
        self._watcher: ConfigWatcher | None = None
        self._listeners: list[ChangeListener] = []
        self._attempted: set[str] = set()
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._stats_send: MemoryObjectSendStream[tuple[str, str, bool, float]] | None = None
        self._store: Store | None = None
        self._tools: ToolStore | None = None
        self._pool: UpstreamPool | None = None
        self.last_config_error: ConfigError | None = None
        self.entered = anyio.Event()
        self.fatal: BaseException | None = None
        """Why the gateway stopped while it was serving (a background task failed), set by the app's
        lifespan; the HTTP server then stops too, and ``serve`` exits with an error for a supervisor
        to restart it, instead of answering every request 503 from a gateway that is gone."""
        self._state_changed = anyio.Event()
        self.checks: list[Check] = [_check_tier, _check_arguments]
        self.observers: list[CallObserver] = []
        self.filters: list[Filter] = [self._shield, self._truncate]
        self.visibility: list[Callable[[ToolEntry], bool]] = []
        # Resources, prompts and completions (see ``feature_upstream``).
        self.server_visibility: list[Callable[[str], bool]] = []
        self.feature_checks: list[FeatureCheck] = []
        self.state_listeners: list[Callable[[ServerStatus], None]] = []
        # Policy decisions, state changes, auth failures... (``record_event``): activity log, metrics.
        self.event_listeners: list[Callable[[OpsEvent], None]] = []
        self.notification_listeners: list[NotificationListener] = []
        self.state = StateService(settings, config_path, on_change=self._apply_servers, expect_write=self._expect_write)
        # Stateless-era clients' calls to handshake-era servers that ask for input (upstream.inputs).
        self.input_relay = InputRelay(settings.input_relay_timeout, settings.input_relay_max_pending)
        self.ops = Operations(self)

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._store = await stack.enter_async_context(Store(self.data_dir / DB_FILE_NAME))
            self._tools = ToolStore(self._store)
            self.searcher = SearchService(
                self.index, mode=self.settings.search_mode, usage_boost=self.settings.search_usage_boost
            )
            await self.searcher.open(self._store)
            if self.searcher.usage is not None:
                self.observers.append(self.searcher)
            self._security_store = SecurityStore(self._store)
            self.security = SecurityPolicy(self._security_store, self.settings)
            await self.security.load()
            self._tokens = {t.token_hash: t for t in await self._security_store.tokens()}
            self.visibility.insert(0, self.security.visible)
            self.checks.insert(0, self.security.check)
            self.checks.insert(1, check_token)
            # Quarantined servers' resources and prompts are hidden too; a token keeps to its servers.
            self.server_visibility.append(lambda server: self.security.server_status(server) == "approved")
            self.feature_checks.append(_check_token_server)
            first_decisions = [
                await self.security.on_server_added(spec.name, self.settings.trust_for(spec))
                for spec in self.settings.servers.values()
            ]
            await self._load_snapshots()
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._tg.cancel_scope.cancel)
            self.searcher.start(self._tg)
            send, receive = anyio.create_memory_object_stream[tuple[str, str, bool, float]](STATS_BUFFER)
            self._stats_send = send
            self._tg.start_soon(self._write_stats, receive)
            self._pool = await stack.enter_async_context(
                UpstreamPool(
                    self.settings,
                    log_dir=self.log_dir,
                    on_tools=self._on_tools,
                    on_state=self._on_state,
                    on_notification=self._on_upstream_notification,
                )
            )
            await stack.enter_async_context(self.input_relay.running())  # closed before the pool
            # Activity log, limits, drain: closed before the pool, so calls in flight can finish.
            await stack.enter_async_context(self.ops.running(self._store, self._tg))
            self._record_decisions(first_decisions)  # now that the activity log listens
            for spec in self.settings.servers.values():
                await self._pool.start(spec)
            if self._watch:
                assert self.config_path is not None
                self._watcher = ConfigWatcher(
                    self.config_path, self._on_config_change, self._on_config_error, load=self._reload_settings
                )
                await self._tg.start(self._watcher.run)
            self._stack = stack.pop_all()
        self.entered.set()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        if self._stats_send is not None:
            self._stats_send.close()
        if stack is not None:
            await stack.aclose()

    @property
    def pool(self) -> UpstreamPool:
        if self._pool is None:
            raise RuntimeError("the gateway is not running")
        return self._pool

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the gateway is not running")
        return self._store

    @property
    def tool_store(self) -> ToolStore:
        if self._tools is None:
            raise RuntimeError("the gateway is not running")
        return self._tools

    # -- the pipeline -----------------------------------------------------------------------

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None, ctx: CallContext) -> types.CallToolResult:
        """Route, police, call and filter one tool call (see the module docstring).

        The steps are data: ``self.checks`` run in order before dispatch (each raises a
        ``ProxyError`` to refuse), ``self.filters`` run in order on the result, and every
        ``self.observers`` hears of the call's start and end (activity log, metrics). Later
        layers add their step to these lists; nothing else in the call path changes.
        """
        record = CallRecord(name=name, arguments=dict(arguments or {}), ctx=ctx)
        self._observe("call_started", record)
        try:
            record.entry = entry = self.resolve(name)
            args = record.arguments
            for check in self.checks:
                check(entry, args, ctx)
            upstream_started = time.perf_counter()
            result = await self._dispatch(entry, args, ctx)
            record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
            for step in self.filters:
                result = step(entry, result, ctx)
        except ProxyError as exc:
            record.finish(error=exc)
            raise
        except BaseException as exc:
            record.finish(error=exc)
            raise
        else:
            record.finish(result=result)
            return result
        finally:
            if record.entry is not None:
                self._record(record.entry, record.status == "ok", record.duration_ms)
            self._observe("call_finished", record)

    def _observe(self, event: str, record: CallRecord) -> None:
        # Finished in the reverse order of started, like nested blocks: the first observer (the
        # activity recorder, which binds the call's ids to log lines) is the last to let go.
        for observer in self.observers if event == "call_started" else reversed(self.observers):
            try:
                getattr(observer, event)(record)
            except Exception:
                logger.exception("call observer %r failed on %s", observer, event)

    async def _dispatch(self, entry: ToolEntry, args: dict[str, Any], ctx: CallContext) -> types.CallToolResult:
        """Send the call to the upstream that owns the tool, over its live session, through the
        server's concurrency limit and circuit breaker (``mcpproxy.observe.ops``)."""
        upstream, options = self._upstream_for(entry, ctx)
        return await self.ops.call(upstream, entry, args, options)

    def _upstream_for(self, entry: ToolEntry, ctx: CallContext) -> tuple[ManagedUpstream, CallOptions]:
        """The upstream that owns ``entry`` and the options of a request to it (timeout, trace)."""
        upstream = self.pool.get(entry.server)
        limit = self.settings.call_timeout_for(upstream.spec)
        if ctx.timeout is not None and ctx.timeout < limit:
            return upstream, CallOptions(timeout=ctx.timeout, meta=ctx.meta, caller_limited=True)
        return upstream, CallOptions(timeout=limit, meta=ctx.meta)

    # -- tasks (mcpproxy.endpoints.tasks) -----------------------------------------------------

    async def start_task(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        ctx: CallContext,
        start: Callable[[ToolEntry, dict[str, Any]], Awaitable[_Started]],
    ) -> tuple[ToolEntry, _Started]:
        """A tool call the client asked to run as a task: routed and policed like any call
        (``self.checks``), then ``start`` sends it upstream through the server's guards. Observers
        hear of it as a call; when the upstream answered at once with a result, ``self.filters``
        run on that result.
        """
        record = CallRecord(name=name, arguments=dict(arguments or {}), ctx=ctx)
        self._observe("call_started", record)
        try:
            record.entry = entry = self.resolve(name)
            for check in self.checks:
                check(entry, record.arguments, ctx)
            upstream_started = time.perf_counter()
            # Through the server's guards like any call: draining, concurrency limit, circuit breaker.
            upstream, options = self._upstream_for(entry, ctx)
            arguments = record.arguments
            out: Any = await self.ops.guarded(upstream, entry, options, lambda: start(entry, arguments))
            record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
            if isinstance(out, types.CallToolResult):
                for step in self.filters:
                    out = step(entry, out, ctx)
        except BaseException as exc:
            record.finish(error=exc)
            raise
        else:
            record.finish(result=out if isinstance(out, types.CallToolResult) else None)
            return entry, out
        finally:
            self._observe("call_finished", record)

    def finish_task(self, entry: ToolEntry, result: types.CallToolResult, ctx: CallContext) -> types.CallToolResult:
        """The result of a task, fetched after it ended: the tool must still be usable by the
        caller (quarantine, pins, the token's servers), ``self.filters`` run on the result, and
        observers hear of it as a call."""
        record = CallRecord(name=entry.key, arguments={}, ctx=ctx, entry=entry)
        self._observe("call_started", record)
        try:
            self.security.check(entry, record.arguments, ctx)
            check_token(entry, record.arguments, ctx)
            for step in self.filters:
                result = step(entry, result, ctx)
        except BaseException as exc:
            record.finish(error=exc)
            raise
        else:
            record.finish(result=result)
            return result
        finally:
            self._observe("call_finished", record)

    def record_event(self, event: OpsEvent) -> None:
        """Tell the activity log and the metrics about a policy decision, state change, auth failure..."""
        for listener in self.event_listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, event.kind)

    def _record_decisions(self, decisions: Iterable[Decision | None]) -> None:
        """Record the decisions the security policy took on its own (see ``policy.security.Decision``)."""
        for d in decisions:
            if d is not None:
                self.record_event(
                    OpsEvent(kind="policy", action=d.action, check=d.check, server=d.server, tool=d.tool,
                             detail=dict(d.detail))
                )

    def _shield(self, entry: ToolEntry, result: types.CallToolResult, ctx: CallContext) -> types.CallToolResult:
        spec = self.settings.servers.get(entry.server)
        if spec is None:
            return result
        return shield_result(
            result,
            tool=entry.key,
            mode=self.settings.redaction_for(spec),
            spotlight=self.settings.spotlight_for(spec),
            report=ctx.events.append,
        )

    def _truncate(self, entry: ToolEntry, result: types.CallToolResult, ctx: CallContext) -> types.CallToolResult:
        return truncate_result(
            result,
            tool=entry.key,
            limit=self.settings.tool_response_limit,
            cache=self.cache,
            keep_structured=entry.tool.output_schema is not None and ctx.via in ("mcp-direct", "mcp-server"),
        )

    def visible(self, entry: ToolEntry) -> bool:
        """Whether a tool may be listed and found (every predicate in ``self.visibility`` agrees)."""
        return all(predicate(entry) for predicate in self.visibility)

    def visible_tools(self, token: AgentToken | None = None) -> list[ToolEntry]:
        """The catalog as clients (holding ``token``, if any) may see it, in its deterministic order."""
        return [entry for entry in self.catalog if self.visible(entry) and token_allows(token, entry)]

    # -- agent tokens -------------------------------------------------------------------------

    def lookup_token(self, digest: str) -> AgentToken | None:
        token = self._tokens.get(digest)
        return token if token is not None and token.active() else None

    def tokens(self) -> list[AgentToken]:
        return sorted(self._tokens.values(), key=lambda t: t.created_at)

    async def create_token(
        self, name: str, tier: str, servers: list[str] | None, expires_in: float | None
    ) -> tuple[str, AgentToken]:
        """A new agent token; the secret is returned once and only its hash is kept."""
        if tier not in ("read", "write", "destructive"):
            raise InvalidArguments("tier is read, write or destructive")
        if any(t.name == name and t.active() for t in self._tokens.values()):
            raise Conflict(f"an active token named '{name}' exists", hint="revoke it first or pick another name")
        secret, record = new_token(name, tier, servers, expires_in)
        await self._security_store.add_token(record)
        self._tokens[record.token_hash] = record
        return secret, record

    async def revoke_token(self, id_or_name: str) -> None:
        now = time.time()
        if not await self._security_store.revoke_token(id_or_name, now):
            raise NotFound(f"no active token '{id_or_name}'", hint="`mcpproxy token list` shows them")
        for token in self._tokens.values():
            if (token.id == id_or_name or token.name == id_or_name) and token.revoked_at is None:
                token.revoked_at = now

    # -- resources, prompts, completions ---------------------------------------------------

    def server_visible(self, server: str) -> bool:
        """Whether a server's resources and prompts may be listed and used."""
        return all(predicate(server) for predicate in self.server_visibility)

    def feature_servers(self) -> list[str]:
        """Ready, visible servers in name order: whose resources and prompts are listed."""
        return [
            s.name for s in self.statuses() if s.state is UpstreamState.READY and self.server_visible(s.name)
        ]

    def feature_upstream(self, server: str, method: str, ctx: CallContext) -> ManagedUpstream:
        """The upstream that serves a resources, prompts or completion request (``method``).

        The same gates as a tool call where they apply: the server must exist and be visible,
        and every ``self.feature_checks`` step must let the request through.

        Raises:
            UnknownServer: No such server, or it is hidden.
            ProxyError: A check refused the request.
        """
        if server not in self.state.settings.servers or not self.server_visible(server):
            raise UnknownServer(
                f"no server named '{server}'",
                hint="list resources or prompts again; names carry their server",
                data={"server": server},
            )
        for check in self.feature_checks:
            check(server, method, ctx)
        return self.pool.get(server)

    def resolve(self, name: str) -> ToolEntry:
        """The tool ``server:tool`` (or ``server__tool``); for a configured server without tools,
        the error says what state it is in and why (exited at start, backing off, disabled...)."""
        try:
            return self.catalog.resolve(name, known_servers=self.settings.servers)
        except UnknownTool as exc:
            server = exc.data.get("server")
            if not isinstance(server, str) or self._pool is None:
                raise
            try:
                status = self.pool.get(server).status
            except ProxyError:
                raise exc from None
            if status.state is UpstreamState.READY:
                raise
            reason = f" ({status.error})" if status.error else ""
            raise UnknownTool(
                f"server '{server}' is {status.state.value}{reason}: it has no tools available right now",
                hint=exc.hint,
                data={**exc.data, "state": status.state.value},
            ) from None

    def read_cache(self, key: str, offset: int = 0, limit: int | None = None) -> Page:
        return self.cache.read(key, offset, limit or self.settings.tool_response_limit or 20_000)

    def search(
        self,
        query: str | Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
        *,
        diversify: bool = True,
        explain: bool = False,
        client: str | None = None,
        by_server: bool = False,
    ) -> list[SearchResult]:
        """Tools for one request or several, among those the caller may see (``visible`` and ``filters``).

        See ``mcpproxy.search.engine.ToolSearch.find`` for ``diversify``, ``explain``, ``client``
        and ``by_server``.
        """
        flt = filters or SearchFilters()

        def allow(server: str, tool: str) -> bool:
            entry = self.catalog.get(server, tool)
            return entry is not None and flt.allows(entry) and self.visible(entry)

        queries = [query] if isinstance(query, str) else list(query)
        matches = self.index.find(
            queries, limit, allow, diversify=diversify, explain=explain, client=client, by_server=by_server
        )
        out: list[SearchResult] = []
        for match in matches:
            entry = self.catalog.get(match.server, match.name)
            if entry is not None:
                out.append(SearchResult(entry, match.score, match.why))
        self.searcher.remember(client, [r.entry.key for r in out])
        return out

    # -- status -----------------------------------------------------------------------------

    def statuses(self) -> list[ServerStatus]:
        if self._pool is None:
            return []
        return self.pool.statuses()

    def all_attempted(self) -> bool:
        """Every enabled server has finished at least one connection attempt."""
        enabled = {n for n, s in self.state.settings.servers.items() if s.enabled}
        return enabled <= self._attempted

    def server_log(self, name: str) -> Path:
        self.state.get(name)
        return server_log_path(self.log_dir, name)

    def add_listener(self, listener: ChangeListener) -> None:
        """``listener()`` is called whenever the visible tool set changes."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- callbacks from the pool -----------------------------------------------------------

    async def _on_tools(self, status: ServerStatus, tools: list[types.Tool]) -> None:
        server = status.name
        if self._pool is None or server not in self._pool:
            return
        spec = self.settings.servers.get(server)
        if spec is None:
            return
        dumped = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools]
        others = {
            name: [e.tool.model_dump(by_alias=True, mode="json", exclude_none=True) for e in self.catalog.tools_of(name)
                   if self.visible(e)]
            for name in self.catalog.servers() if name != server
        }
        self._record_decisions(await self.security.on_tools(server, self.settings.trust_for(spec), dumped, others))
        self.catalog.replace_server(server, tools)
        self.searcher.index_server(server, tools, server_context(spec.description, status.instructions))
        self._notify()
        try:
            await self.tool_store.save_tools(server, dumped)
        except ProxyError as exc:
            logger.error("cannot save the tools of %s: %s", server, exc)

    def _on_state(self, status: ServerStatus) -> None:
        if status.state in (UpstreamState.READY, UpstreamState.ERROR, UpstreamState.DISABLED):
            self._attempted.add(status.name)
        self._state_changed.set()
        self._state_changed = anyio.Event()
        for listener in list(self.state_listeners):
            listener(status)

    async def _on_upstream_notification(self, server: str, notification: types.ServerNotification) -> None:
        for listener in list(self.notification_listeners):
            try:
                await listener(server, notification)
            except Exception:
                logger.exception("notification listener failed for %s", server)

    async def wait_state_change(self) -> None:
        """Return at the next state change of any server."""
        await self._state_changed.wait()

    # -- statistics --------------------------------------------------------------------------

    def _record(self, entry: ToolEntry, ok: bool, ms: float) -> None:
        if self._stats_send is None:
            return
        try:
            self._stats_send.send_nowait((entry.server, entry.name, ok, ms))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            logger.debug("call statistics buffer full; dropping one record")

    async def _write_stats(self, receive: MemoryObjectReceiveStream[tuple[str, str, bool, float]]) -> None:
        async with receive:
            async for first in receive:
                # Everything queued meanwhile goes in the same transaction (one per batch, not per call).
                counts: dict[tuple[str, str], tuple[int, int, float]] = {}
                item: tuple[str, str, bool, float] | None = first
                while item is not None:
                    server, tool, ok, ms = item
                    calls, errors, total = counts.get((server, tool), (0, 0, 0.0))
                    counts[(server, tool)] = (calls + 1, errors + (not ok), total + ms)
                    try:
                        item = receive.receive_nowait() if len(counts) < 1000 else None
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        item = None
                try:
                    await self.tool_store.record_calls(counts)
                except ProxyError as exc:
                    logger.warning("cannot record call statistics: %s", exc)

    # -- servers -----------------------------------------------------------------------------

    async def _load_snapshots(self) -> None:
        snapshots = await self.tool_store.load_tools()
        for server, raw_tools in snapshots.items():
            if server not in self.settings.servers:
                await self.tool_store.delete_server(server)
                continue
            tools = []
            for raw in raw_tools:
                try:
                    tools.append(types.Tool.model_validate(raw))
                except ValueError:
                    continue
            self.catalog.replace_server(server, tools)
            self.searcher.index_server(server, tools, server_context(self.settings.servers[server].description, None))
        logger.info("search index rebuilt from the store: %d tools", len(self.index))

    async def _apply_servers(self, old: dict[str, ServerSpec], new: dict[str, ServerSpec]) -> None:
        pool = self.pool
        self.settings = self.settings.model_copy(update={"servers": dict(new)})
        for name in sorted(old.keys() - new.keys()):
            pool.stop(name)
            self._attempted.discard(name)
            self.catalog.remove_server(name)
            self.index.remove_server(name)
            await self.tool_store.delete_server(name)
            await self.security.on_server_removed(name)
            logger.info("server %s removed", name)
        for name in sorted(new.keys() - old.keys()):
            self._record_decisions([await self.security.on_server_added(name, self.settings.trust_for(new[name]))])
            await pool.start(new[name])
            logger.info("server %s added", name)
        for name in sorted(new.keys() & old.keys()):
            if new[name] != old[name]:
                self._attempted.discard(name)
                if self.settings.trust_for(new[name]) == "auto" and self.security.server_status(name) != "approved":
                    await self.security.approve_server(name, by="trust:auto")
                if not new[name].enabled:
                    self.catalog.remove_server(name)
                    self.index.remove_server(name)
                pool.update(new[name])
                logger.info("server %s updated", name)
        self._notify()

    # -- human decisions (CLI and REST only; never reachable from the model) -------------------

    async def approve_server(self, name: str, *, by: str) -> list[str]:
        self.state.get(name)
        released = await self.security.approve_server(name, by=by)
        self._notify()
        self.record_event(OpsEvent(kind="policy", action="approve", check="quarantine", server=name,
                                   detail={"by": by, "released_tools": len(released)}))
        return released

    async def quarantine_server(self, name: str, *, by: str) -> None:
        self.state.get(name)
        await self.security.quarantine_server(name, by=by)
        self._notify()
        self.record_event(OpsEvent(kind="policy", action="quarantine", check="quarantine", server=name,
                                   detail={"by": by}))

    async def decide_tool(self, name: str, decision: str, *, by: str) -> dict[str, Any]:
        server, _, tool = name.partition(":")
        pin = await self.security.decide_tool(server, tool, decision, by=by)
        self._notify()
        self.record_event(OpsEvent(kind="policy", action=decision, check="pin", server=server, tool=tool,
                                   detail={"by": by}))
        return pin.to_dict()

    async def enable(self, name: str, enabled: bool) -> ServerSpec:
        return await self.state.set_enabled(name, enabled)

    def restart(self, name: str) -> None:
        self.state.get(name)
        self._attempted.discard(name)
        self.pool.restart(name)

    # -- config file -------------------------------------------------------------------------

    def _expect_write(self, content: bytes) -> None:
        if self._watcher is not None:
            self._watcher.expect(content)

    def _reload_settings(self) -> Settings:
        assert self.config_path is not None
        return load_settings(self.config_path, env=os.environ)

    async def _on_config_change(self, settings: Settings) -> None:
        self.last_config_error = None
        changed = [
            f
            for f in type(settings).model_fields
            if f != "servers" and getattr(settings, f) != getattr(self.settings, f)
        ]
        if changed:
            logger.warning("config: %s changed; restart mcpproxy to apply", ", ".join(changed))
        logger.info("config file changed; applying")
        await self.state.apply_file(settings)

    async def _on_config_error(self, error: ConfigError) -> None:
        self.last_config_error = error
        logger.error("config file refused, the running config stays: %s", error)


def describe_entries(entries: Sequence[ToolEntry]) -> list[dict[str, Any]]:
    """Full descriptions of tools (``describe_tool``, REST)."""
    out = []
    for entry in entries:
        tool = entry.tool
        item: dict[str, Any] = {
            "name": entry.key,
            "server": entry.server,
            "tool": entry.name,
            "description": tool.description or "",
            "input_schema": entry.input_schema,
            "annotations": entry.annotations_dict(),
            "tier": entry.tier.label,
            "call_with": entry.tier.call_tool,
        }
        if tool.title:
            item["title"] = tool.title
        if tool.output_schema is not None:
            item["output_schema"] = tool.output_schema
        out.append(item)
    return out
