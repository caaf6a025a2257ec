"""Tasks through mcpproxy: a client's task handle mapped durably to the upstream task.

Clients of both eras start tasks and follow them:

- handshake era (2025-11-25): a ``tools/call`` carrying ``params.task``, then ``tasks/get``,
  ``tasks/result``, ``tasks/list`` and ``tasks/cancel``;
- stateless era (2026-07-28): the ``io.modelcontextprotocol/tasks`` extension (SEP-2663): a
  ``tools/call`` whose request declares the extension, answered ``resultType: "task"``, then
  ``tasks/get`` (which carries the result once the task ended), ``tasks/update`` and
  ``tasks/cancel``.

Upstream, tasks run on servers that support the extension (``upstream.tasks``). When the tool's
server does not, the call runs as a plain call: the 2025-11-25 spec has a receiver that does not
support task augmentation process the request normally, ignoring the task metadata, and under
the extension the server decides per call whether to answer with a task.

The client never sees the upstream's task id: it gets a handle of mcpproxy's own (random,
unguessable), kept in the store with the server, the upstream task id and its owner (the agent
token that created it, or the API key / no-auth principal), so it reaches the same upstream task
after a restart. A handle is found only by its owner: an unknown, expired and someone else's
handle get the same error. ``tasks/list`` lists the caller's tasks only.

Every policy of a tool call applies: the start goes through the gateway's checks and observers
(``Gateway.start_task``); the result, whenever it is fetched, through the policy checks that
still apply, the result filters and the observers (``Gateway.finish_task``).

The capability is advertised only where it is honest: on ``/mcp/s/<server>`` when that server
supports tasks, on ``/mcp/all`` when at least one ready server does (the others' tools run as
plain calls).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import Field

from mcpproxy.endpoints.auth import token_of
from mcpproxy.endpoints.features import client_name, forward_meta, to_mcp_error
from mcpproxy.endpoints.notify import is_modern
from mcpproxy.endpoints.views import page
from mcpproxy.errors import NotFound, ProxyError, UnknownTask, UpstreamError, UpstreamTimeout
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.routing.catalog import ToolEntry
from mcpproxy.store.tasks import TaskHandle, TaskStore
from mcpproxy.upstream import tasks as upstream_tasks

logger = logging.getLogger(__name__)

DEFAULT_TTL_MS = 24 * 3600 * 1000
"""How long a handle is kept when neither the upstream nor the client gave a ttl."""

MAX_TTL_MS = 7 * 24 * 3600 * 1000
"""No handle is kept longer than this, whatever ttl was asked for."""

RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task"

HANDSHAKE_CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}

_POLL_FIRST = 0.05
_POLL_MAX = 2.0

NameOf = Callable[[ServerRequestContext[Any, Any], str], str]
"""The gateway name (``server:tool`` or ``server__tool``) of a tool a request names."""

ServersOf = Callable[[ServerRequestContext[Any, Any]], list[str]]
"""The servers an endpoint shows (whose support decides whether tasks are advertised)."""

Rewrite = Callable[[str, types.CallToolResult], types.CallToolResult]
"""How an endpoint rewrites a result of ``server`` (namespaced resource links)."""


class TaskParams(types.RequestParams):
    """``tasks/get``, ``tasks/result``, ``tasks/cancel``: the task handle."""

    task_id: str


class UpdateTaskParams(types.RequestParams):
    """``tasks/update`` (stateless era): the handle and the client's answers."""

    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


def owner_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """Who a request acts for: its agent token, or ``""`` (the API key, or no auth)."""
    token = token_of(ctx)
    return token.id if token is not None else ""


def new_handle() -> str:
    """A fresh task handle: 256 random bits."""
    return "task-" + secrets.token_urlsafe(32)


