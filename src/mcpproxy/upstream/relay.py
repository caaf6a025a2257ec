"""Who an upstream's messages are for: the client request an upstream request was made for.

Every upstream keeps one shared session, so when an upstream sends something that belongs to
one client (a progress update, a log line, a sampling, elicitation or roots request), mcpproxy
must find that client, and never another one. The endpoint that serves a client's request
sets a ``RelayTarget`` for the duration of the request (``acting_for``); the upstream call
made inside it registers that target as in flight on its server (``tracking``).

Attribution (``attribute``), most exact first:

1. Progress carries the token mcpproxy minted for one upstream request: the SDK hands it to
   that request's own callback. Exact on every transport.
2. Over streamable HTTP an upstream sends what belongs to a request on that request's own
   response stream; the SDK runs the handler in the context of the task that sent the
   request, so ``relay_target`` is the client's request. Exact.
3. Otherwise (stdio, SSE, or an upstream that used its standalone stream): when exactly one
   client connection has requests in flight on that server, it is theirs. When several do,
   it cannot be known, and nothing is sent to anybody (a sampling or elicitation request is
   refused with an error the upstream sees).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.message import ServerMessageMetadata

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mcp import Client

logger = logging.getLogger(__name__)

LOG_LEVELS: tuple[types.LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


def level_at_least(level: str, minimum: str | None) -> bool:
    """Whether a log entry at ``level`` passes a client's ``minimum`` (``None``: everything passes)."""
    if minimum is None or minimum not in LOG_LEVELS:
        return True
    return level not in LOG_LEVELS or LOG_LEVELS.index(level) >= LOG_LEVELS.index(minimum)


@dataclass(eq=False)
class ClientLink:
    """One client connection as the relay knows it.

    Attributes:
        modern: The connection speaks the stateless 2026-07-28 era (no server-to-client requests).
        capabilities: What the client declared (sampling, elicitation, roots).
        log_level: The level the client set with ``logging/setLevel`` (handshake era).
    """

    modern: bool
    capabilities: types.ClientCapabilities | None = None
    log_level: types.LoggingLevel | None = None

    def declares(self, method: str, params: Any = None) -> bool:
        """Whether the client declared the capability a server-to-client ``method`` needs."""
        caps = self.capabilities
        if caps is None:
            return False
        if method == "sampling/createMessage":
            return caps.sampling is not None
        if method == "roots/list":
            return caps.roots is not None
        if method == "elicitation/create":
            if caps.elicitation is None:
                return False
            mode = getattr(params, "mode", None) or "form"
            if mode == "url":
                return caps.elicitation.url is not None
            # An empty elicitation capability means form (the 2025-06-18 shape).
            return caps.elicitation.form is not None or caps.elicitation.url is None
        return False

    def may_give_input(self) -> bool:
        """Whether the client declared any capability a server-to-client request needs."""
        caps = self.capabilities
        if caps is None:
            return False
        return caps.sampling is not None or caps.elicitation is not None or caps.roots is not None


