"""Resources, prompts, completions and logging on an upstream's live session.

Every request reuses the upstream's one session (``ManagedUpstream.live_client``), is
bounded by the server's call timeout, registers the client request it serves as in flight
(``relay.tracking``: progress, logs and server-to-client requests find their client), and
translates what the SDK raises into the gateway's error tree. A connection loss tells the
supervisor at once.

Lists follow ``nextCursor`` page by page (a server that repeats a cursor or never ends is an
error, as for tools). A server that did not declare a capability is not asked at all.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, TypeVar

import anyio
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpproxy.errors import UpstreamError, UpstreamUnavailable
from mcpproxy.upstream import relay
from mcpproxy.upstream.errors import map_upstream_errors
from mcpproxy.upstream.session import ManagedUpstream, paginate

logger = logging.getLogger(__name__)

MAX_PAGES = 1000
"""A server that hands out cursors forever is cut off after this many pages."""

Capability = Literal["resources", "subscribe", "prompts", "completions", "logging", "tools"]
ListKind = Literal["resources", "templates", "prompts"]

_T = TypeVar("_T")


class MethodNotSupported(UpstreamError):
    """The upstream did not declare the capability a request needs."""

    code = types.METHOD_NOT_FOUND
    kind = "method_not_supported"


def is_modern(client: Client) -> bool:
    """Whether the upstream session speaks the stateless 2026-07-28 era."""
    return client.protocol_version in MODERN_PROTOCOL_VERSIONS


def supports(client: Client, capability: Capability) -> bool:
    """Whether the upstream declared ``capability``."""
    caps = client.server_capabilities
    if capability == "subscribe":
        if caps.resources is None:
            return False
        # At 2026-07-28 resource updates come through subscriptions/listen.
        return bool(caps.resources.subscribe) or (is_modern(client) and caps.resources.subscribe is not False)
    return getattr(caps, capability) is not None


def require(upstream: ManagedUpstream, capability: Capability, method: str) -> Client:
    """The live client of ``upstream`` if it declared ``capability``.

    Raises:
        UpstreamUnavailable: The server is not ready.
        MethodNotSupported: It did not declare the capability.
    """
    client = upstream.live_client()
    if not supports(client, capability):
        raise MethodNotSupported(
            f"server '{upstream.name}' does not support {method}",
            hint=f"it did not declare the {capability} capability",
            data={"server": upstream.name, "method": method},
        )
    return client


async def run(upstream: ManagedUpstream, call: Callable[[], Awaitable[_T]]) -> _T:
    """Run one upstream request for the current client request (see the module docstring)."""
    timeout = upstream.settings.call_timeout_for(upstream.spec)
    try:
        with (
            relay.tracking(upstream.name),
            map_upstream_errors(upstream.name, timeout=timeout),
            anyio.fail_after(timeout),
        ):
            return await call()
    except UpstreamUnavailable as exc:
        upstream.lost(exc.message)
        raise


def request_meta(client: Client, base: dict[str, Any] | None = None) -> types.RequestParamsMeta | None:
    """The ``_meta`` for an upstream request made for the current client request."""
    meta = relay.upstream_meta(relay.relay_target.get(), modern_upstream=is_modern(client), base=base)
    return meta  # type: ignore[return-value]


async def list_items(upstream: ManagedUpstream, kind: ListKind) -> list[Any]:
    """Every resource, resource template or prompt of ``upstream``, page by page (empty when
    the server did not declare the capability)."""
    client = upstream.live_client()
    if not supports(client, "prompts" if kind == "prompts" else "resources"):
        return []

    async def page(cursor: str | None) -> tuple[list[Any], str | None]:
        listed: Any = await run(upstream, partial(_list_page, client, kind, cursor))
        if kind == "resources":
            return listed.resources, listed.next_cursor
        if kind == "templates":
            return listed.resource_templates, listed.next_cursor
        return listed.prompts, listed.next_cursor

    return await paginate(page, server=upstream.name, method=f"{kind} list", items=kind, max_pages=MAX_PAGES)


async def _list_page(client: Client, kind: ListKind, cursor: str | None) -> Any:
    params = types.PaginatedRequestParams(cursor=cursor)
    if kind == "resources":
        return await client.session.list_resources(params=params)
    if kind == "templates":
        return await client.session.list_resource_templates(params=params)
    return await client.session.list_prompts(params=params)


def _stateless_target() -> relay.RelayTarget | None:
    """The client request being served when it is a stateless-era one (it answers input itself)."""
    target = relay.relay_target.get()
    return target if target is not None and target.link.modern else None


async def _passing_input_required(upstream: ManagedUpstream, send: Callable[[], Awaitable[Any]]) -> Any:
    """``send()`` for a stateless-era client: an ``input_required`` answer goes back untouched."""
    result = await run(upstream, send)
    if isinstance(result, types.InputRequiredResult):
        raise relay.InputRequiredRelay(result)
    return result


async def read_resource(upstream: ManagedUpstream, uri: str) -> types.ReadResourceResult:
    """``resources/read`` of ``uri`` (the upstream's own URI).

    Raises:
        InputRequiredRelay: A stateless-era client must answer input requests itself.
    """
    client = require(upstream, "resources", "resources/read")
    meta = request_meta(client)
    target = _stateless_target()
    if target is not None:
        result: types.ReadResourceResult = await _passing_input_required(
            upstream,
            lambda: client.session.read_resource(
                uri,
                input_responses=target.input_responses,
                request_state=target.request_state,
                meta=meta,
                allow_input_required=True,
            ),
        )
        return result
    return await run(upstream, lambda: client.read_resource(uri, meta=meta, cache_mode="bypass"))


async def get_prompt(upstream: ManagedUpstream, name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    """``prompts/get`` of prompt ``name`` (the upstream's own name).

    Raises:
        InputRequiredRelay: A stateless-era client must answer input requests itself.
    """
    client = require(upstream, "prompts", "prompts/get")
    meta = request_meta(client)
    target = _stateless_target()
    if target is not None:
        result: types.GetPromptResult = await _passing_input_required(
            upstream,
            lambda: client.session.get_prompt(
                name,
                arguments,
                input_responses=target.input_responses,
                request_state=target.request_state,
                meta=meta,
                allow_input_required=True,
            ),
        )
        return result
    return await run(upstream, lambda: client.get_prompt(name, arguments, meta=meta))


async def complete(upstream: ManagedUpstream, params: types.CompleteRequestParams) -> types.CompleteResult:
    """``completion/complete`` with ``params`` already in the upstream's own names."""
    client = require(upstream, "completions", "completion/complete")
    forwarded = params.model_copy(update={"meta": request_meta(client)})
    return await run(
        upstream,
        lambda: client.session.send_request(types.CompleteRequest(params=forwarded), types.CompleteResult),
    )


async def subscribe(upstream: ManagedUpstream, uri: str, *, on: bool) -> None:
    """``resources/subscribe`` (``on``) or ``resources/unsubscribe`` of ``uri`` on a handshake-era
    upstream (a stateless-era one is followed through ``subscriptions/listen`` instead)."""
    client = require(upstream, "subscribe", "resources/subscribe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        if on:
            await run(upstream, lambda: client.session.subscribe_resource(uri))
        else:
            await run(upstream, lambda: client.session.unsubscribe_resource(uri))


async def set_logging_level(upstream: ManagedUpstream, level: types.LoggingLevel) -> None:
    """``logging/setLevel`` on a handshake-era upstream that declared logging (else nothing)."""
    client = upstream.live_client()
    if is_modern(client) or not supports(client, "logging"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await run(upstream, lambda: client.session.set_logging_level(level))