def opted_in(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether a stateless-era request declared the tasks extension."""
    meta = ctx.meta
    if not isinstance(meta, dict):
        return False
    caps = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
    extensions = caps.get("extensions") if isinstance(caps, dict) else None
    return isinstance(extensions, dict) and upstream_tasks.TASKS_EXTENSION in extensions


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _unknown(handle: str) -> MCPError:
    exc = UnknownTask(
        f"no task '{handle}'",
        hint="the handle is unknown, expired, or belongs to another client; tasks/list shows yours",
    )
    return MCPError(types.INVALID_PARAMS, str(exc), exc.to_dict())


def _error_content(exc: ProxyError) -> types.CallToolResult:
    text = f"Error ({exc.kind}): {exc.message}" + (f"\nHint: {exc.hint}" if exc.hint else "")
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _wire(model: types.Result) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class TaskHandlers:
    """The tasks of one MCP endpoint: a middleware for task-augmented calls and capabilities,
    and the ``tasks/*`` request handlers.

    Args:
        gw: The gateway.
        via: The endpoint's name in the activity log (``mcp-direct``, ``mcp-server``).
        name_of: The gateway name of a tool the request names.
        servers_of: The servers the endpoint shows.
        rewrite: How a result of a server is rewritten for this endpoint.
    """

    def __init__(self, gw: Gateway, *, via: str, name_of: NameOf, servers_of: ServersOf, rewrite: Rewrite) -> None:
        self.gw = gw
        self.via = via
        self.name_of = name_of
        self.servers_of = servers_of
        self.rewrite = rewrite

    @property
    def store(self) -> TaskStore:
        return TaskStore(self.gw.store)

    def attach(self, server: Server[Any]) -> None:
        """Serve tasks on ``server``: outermost middleware, and the ``tasks/*`` methods."""
        server.middleware.insert(0, self.middleware)
        server.add_request_handler("tasks/get", TaskParams, self.get)
        server.add_request_handler("tasks/result", TaskParams, self.result)
        server.add_request_handler("tasks/list", types.PaginatedRequestParams, self.list_tasks)
        server.add_request_handler("tasks/cancel", TaskParams, self.cancel)
        server.add_request_handler("tasks/update", UpdateTaskParams, self.update)

    def _call_ctx(self, ctx: ServerRequestContext[Any, Any]) -> CallContext:
        return CallContext(via=self.via, client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))

    def advertised(self, ctx: ServerRequestContext[Any, Any]) -> bool:
        """Whether this endpoint may honestly advertise tasks: a server it shows supports them."""
        try:
            servers = self.servers_of(ctx)
        except MCPError:
            return False
        for server in servers:
            try:
                upstream = self.gw.pool.get(server)
            except ProxyError:
                continue
            if upstream_tasks.upstream_supports_tasks(upstream):
                return True
        return False

    # -- middleware --------------------------------------------------------------------------

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        method = ctx.method
        if method == "tools/call":
            params = ctx.params or {}
            modern = is_modern(ctx)
            if (opted_in(ctx) if modern else params.get("task") is not None) and isinstance(params.get("name"), str):
                started = await self._start(ctx, params, modern=modern)
                if started is not None:
                    return started
            return await call_next(ctx)
        if method in ("initialize", "server/discover"):
            result = await call_next(ctx)
            if isinstance(result, dict) and self.advertised(ctx):
                caps = dict(result.get("capabilities") or {})
                if method == "initialize":
                    if ctx.protocol_version not in ("2025-06-18", "2025-03-26"):
                        caps["tasks"] = {key: dict(value) for key, value in HANDSHAKE_CAPABILITY.items()}
                else:
                    caps["extensions"] = {**(caps.get("extensions") or {}), upstream_tasks.TASKS_EXTENSION: {}}
                result = {**result, "capabilities": caps}
            return result
        return await call_next(ctx)

    async def _start(
        self, ctx: ServerRequestContext[Any, Any], params: Mapping[str, Any], *, modern: bool
    ) -> dict[str, Any] | None:
        """Start a task-augmented call; ``None`` when it should run as a plain call instead."""
        name = self.name_of(ctx, str(params["name"]))
        try:
            entry = self.gw.resolve(name)
            upstream = self.gw.pool.get(entry.server)
        except ProxyError:
            return None  # the plain path answers with its own error
        if not upstream_tasks.upstream_supports_tasks(upstream):
            return None
        arguments = params.get("arguments") or {}
        requested = params.get("task")
        requested_ttl = requested.get("ttl") if isinstance(requested, dict) else None
        meta = forward_meta(ctx)

        async def start(
            entry: ToolEntry, args: dict[str, Any]
        ) -> upstream_tasks.UpstreamTask | types.CallToolResult:
            return await upstream_tasks.call_tool(upstream, entry.name, args, meta)

        try:
            entry, out = await self.gw.start_task(name, arguments, self._call_ctx(ctx), start)
        except NotFound as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc), exc.to_dict()) from exc
        except UpstreamError as exc:
            if "upstream_code" in exc.data:
                raise to_mcp_error(exc) from exc
            return self._plain(_error_content(exc), modern)
        except ProxyError as exc:
            return self._plain(_error_content(exc), modern)
        if isinstance(out, types.CallToolResult):
            return self._plain(self.rewrite(entry.server, out), modern)
        now = time.time()
        ttl_ms = out.ttl_ms if out.ttl_ms is not None else requested_ttl
        ttl_ms = min(int(ttl_ms) if isinstance(ttl_ms, int | float) and ttl_ms > 0 else DEFAULT_TTL_MS, MAX_TTL_MS)
        record = TaskHandle(
            handle=new_handle(),
            owner=owner_of(ctx),
            server=entry.server,
            tool=entry.name,
            upstream_id=out.task_id,
            via=self.via,
            status=out.status,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl_ms / 1000,
        )
        await self.store.add(record, now=now)
        logger.info("task %s started on %s:%s (upstream task %s)", record.handle[:12], entry.server, entry.name,
                    out.task_id[:12])
        task = self._task_fields(record, out, modern=modern, ttl_ms=ttl_ms)
        if modern:
            return {**task, "resultType": "task"}
        return {"task": task}

    @staticmethod
    def _plain(result: types.CallToolResult, modern: bool) -> dict[str, Any]:
        wire = _wire(result)
        if modern:
            wire["resultType"] = "complete"
        return wire

    @staticmethod
    def _task_fields(
        record: TaskHandle, task: upstream_tasks.UpstreamTask, *, modern: bool, ttl_ms: int | None = None
    ) -> dict[str, Any]:
        """The task as the client sees it: its handle, never the upstream's id."""
        ttl = ttl_ms if ttl_ms is not None else task.ttl_ms
        out: dict[str, Any] = {
            "taskId": record.handle,
            "status": task.status,
            "createdAt": task.created_at or datetime.fromtimestamp(record.created_at, UTC).isoformat(),
            "lastUpdatedAt": task.last_updated_at or _now_iso(),
        }
        if modern:
            out["ttlMs"] = ttl
            if task.poll_interval_ms is not None:
                out["pollIntervalMs"] = task.poll_interval_ms
        else:
            out["ttl"] = ttl
            if task.poll_interval_ms is not None:
                out["pollInterval"] = task.poll_interval_ms
        if task.status_message:
            out["statusMessage"] = task.status_message
        return out

    # -- the tasks/* methods -------------------------------------------------------------------

    async def _lookup(self, ctx: ServerRequestContext[Any, Any], handle: str) -> TaskHandle:
        record = await self.store.get(handle, owner_of(ctx), now=time.time())
        if record is None:
            raise _unknown(handle)
        return record

    async def _fetch(self, record: TaskHandle) -> upstream_tasks.UpstreamTask:
        """The task's current state, from its upstream."""
        try:
            task = await upstream_tasks.get(self.gw.pool.get(record.server), record.upstream_id)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        if task.status != record.status:
            record.status = task.status
            await self.store.set_status(record.handle, task.status, now=time.time())
        return task

    def _final(
        self, ctx: ServerRequestContext[Any, Any], record: TaskHandle, task: upstream_tasks.UpstreamTask
    ) -> types.CallToolResult:
        """The completed task's result, through the policy checks, the filters and the observers."""
        try:
            result = types.CallToolResult.model_validate(task.result or {}, by_name=False)
            entry = self.gw.resolve(f"{record.server}:{record.tool}")
            result = self.gw.finish_task(entry, result, self._call_ctx(ctx))
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        except ValueError as exc:
            raise MCPError(types.INTERNAL_ERROR, f"server '{record.server}' returned an invalid task result") from exc
        return self.rewrite(record.server, result)

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        record = await self._lookup(ctx, params.task_id)
        task = await self._fetch(record)
        modern = is_modern(ctx)
        out = self._task_fields(record, task, modern=modern)
        if modern:
            if task.status == "completed":
                out["result"] = _wire(self._final(ctx, record, task))
            elif task.status == "failed" and task.error is not None:
                out["error"] = task.error
            elif task.status == "input_required" and task.input_requests is not None:
                out["inputRequests"] = task.input_requests
        return out

    async def result(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        """``tasks/result``: waits until the task ended (bounded by the server's call timeout),
        then its result through the filters, or its error."""
        record = await self._lookup(ctx, params.task_id)
        spec = self.gw.settings.servers.get(record.server)
        timeout = self.gw.settings.call_timeout_for(spec) if spec is not None else self.gw.settings.call_timeout
        delay = _POLL_FIRST
        try:
            with anyio.fail_after(timeout):
                while True:
                    task = await self._fetch(record)
                    if task.status in upstream_tasks.TERMINAL:
                        break
                    if task.status == "input_required" and not is_modern(ctx):
                        raise MCPError(
                            types.INVALID_REQUEST,
                            f"task '{record.handle}' waits for input, which only a stateless-era client "
                            "can give (tasks/get shows the requests, tasks/update answers them)",
                        )
                    ceiling = (task.poll_interval_ms or 1000) / 1000
                    await anyio.sleep(min(delay, ceiling, _POLL_MAX))
                    delay *= 2
        except TimeoutError:
            exc = UpstreamTimeout(
                f"task '{record.handle}' did not end within {timeout:g} s",
                hint="call tasks/result again, or follow it with tasks/get",
            )
            raise to_mcp_error(exc) from None
        if task.status == "failed":
            error = task.error or {}
            raw_code = error.get("code")
            code = raw_code if isinstance(raw_code, int) else types.INTERNAL_ERROR
            raise MCPError(code, str(error.get("message") or task.status_message or "the task failed"),
                           error.get("data"))
        if task.status == "cancelled":
            raise MCPError(types.INVALID_REQUEST, f"task '{record.handle}' was cancelled")
        out = _wire(self._final(ctx, record, task))
        meta = dict(out.get("_meta") or {})
        meta[RELATED_TASK_META_KEY] = {"taskId": record.handle}
        out["_meta"] = meta
        return out

    async def list_tasks(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> dict[str, Any]:
        """``tasks/list``: the caller's own tasks, with the status last seen."""
        records = await self.store.of_owner(owner_of(ctx), now=time.time())
        size = int(getattr(self.gw.settings, "list_page_size", 100))
        chunk, cursor = page(records, params.cursor if params else None, size, lambda r: r.handle)
        modern = is_modern(ctx)
        tasks = [
            self._task_fields(
                r,
                upstream_tasks.UpstreamTask(
                    task_id=r.upstream_id,
                    status=r.status,
                    last_updated_at=datetime.fromtimestamp(r.updated_at, UTC).isoformat(),
                ),
                modern=modern,
                ttl_ms=int((r.expires_at - r.created_at) * 1000),
            )
            for r in chunk
        ]
        out: dict[str, Any] = {"tasks": tasks}
        if cursor is not None:
            out["nextCursor"] = cursor
        return out

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        record = await self._lookup(ctx, params.task_id)
        try:
            await upstream_tasks.cancel(self.gw.pool.get(record.server), record.upstream_id)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        task = await self._fetch(record)
        if is_modern(ctx):
            return {}
        return self._task_fields(record, task, modern=False)

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        """``tasks/update`` (stateless era): the answers go to the upstream task untouched."""
        record = await self._lookup(ctx, params.task_id)
        try:
            await upstream_tasks.update(self.gw.pool.get(record.server), record.upstream_id, params.input_responses)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        return {}