class PendingInputs(Protocol):
    """An upstream call kept pending for a stateless-era client (``upstream.inputs``): the
    upstream's input requests are asked of the client through ``input_required``."""

    async def ask(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData: ...


class InputRelayService(Protocol):
    """Runs a stateless-era client's tool call on a handshake-era upstream (``upstream.inputs``)."""

    async def call(
        self,
        server: str,
        client: Client,
        tool: str,
        arguments: Mapping[str, Any],
        target: RelayTarget,
        *,
        meta: types.RequestParamsMeta | None,
    ) -> types.CallToolResult: ...


@dataclass(eq=False)
class RelayTarget:
    """One client request being served, as upstream messages find it.

    Attributes:
        session: The request's server session (its request-scoped channel reaches the client).
        request_id: The client's request id (``related_request_id`` of what is sent back).
        link: The client connection.
        progress: Whether the client asked for progress (its request carried a progress token).
        meta: The client's ``_meta`` (trace context, log level opt-in) for the upstream request.
        input_responses: A stateless-era client's answers to an earlier ``input_required``.
        request_state: The opaque state that came with it, passed back untouched.
        owner: Who the request acts for (an agent token id, ``""``: API key or no auth).
        input_relay: For a stateless-era client: turns a handshake-era upstream's input requests
            into ``input_required`` (``None``: not available).
        pending: The pending call this upstream request belongs to, when it is relayed that way.
        waiting: The request only waits for a pending call (whose own upstream request is the
            one messages belong to).
    """

    session: ServerSession
    request_id: types.RequestId | None
    link: ClientLink
    progress: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    input_responses: types.InputResponses | None = None
    request_state: str | None = None
    owner: str = ""
    input_relay: InputRelayService | None = None
    pending: PendingInputs | None = None
    waiting: bool = False

    def progress_callback(self) -> ProgressFnT | None:
        """A callback that forwards the upstream's progress on this request's own token, if asked."""
        if not self.progress:
            return None
        session = self.session

        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await session.report_progress(progress, total, message)

        return forward


relay_target: ContextVar[RelayTarget | None] = ContextVar("mcpproxy_relay_target", default=None)
"""The client request the current task serves (``None`` outside one)."""

_in_flight: dict[str, dict[RelayTarget, int]] = {}


@contextmanager
def acting_for(target: RelayTarget) -> Iterator[RelayTarget]:
    """Serve one client request: upstream calls made inside know whom they are for."""
    token = relay_target.set(target)
    try:
        yield target
    finally:
        relay_target.reset(token)


@contextmanager
def tracking(server: str) -> Iterator[RelayTarget | None]:
    """Register the current client request as in flight on ``server`` while the block runs."""
    target = relay_target.get()
    if target is None:
        yield None
        return
    targets = _in_flight.setdefault(server, {})
    targets[target] = targets.get(target, 0) + 1
    try:
        yield target
    finally:
        left = targets.get(target, 1) - 1
        if left <= 0:
            targets.pop(target, None)
        else:
            targets[target] = left
        if not targets:
            _in_flight.pop(server, None)


def in_flight(server: str) -> list[RelayTarget]:
    """Client requests in flight on ``server``, oldest first."""
    return list(_in_flight.get(server, {}))


def attribute(server: str) -> RelayTarget | None:
    """The client request an upstream message of ``server`` belongs to, or ``None`` if unknown."""
    target = relay_target.get()
    if target is not None:
        return target
    targets = [t for t in in_flight(server) if not t.waiting]
    links = {id(t.link) for t in targets}
    if len(links) == 1:
        return targets[-1]
    if len(links) > 1:
        logger.debug("upstream %s: message with %d clients in flight cannot be attributed", server, len(links))
    return None


def upstream_meta(
    target: RelayTarget | None, *, modern_upstream: bool, base: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The ``_meta`` an upstream request carries for ``target``: trace context, and for a
    stateless-era upstream the log level opt-in (the client's own, or for a handshake-era
    client the level it set, everything when it set none)."""
    meta = dict(base or {})
    if target is not None:
        for key in ("traceparent", "tracestate", "baggage"):
            if key in target.meta:
                meta.setdefault(key, target.meta[key])
        level = target.meta.get(types.LOG_LEVEL_META_KEY)
        if level is None and not target.link.modern:
            level = target.link.log_level or "debug"
        if level is not None and modern_upstream:
            meta.setdefault(types.LOG_LEVEL_META_KEY, level)
    return meta or None


class InputRequiredRelay(Exception):
    """An upstream answered ``input_required`` for a client that retries by itself (stateless
    era): the result goes back to the client untouched (``requestState`` stays opaque)."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


def _refusal(server: str, method: str, reason: str) -> types.ErrorData:
    logger.info("upstream %s: %s refused: %s", server, method, reason)
    return types.ErrorData(code=types.INVALID_REQUEST, message=f"mcpproxy: {method} cannot be relayed: {reason}")


class UpstreamRelay:
    """The client-side callbacks of one upstream session: sampling, elicitation and roots
    requests go to the one client whose request caused them (see the module docstring).

    Args:
        server: The upstream's name.
        timeout: Seconds a client may take to answer.
    """

    def __init__(self, server: str, timeout: float) -> None:
        self.server = server
        self.timeout = timeout

    def _target(self, method: str, params: Any = None) -> RelayTarget | types.ErrorData:
        target = attribute(self.server)
        if target is None:
            if len({id(t.link) for t in in_flight(self.server) if not t.waiting}) > 1:
                return _refusal(self.server, method, "several clients have requests in flight on this server")
            return _refusal(self.server, method, "no client request of this server is in flight")
        if target.link.modern and target.pending is None:
            return _refusal(
                self.server, method, "the client speaks the stateless 2026-07-28 protocol, which has no such request"
            )
        if not target.link.declares(method, params):
            return _refusal(self.server, method, "the client did not declare that capability")
        return target

    async def _ask(self, target: RelayTarget, request: Any, result_type: Any) -> Any:
        if target.pending is not None:
            # A stateless-era client: asked through input_required on its pending call.
            return await target.pending.ask(request)
        try:
            return await target.session.send_request(
                request,
                result_type,
                request_read_timeout_seconds=self.timeout,
                metadata=ServerMessageMetadata(related_request_id=target.request_id),
            )
        except MCPError as exc:
            return exc.error
        except NoBackChannelError:
            return _refusal(self.server, request.method, "the client's connection has no channel for requests")

    async def sampling(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        """Relay ``sampling/createMessage`` to the client whose request caused it."""
        target = self._target("sampling/createMessage")
        if isinstance(target, types.ErrorData):
            return target
        tools_mode = params.tools is not None or params.tool_choice is not None
        result_type = types.CreateMessageResultWithTools if tools_mode else types.CreateMessageResult
        answer: types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData = await self._ask(
            target, types.CreateMessageRequest(params=params), result_type
        )
        return answer

    async def elicitation(
        self, context: Any, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        """Relay ``elicitation/create`` (form or URL mode) to the client whose request caused it."""
        target = self._target("elicitation/create", params)
        if isinstance(target, types.ErrorData):
            return target
        answer: types.ElicitResult | types.ErrorData = await self._ask(
            target, types.ElicitRequest(params=params), types.ElicitResult
        )
        return answer

    async def roots(self, context: Any) -> types.ListRootsResult | types.ErrorData:
        """Relay ``roots/list`` to the client whose request caused it."""
        target = self._target("roots/list")
        if isinstance(target, types.ErrorData):
            return target
        answer: types.ListRootsResult | types.ErrorData = await self._ask(
            target, types.ListRootsRequest(), types.ListRootsResult
        )
        return answer
