"""Background tasks on an upstream: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663).

An upstream supports tasks when it speaks the stateless 2026-07-28 era and declares the
extension in its capabilities. The extension is opted into per request (the client declares it
in that request's ``_meta`` client capabilities): mcpproxy opts in only on the requests a
client made as tasks, so a plain call of a task-capable tool stays a plain call.

The SDK stamps one set of client capabilities on every request of a session and has no
per-request override, so these requests are stamped as usual and the tasks extension is added
to that request's copy of the capabilities before it is sent (``_send``); the answer is then
validated here. This uses the session's stamp and dispatcher (``mcp`` is pinned exactly).

Every request runs like any other upstream request (``features.run``): bounded by the server's
call timeout, tracked for the client request it serves, errors translated to the gateway's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.shared.dispatcher import CallOptions
from mcp.shared.inbound import MCP_NAME_HEADER, encode_header_value
from pydantic import ValidationError

from mcpproxy.errors import ProxyError, UpstreamProtocolError
from mcpproxy.upstream import features
from mcpproxy.upstream.session import ManagedUpstream

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
"""The extension's identifier, in ``capabilities.extensions`` on both sides."""

TERMINAL = frozenset({"completed", "failed", "cancelled"})
"""Statuses a task never leaves."""


class UpstreamTask(types.Result):
    """A task as an upstream describes it (``tools/call`` answered ``resultType: "task"``, or
    ``tasks/get``): the flat SEP-2663 task fields, and once it ended its result or error, or
    while it waits its input requests."""

    task_id: str
    status: str
    created_at: str | None = None
    last_updated_at: str | None = None
    ttl_ms: int | None = None
    status_message: str | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


def supports_tasks(client: Client) -> bool:
    """Whether the upstream runs tools as tasks (stateless era, extension declared)."""
    if not features.is_modern(client):
        return False
    extensions = client.server_capabilities.extensions
    return extensions is not None and TASKS_EXTENSION in extensions


def upstream_supports_tasks(upstream: ManagedUpstream) -> bool:
    """``supports_tasks`` of a ready upstream (``False`` when it is not ready)."""
    try:
        return supports_tasks(upstream.live_client())
    except ProxyError:  # not ready: it supports nothing right now
        return False


async def _send(client: Client, method: str, params: dict[str, Any], *, name: str | None, wait: float) -> Any:
    """One request with the tasks extension opted into (see the module docstring)."""
    session = client.session
    data: dict[str, Any] = {"method": method, "params": params}
    opts: CallOptions = {}
    session._stamp(data, opts)  # the per-request opt-in the SDK has no API for
    meta = data["params"].setdefault("_meta", {})
    capabilities = dict(meta.get(types.CLIENT_CAPABILITIES_META_KEY) or {})
    capabilities["extensions"] = {**(capabilities.get("extensions") or {}), TASKS_EXTENSION: {}}
    meta[types.CLIENT_CAPABILITIES_META_KEY] = capabilities
    if name is not None:
        opts.setdefault("headers", {})[MCP_NAME_HEADER] = encode_header_value(name)
    opts["timeout"] = wait
    return await session._dispatcher.send_raw_request(method, data["params"], opts)


def _task(server: str, method: str, raw: Any) -> UpstreamTask:
    try:
        return UpstreamTask.model_validate(raw, by_name=False)
    except ValidationError as exc:
        raise UpstreamProtocolError(f"server '{server}' answered {method} with no valid task") from exc


async def call_tool(
    upstream: ManagedUpstream, tool: str, arguments: Mapping[str, Any], meta: Mapping[str, Any] | None
) -> UpstreamTask | types.CallToolResult:
    """``tools/call`` of ``tool`` opted into tasks: the task the upstream started, or the tool's
    result when the upstream ran it at once (a server decides per tool).

    Raises:
        UpstreamUnavailable, UpstreamTimeout, UpstreamError: As for any upstream request.
        UpstreamProtocolError: The answer is neither a task nor a tool result.
    """
    client = upstream.live_client()
    timeout = upstream.settings.call_timeout_for(upstream.spec)
    params: dict[str, Any] = {"name": tool, "arguments": dict(arguments)}
    if meta:
        params["_meta"] = dict(meta)
    raw = await features.run(upstream, lambda: _send(client, "tools/call", params, name=None, wait=timeout))
    if isinstance(raw, dict) and raw.get("resultType") == "task":
        return _task(upstream.name, "tools/call", raw)
    try:
        return types.CallToolResult.model_validate(raw, by_name=False)
    except ValidationError as exc:
        raise UpstreamProtocolError(f"server '{upstream.name}' answered tools/call with no valid result") from exc


async def get(upstream: ManagedUpstream, task_id: str) -> UpstreamTask:
    """``tasks/get``: the task's status, and its result or error once it ended."""
    client = upstream.live_client()
    timeout = upstream.settings.call_timeout_for(upstream.spec)
    raw = await features.run(
        upstream, lambda: _send(client, "tasks/get", {"taskId": task_id}, name=task_id, wait=timeout)
    )
    return _task(upstream.name, "tasks/get", raw)


async def cancel(upstream: ManagedUpstream, task_id: str) -> None:
    """``tasks/cancel``: ask the upstream to stop the task."""
    client = upstream.live_client()
    timeout = upstream.settings.call_timeout_for(upstream.spec)
    await features.run(
        upstream, lambda: _send(client, "tasks/cancel", {"taskId": task_id}, name=task_id, wait=timeout)
    )


async def update(upstream: ManagedUpstream, task_id: str, input_responses: Mapping[str, Any]) -> None:
    """``tasks/update``: the client's answers to the input requests of a waiting task."""
    client = upstream.live_client()
    timeout = upstream.settings.call_timeout_for(upstream.spec)
    params = {"taskId": task_id, "inputResponses": dict(input_responses)}
    await features.run(upstream, lambda: _send(client, "tasks/update", params, name=task_id, wait=timeout))
