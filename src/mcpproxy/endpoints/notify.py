"""Everything mcpproxy sends to connected clients without being asked in that moment.

The ``Hub`` knows every client connection of the MCP endpoints and tells them what changed:

- ``notifications/{tools,prompts,resources}/list_changed`` when an upstream says its list
  changed, when a server becomes ready or goes away (added, removed, enabled, disabled,
  lost), and for tools whenever the list an endpoint shows really differs (a fingerprint, so
  health-check re-lists stay silent). Handshake-era clients get notifications on their
  standalone stream; stateless-era clients through ``subscriptions/listen`` (one
  ``SubscriptionBus`` per endpoint).
- ``notifications/resources/updated`` for the URIs a client subscribed to, under the URI it
  subscribed with. Upstream subscriptions are shared and counted: the first client subscribes
  upstream (``resources/subscribe``, or a ``subscriptions/listen`` stream for a stateless-era
  upstream), the last one to leave unsubscribes, and they are renewed when the upstream
  reconnects.
- Log lines of an upstream: to the client request they belong to (``relay.attribute``), at the
  client's level; a line that belongs to no request goes to handshake-era clients that asked
  for logs with ``logging/setLevel``.

Sends are best-effort and bounded; one slow or gone client never holds up another.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpproxy.endpoints.views import View
from mcpproxy.errors import ProxyError
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.upstream import features, relay
from mcpproxy.upstream.base import ServerStatus, UpstreamState

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
"""Seconds one notification to one client may take before it is given up."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One MCP endpoint: its name, what it shows, and whether its tool list follows upstreams."""

    name: str
    view: View
    dynamic_tools: bool = True


@dataclass(eq=False)
class Downstream:
    """A handshake-era client connection (stateless-era clients have none)."""

    connection: Any
    link: relay.ClientLink
    endpoint: Endpoint
    subscriptions: set[tuple[str, str, str]] = field(default_factory=set)
    """``(server, upstream URI, URI as the client knows it)``."""


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Any:
    """The SDK connection behind a request (one per handshake-era client)."""
    return getattr(ctx.session, "_connection", None)


