"""Resources, prompts, completions and logging as the MCP endpoints serve them.

One set of handlers serves every endpoint; the endpoint of a request (``/mcp``, ``/mcp/all``
or ``/mcp/s/<server>``) decides the ``View``: which servers, which names. Lists are merged
from every server the view shows, in a deterministic order, and paged by mcpproxy. Requests
for one item are routed by the server in its name (or the single server of the view) and go
through ``Gateway.feature_upstream`` (the same gates as a tool call), then upstream on that
server's live session. Completions are routed by their prompt or resource reference.

``RelayMiddleware`` runs around every request: it marks the client request being served
(``relay.acting_for``) so what the upstream sends back for it (progress, logs, sampling,
elicitation, roots) reaches that client and no other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter, ValidationError

from mcpproxy.endpoints.auth import token_of
from mcpproxy.endpoints.notify import Endpoint, Hub, is_modern
from mcpproxy.endpoints.views import View, item_key, page
from mcpproxy.errors import ProxyError, UpstreamError
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.routing import uris
from mcpproxy.upstream import features, relay

logger = logging.getLogger(__name__)

EndpointOf = Callable[[ServerRequestContext[Any, Any]], Endpoint]
"""The endpoint a request came to."""

_INPUT_RESPONSES: TypeAdapter[types.InputResponses] = TypeAdapter(types.InputResponses)


def to_mcp_error(exc: ProxyError) -> MCPError:
    """A gateway error as the JSON-RPC error a client gets (an upstream's own error keeps its code)."""
    if isinstance(exc, UpstreamError) and "upstream_code" in exc.data:
        return MCPError(int(exc.data["upstream_code"]), exc.message, exc.data.get("upstream_data"))
    return MCPError(exc.code, str(exc), exc.to_dict())


def client_name(ctx: ServerRequestContext[Any, Any]) -> str | None:
    params = ctx.session.client_params if ctx.session is not None else None
    if params is not None:
        return params.client_info.name
    meta = ctx.meta or {}
    info = meta.get(types.CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return str(info["name"])
    return None


def forward_meta(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any] | None:
    """The parts of a request's ``_meta`` that travel upstream (trace context)."""
    meta = ctx.meta
    if not isinstance(meta, dict):
        return None
    keep = {k: v for k, v in meta.items() if k in ("traceparent", "tracestate", "baggage")}
    return keep or None


class RelayMiddleware:
    """Marks the client request being served, for everything the upstream sends back for it."""

    def __init__(self, hub: Hub, endpoint_of: EndpointOf) -> None:
        self.hub = hub
        self.endpoint_of = endpoint_of

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "initialize":
            return await call_next(ctx)
        try:
            endpoint = self.endpoint_of(ctx)
        except MCPError:
            return await call_next(ctx)
        link = self.hub.link(ctx, endpoint)
        if ctx.request_id is None:
            return await call_next(ctx)
        meta: dict[str, Any] = dict(ctx.meta or {})
        params = ctx.params or {}
        responses = None
        if params.get("inputResponses") is not None:
            try:
                responses = _INPUT_RESPONSES.validate_python(params["inputResponses"])
            except ValidationError:
                responses = None
        state = params.get("requestState")
        token = token_of(ctx)
        target = relay.RelayTarget(
            session=ctx.session,
            request_id=ctx.request_id,
            link=link,
            progress=meta.get("progress_token", meta.get("progressToken")) is not None,
            meta=meta,
            input_responses=responses,
            request_state=state if isinstance(state, str) else None,
            owner=token.id if token is not None else "",
            input_relay=self.hub.gw.input_relay if link.modern else None,
        )
        with relay.acting_for(target):
            return await call_next(ctx)


class FeatureHandlers:
    """The resources, prompts, completion and logging handlers of the MCP endpoints."""

    def __init__(self, gw: Gateway, hub: Hub, endpoint_of: EndpointOf, *, via: str) -> None:
        self.gw = gw
        self.hub = hub
        self.endpoint_of = endpoint_of
        self.via = via

    def _ctx(self, ctx: ServerRequestContext[Any, Any]) -> CallContext:
        return CallContext(via=self.via, client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))

    def _view(self, ctx: ServerRequestContext[Any, Any]) -> View:
        return self.endpoint_of(ctx).view

    @property
    def page_size(self) -> int:
        return int(getattr(self.gw.settings, "list_page_size", 100))

    async def _gather(self, view: View, kind: features.ListKind) -> list[tuple[str, Any]]:
        """``(server, item)`` of every server the view shows, in server-name order."""
        servers = view.servers(self.gw.feature_servers())
        found: dict[str, list[Any]] = {}

        async def one(server: str) -> None:
            try:
                found[server] = await features.list_items(self.gw.pool.get(server), kind)
            except ProxyError as exc:
                logger.info("cannot list the %s of %s: %s", kind, server, exc)

        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(one, server)
        return [(server, item) for server in servers for item in found.get(server, [])]

    # -- resources -------------------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        view = self._view(ctx)
        items = [
            uris.renamed(r, uri=view.uri_out(server, r.uri)) for server, r in await self._gather(view, "resources")
        ]
        chunk, cursor = page(items, params.cursor if params else None, self.page_size, item_key)
        return types.ListResourcesResult(resources=chunk, next_cursor=cursor)

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        view = self._view(ctx)
        items = [
            uris.renamed(t, uri_template=view.uri_out(server, t.uri_template))
            for server, t in await self._gather(view, "templates")
        ]
        chunk, cursor = page(items, params.cursor if params else None, self.page_size, item_key)
        return types.ListResourceTemplatesResult(resource_templates=chunk, next_cursor=cursor)

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        view = self._view(ctx)
        try:
            server, uri = view.uri_in(params.uri)
            upstream = self.gw.feature_upstream(server, "resources/read", self._ctx(ctx))
            result = await features.read_resource(upstream, uri)
        except relay.InputRequiredRelay as relayed:
            return relayed.result
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        return uris.rewrite_read_result(result, view.rewrite(server))

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams) -> Any:
        view = self._view(ctx)
        downstream = self.hub.downstream(ctx)
        try:
            server, uri = view.uri_in(params.uri)
            self.gw.feature_upstream(server, "resources/subscribe", self._ctx(ctx))
            if downstream is None:
                raise MCPError(types.INVALID_REQUEST, "resources/subscribe needs a session")
            await self.hub.subscribe(downstream, server, uri, params.uri)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        return types.EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams) -> Any:
        view = self._view(ctx)
        downstream = self.hub.downstream(ctx)
        try:
            server, uri = view.uri_in(params.uri)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        if downstream is not None:
            self.hub.unsubscribe(downstream, server, uri, params.uri)
        return types.EmptyResult()

    async def listen(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        try:
            handler = self.hub.listen_handler(self.endpoint_of(ctx))
            result: types.SubscriptionsListenResult = await handler(ctx, params)
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        return result

    # -- prompts ---------------------------------------------------------------------------

    async def list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        view = self._view(ctx)
        items = [
            uris.renamed(p, name=view.prompt_out(server, p.name)) for server, p in await self._gather(view, "prompts")
        ]
        chunk, cursor = page(items, params.cursor if params else None, self.page_size, item_key)
        return types.ListPromptsResult(prompts=chunk, next_cursor=cursor)

    async def get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        view = self._view(ctx)
        try:
            server, name = view.prompt_in(params.name)
            upstream = self.gw.feature_upstream(server, "prompts/get", self._ctx(ctx))
            result = await features.get_prompt(upstream, name, params.arguments)
        except relay.InputRequiredRelay as relayed:
            return relayed.result
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc
        return uris.rewrite_prompt_result(result, view.rewrite(server))

    # -- completion ------------------------------------------------------------------------

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        view = self._view(ctx)
        ref = params.ref
        try:
            if isinstance(ref, types.PromptReference):
                server, name = view.prompt_in(ref.name)
                upstream_ref: types.PromptReference | types.ResourceTemplateReference = ref.model_copy(
                    update={"name": name}
                )
            else:
                server, uri = view.uri_in(ref.uri)
                upstream_ref = ref.model_copy(update={"uri": uri})
            upstream = self.gw.feature_upstream(server, "completion/complete", self._ctx(ctx))
            return await features.complete(upstream, params.model_copy(update={"ref": upstream_ref}))
        except ProxyError as exc:
            raise to_mcp_error(exc) from exc

    # -- logging ---------------------------------------------------------------------------

    async def set_level(self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams) -> Any:
        view = self._view(ctx)
        servers = view.servers(self.gw.feature_servers())
        await self.hub.set_level(self.hub.downstream(ctx), servers, params.level)
        return types.EmptyResult()


def is_modern_request(ctx: ServerRequestContext[Any, Any]) -> bool:
    return is_modern(ctx)