def is_modern(ctx: ServerRequestContext[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


class Hub:
    """Client connections and change notifications for every MCP endpoint of one gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._downstreams: dict[int, Downstream] = {}
        self._buses: dict[str, InMemorySubscriptionBus] = {}
        self._listen_handlers: dict[str, ListenHandler] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._fingerprints: dict[str, str] = {}
        self._ready: set[str] = set()
        self._upstream_subs: dict[tuple[str, str], int] = {}
        self._upstream_listens: dict[tuple[str, str], anyio.CancelScope] = {}
        self._change_listens: dict[str, anyio.CancelScope] = {}
        self._stream_subs: dict[tuple[str, str], set[str]] = {}
        self._upstream_levels: dict[str, str] = {}
        self._tg: TaskGroup | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self.gw.add_listener(self._tools_maybe_changed)
        self.gw.state_listeners.append(self._on_state)
        self.gw.notification_listeners.append(self._on_notification)
        self._ready = set(self.gw.feature_servers())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        for handler in self._listen_handlers.values():
            handler.close()
        if self._on_state in self.gw.state_listeners:
            self.gw.state_listeners.remove(self._on_state)
        if self._on_notification in self.gw.notification_listeners:
            self.gw.notification_listeners.remove(self._on_notification)
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        return None

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._tg is not None:
            self._tg.start_soon(fn, *args)

    # -- endpoints and clients -------------------------------------------------------------

    def endpoint(self, name: str, view: View, *, dynamic_tools: bool = True) -> Endpoint:
        """The endpoint called ``name`` (created on first use)."""
        found = self._endpoints.get(name)
        if found is None:
            found = self._endpoints[name] = Endpoint(name, view, dynamic_tools)
            if dynamic_tools:
                self._fingerprints[name] = self._tools_fingerprint(found)
        return found

    def bus(self, endpoint: Endpoint) -> InMemorySubscriptionBus:
        bus = self._buses.get(endpoint.name)
        if bus is None:
            bus = self._buses[endpoint.name] = InMemorySubscriptionBus()
        return bus

    def link(self, ctx: ServerRequestContext[Any, Any], endpoint: Endpoint) -> relay.ClientLink:
        """The client of a request: per connection in the handshake era, per request in the stateless one."""
        capabilities = ctx.session.client_capabilities
        if is_modern(ctx):
            return relay.ClientLink(modern=True, capabilities=capabilities)
        connection = connection_of(ctx)
        if connection is None:
            return relay.ClientLink(modern=False, capabilities=capabilities)
        found = self._downstreams.get(id(connection))
        if found is None:
            found = Downstream(connection, relay.ClientLink(modern=False, capabilities=capabilities), endpoint)
            self._downstreams[id(connection)] = found
            connection.exit_stack.callback(self._forget, id(connection))
        elif capabilities is not None:
            found.link.capabilities = capabilities
        return found.link

    def downstream(self, ctx: ServerRequestContext[Any, Any]) -> Downstream | None:
        connection = connection_of(ctx)
        return None if connection is None else self._downstreams.get(id(connection))

    def _forget(self, key: int) -> None:
        gone = self._downstreams.pop(key, None)
        if gone is not None:
            for server, uri, _ in list(gone.subscriptions):
                self._release(server, uri)

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, downstream: Downstream, method: str, params: dict[str, Any] | None) -> None:
        with anyio.move_on_after(SEND_TIMEOUT):
            try:
                await downstream.connection.notify(method, params)
            except Exception:  # a gone client just misses it
                logger.debug("notification %s not delivered", method, exc_info=True)

    async def _broadcast(self, endpoints: list[Endpoint], method: str, event: ServerEvent) -> None:
        names = {e.name for e in endpoints}
        for endpoint in endpoints:
            bus = self._buses.get(endpoint.name)
            if bus is not None:
                await bus.publish(event)
        async with anyio.create_task_group() as tg:
            for downstream in list(self._downstreams.values()):
                if downstream.endpoint.name in names:
                    tg.start_soon(self._send, downstream, method, None)

    def _covering(self, server: str | None, *, tools: bool = False) -> list[Endpoint]:
        return [
            e
            for e in self._endpoints.values()
            if (server is None or e.view.covers(server)) and (e.dynamic_tools or not tools)
        ]

    # -- list changes ----------------------------------------------------------------------

    def _tools_fingerprint(self, endpoint: Endpoint) -> str:
        digest = hashlib.sha256()
        for entry in self.gw.visible_tools():
            if endpoint.view.covers(entry.server):
                digest.update(entry.server.encode() + b"\0")
                digest.update(entry.tool.model_dump_json(by_alias=True, exclude_none=True).encode())
        return digest.hexdigest()

    def _tools_maybe_changed(self) -> None:
        changed = []
        for endpoint in self._covering(None, tools=True):
            fingerprint = self._tools_fingerprint(endpoint)
            if self._fingerprints.get(endpoint.name) != fingerprint:
                self._fingerprints[endpoint.name] = fingerprint
                changed.append(endpoint)
        if changed:
            self._spawn(self._broadcast, changed, "notifications/tools/list_changed", ToolsListChanged())

    def _on_state(self, status: ServerStatus) -> None:
        server = status.name
        ready = status.state is UpstreamState.READY and self.gw.server_visible(server)
        if ready == (server in self._ready):
            return
        if ready:
            self._ready.add(server)
            self._spawn(self._became_ready, server)
        else:
            self._ready.discard(server)
            scope = self._change_listens.pop(server, None)
            if scope is not None:
                scope.cancel()
        self._spawn(self._features_changed, server)
        self._tools_maybe_changed()

    async def _features_changed(self, server: str) -> None:
        endpoints = self._covering(server)
        await self._broadcast(endpoints, "notifications/prompts/list_changed", PromptsListChanged())
        await self._broadcast(endpoints, "notifications/resources/list_changed", ResourcesListChanged())

    async def _became_ready(self, server: str) -> None:
        """Renew resource subscriptions and, for a stateless-era upstream, follow its changes."""
        try:
            upstream = self.gw.pool.get(server)
            client = upstream.live_client()
        except ProxyError:
            return
        for (name, uri), count in list(self._upstream_subs.items()):
            if name == server and count > 0:
                await self._subscribe_upstream(server, uri)
        level = self._upstream_levels.get(server)
        if level is not None:
            try:
                await features.set_logging_level(upstream, level)  # type: ignore[arg-type]
            except ProxyError as exc:
                logger.info("upstream %s: cannot set the log level: %s", server, exc)
        if features.is_modern(client) and self._tg is not None:
            scope = anyio.CancelScope()
            self._change_listens[server] = scope
            self._tg.start_soon(self._follow_changes, server, client, scope)

    async def _follow_changes(self, server: str, client: Any, scope: anyio.CancelScope) -> None:
        caps = client.server_capabilities
        wanted = {
            "tools_list_changed": bool(caps.tools and caps.tools.list_changed),
            "prompts_list_changed": bool(caps.prompts and caps.prompts.list_changed),
            "resources_list_changed": bool(caps.resources and caps.resources.list_changed),
        }
        if not any(wanted.values()):
            return
        with scope:
            try:
                async with client.listen(**wanted) as sub:
                    async for event in sub:
                        await self._upstream_event(server, event)
            except Exception as exc:  # noqa: BLE001 - the session ended; a new one starts its own stream
                logger.debug("upstream %s: listen stream ended: %s", server, exc)

    async def _upstream_event(self, server: str, event: ServerEvent) -> None:
        if isinstance(event, ToolsListChanged):
            self.gw.pool.get(server).request_relist()
        elif isinstance(event, PromptsListChanged):
            await self._broadcast(self._covering(server), "notifications/prompts/list_changed", event)
        elif isinstance(event, ResourcesListChanged):
            await self._broadcast(self._covering(server), "notifications/resources/list_changed", event)
        elif isinstance(event, ResourceUpdated):
            await self._resource_updated(server, event.uri)

    async def _on_notification(self, server: str, notification: types.ServerNotification) -> None:
        if not self.gw.server_visible(server):
            return
        if isinstance(notification, types.PromptListChangedNotification):
            await self._broadcast(self._covering(server), "notifications/prompts/list_changed", PromptsListChanged())
        elif isinstance(notification, types.ResourceListChangedNotification):
            await self._broadcast(
                self._covering(server), "notifications/resources/list_changed", ResourcesListChanged()
            )
        elif isinstance(notification, types.ResourceUpdatedNotification):
            await self._resource_updated(server, notification.params.uri)
        elif isinstance(notification, types.LoggingMessageNotification):
            await self._log(server, notification.params)

    # -- resource subscriptions ------------------------------------------------------------

    async def subscribe(self, downstream: Downstream, server: str, uri: str, client_uri: str) -> None:
        """A handshake-era client subscribes to ``uri`` of ``server`` (known to it as ``client_uri``)."""
        key = (server, uri, client_uri)
        if key in downstream.subscriptions:
            return
        await self._acquire(server, uri)
        downstream.subscriptions.add(key)

    def unsubscribe(self, downstream: Downstream, server: str, uri: str, client_uri: str) -> None:
        key = (server, uri, client_uri)
        if key in downstream.subscriptions:
            downstream.subscriptions.discard(key)
            self._release(server, uri)

    async def _acquire(self, server: str, uri: str) -> None:
        count = self._upstream_subs.get((server, uri), 0)
        if count == 0:
            await self._subscribe_upstream(server, uri, strict=True)
        self._upstream_subs[(server, uri)] = count + 1

    def _release(self, server: str, uri: str) -> None:
        count = self._upstream_subs.get((server, uri), 0) - 1
        if count > 0:
            self._upstream_subs[(server, uri)] = count
            return
        self._upstream_subs.pop((server, uri), None)
        scope = self._upstream_listens.pop((server, uri), None)
        if scope is not None:
            scope.cancel()
        else:
            self._spawn(self._unsubscribe_upstream, server, uri)

    async def _subscribe_upstream(self, server: str, uri: str, *, strict: bool = False) -> None:
        try:
            upstream = self.gw.pool.get(server)
            client = upstream.live_client()
            if features.is_modern(client):
                if self._tg is None:
                    return
                old = self._upstream_listens.pop((server, uri), None)
                if old is not None:
                    old.cancel()
                scope = anyio.CancelScope()
                self._upstream_listens[(server, uri)] = scope
                self._tg.start_soon(self._follow_resource, server, client, uri, scope)
            else:
                await features.subscribe(upstream, uri, on=True)
        except ProxyError:
            if strict:
                raise
            logger.info("upstream %s: cannot renew the subscription to %s", server, uri)

    async def _unsubscribe_upstream(self, server: str, uri: str) -> None:
        try:
            upstream = self.gw.pool.get(server)
            if not features.is_modern(upstream.live_client()):
                await features.subscribe(upstream, uri, on=False)
        except ProxyError as exc:
            logger.debug("upstream %s: unsubscribe from %s failed: %s", server, uri, exc)

    async def _follow_resource(self, server: str, client: Any, uri: str, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                async with client.listen(resource_subscriptions=[uri]) as sub:
                    async for event in sub:
                        await self._upstream_event(server, event)
            except Exception as exc:  # noqa: BLE001 - the session ended; renewed when it is ready again
                logger.debug("upstream %s: resource listen stream for %s ended: %s", server, uri, exc)

    async def _resource_updated(self, server: str, uri: str) -> None:
        async with anyio.create_task_group() as tg:
            for downstream in list(self._downstreams.values()):
                for name, upstream_uri, client_uri in downstream.subscriptions:
                    if name == server and upstream_uri == uri:
                        tg.start_soon(self._send, downstream, "notifications/resources/updated", {"uri": client_uri})
        for endpoint in self._covering(server):
            bus = self._buses.get(endpoint.name)
            if bus is not None:
                await bus.publish(ResourceUpdated(uri=endpoint.view.uri_out(server, uri)))

    def listen_handler(self, endpoint: Endpoint) -> Callable[..., Any]:
        """The ``subscriptions/listen`` handler of ``endpoint`` (stateless era): the SDK's stream,
        with the upstream subscriptions its resource filter needs held while it is open."""
        handler = self._listen_handlers.get(endpoint.name)
        if handler is None:
            handler = self._listen_handlers[endpoint.name] = ListenHandler(self.bus(endpoint))

        async def listen(
            ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
        ) -> types.SubscriptionsListenResult:
            held: list[tuple[str, str]] = []
            try:
                for client_uri in params.notifications.resource_subscriptions or ():
                    server, uri = endpoint.view.uri_in(client_uri)
                    self.gw.feature_upstream(server, "subscriptions/listen", CallContext(via="mcp"))
                    await self._acquire(server, uri)
                    held.append((server, uri))
                return await handler(ctx, params)
            finally:
                for server, uri in held:
                    self._release(server, uri)

        return listen

    # -- logging ---------------------------------------------------------------------------

    async def set_level(self, downstream: Downstream | None, servers: list[str], level: types.LoggingLevel) -> None:
        """A handshake-era client's ``logging/setLevel``: its own filter, and upstreams asked for
        at least that much (the most verbose level any client asked for)."""
        if downstream is not None:
            downstream.link.log_level = level
        for server in servers:
            current = self._upstream_levels.get(server)
            if current is not None and relay.level_at_least(level, current):
                continue
            self._upstream_levels[server] = level
            try:
                await features.set_logging_level(self.gw.pool.get(server), level)
            except ProxyError as exc:
                logger.info("upstream %s: cannot set the log level: %s", server, exc)

    async def _log(self, server: str, params: types.LoggingMessageNotificationParams) -> None:
        target = relay.attribute(server)
        if target is not None:
            if target.link.modern or relay.level_at_least(params.level, target.link.log_level):
                with anyio.move_on_after(SEND_TIMEOUT), warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    try:
                        await target.session.send_log_message(
                            params.level, params.data, params.logger, related_request_id=target.request_id
                        )
                    except Exception:
                        logger.debug("log line not delivered", exc_info=True)
            return
        if relay.in_flight(server):
            return  # several clients in flight: it cannot be known whose it is
        payload = params.model_dump(by_alias=True, mode="json", exclude_none=True)
        async with anyio.create_task_group() as tg:
            for downstream in list(self._downstreams.values()):
                level = downstream.link.log_level
                covered = level is not None and downstream.endpoint.view.covers(server)
                if covered and relay.level_at_least(params.level, level):
                    tg.start_soon(self._send, downstream, "notifications/message", payload)
