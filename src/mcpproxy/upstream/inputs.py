"""A stateless-era client in front of a handshake-era upstream: input requests as ``input_required``.

A handshake-era server asks for sampling, elicitation or roots in the middle of a tool call, as
a request to its client; a stateless-era (2026-07-28) client cannot be sent a request, but can
be answered ``input_required`` and retry with its answers. ``InputRelay`` maps one onto the other:

1. The client's call goes upstream in a task of the relay's own (the upstream call must outlive
   the client's request). The client's request waits for whichever comes first: the result, or
   an input request from the upstream.
2. An input request is answered ``input_required``: the pending requests under keys of
   mcpproxy's own, and ``requestState`` an opaque handle of the pending call (random,
   unguessable). The upstream call stays pending.
3. The client retries the same tool with ``inputResponses`` and that ``requestState``: the
   answers go to the waiting upstream requests, and the retry waits again for the result or
   the next input requests.

A pending call is bound to the client that started it (its agent token, or the API key / no-auth
principal) and to the server and tool; a retry whose ``requestState`` is unknown, expired,
finished, or someone else's is refused (``UnknownRequestState``). The client has
``input_relay_timeout`` seconds to answer; then the pending call is cancelled upstream. At most
``input_relay_max_pending`` calls are pending at once (past that: ``Overloaded``). A client that
abandons a request while the upstream works cancels the pending call.

Only a client that declared a capability a server-to-client request needs (sampling,
elicitation, roots) is served this way; for others the upstream's request is refused as before,
and the call runs inline with no task of its own.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp import Client
from mcp.shared.dispatcher import ProgressFnT

from mcpproxy.errors import Overloaded, UnknownRequestState, UpstreamProtocolError
from mcpproxy.upstream import relay
from mcpproxy.upstream.errors import map_upstream_errors

logger = logging.getLogger(__name__)

_RESPONSE_TYPES: dict[str, tuple[type[Any], ...]] = {
    "sampling/createMessage": (types.CreateMessageResult, types.CreateMessageResultWithTools),
    "elicitation/create": (types.ElicitResult,),
    "roots/list": (types.ListRootsResult,),
}


class _Ask:
    """One input request of the upstream, waiting for the client's answer."""

    def __init__(self, request: types.InputRequest) -> None:
        self.request = request
        self.answered = anyio.Event()
        self.response: types.InputResponse | None = None


class PendingCall:
    """One upstream tool call kept pending between a stateless-era client's retries."""

    def __init__(self, relay_: InputRelay, state: str, owner: str, server: str, tool: str) -> None:
        self._relay = relay_
        self.state = state
        self.owner = owner
        self.server = server
        self.tool = tool
        self.asks: dict[str, _Ask] = {}
        self.result: types.CallToolResult | None = None
        self.error: BaseException | None = None
        self.done = False
        self.changed = anyio.Event()
        self.scope = anyio.CancelScope()
        self.progress: ProgressFnT | None = None
        self._keys = 0

    async def forward_progress(self, progress: float, total: float | None, message: str | None) -> None:
        """The upstream's progress goes to the client request waiting now, if it asked for progress."""
        sink = self.progress
        if sink is None:
            return
        try:
            await sink(progress, total, message)
        except Exception:  # that request may have just ended: progress is best effort
            logger.debug("upstream %s: progress not forwarded", self.server, exc_info=True)

    def _poke(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def unanswered(self) -> dict[str, types.InputRequest]:
        return {key: ask.request for key, ask in self.asks.items() if not ask.answered.is_set()}

    async def ask(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Called by the upstream relay: wait for the client's answer to ``request``."""
        self._keys += 1
        key = f"{request.method.split('/')[0]}-{self._keys}"
        pending = _Ask(request)
        self.asks[key] = pending
        self._poke()
        with anyio.move_on_after(self._relay.timeout):
            await pending.answered.wait()
        if pending.response is None:
            logger.info("upstream %s: no answer to %s within %g s; cancelling the call", self.server, key,
                        self._relay.timeout)
            self._relay.drop(self)
            self.scope.cancel()
            return types.ErrorData(
                code=types.REQUEST_TIMEOUT, message=f"mcpproxy: the client did not answer {request.method} in time"
            )
        return pending.response

    def answer(self, responses: Mapping[str, Any]) -> None:
        """The client's answers: each goes to the request with its key (answers of the wrong
        kind, or to unknown keys, are left out; that request is asked again)."""
        for key, response in responses.items():
            pending = self.asks.get(key)
            if pending is None or pending.answered.is_set():
                continue
            if not isinstance(response, _RESPONSE_TYPES.get(pending.request.method, ())):
                continue
            pending.response = response
            pending.answered.set()

    def finish(self, *, result: types.CallToolResult | None = None, error: BaseException | None = None) -> None:
        self.result = result
        self.error = error
        self.done = True
        self._poke()


class InputRelay:
    """The pending calls of one gateway (see the module docstring).

    Args:
        timeout: Seconds a client has to answer an ``input_required``.
        max_pending: Most calls pending at once.
    """

    def __init__(self, timeout: float, max_pending: int) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[str, PendingCall] = {}
        self._tg: TaskGroup | None = None

    def __len__(self) -> int:
        return len(self._pending)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[InputRelay]:
        """Own the pending calls' tasks; leaving cancels every call still pending."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                self._pending.clear()
                tg.cancel_scope.cancel()

    def drop(self, pending: PendingCall) -> None:
        if self._pending.get(pending.state) is pending:
            del self._pending[pending.state]

    async def call(
        self,
        server: str,
        client: Client,
        tool: str,
        arguments: Mapping[str, Any],
        target: relay.RelayTarget,
        *,
        meta: types.RequestParamsMeta | None,
    ) -> types.CallToolResult:
        """Start or resume the call ``target`` stands for: its result, or ``InputRequiredRelay``.

        Raises:
            InputRequiredRelay: The upstream asked for input; the result goes to the client.
            UnknownRequestState: The retry's ``requestState`` names no pending call of this client.
            Overloaded: Too many calls pending.
            UpstreamError: The upstream call failed.
        """
        target.waiting = True
        if target.request_state is not None:
            pending = self._pending.get(target.request_state)
            if pending is None or (pending.owner, pending.server, pending.tool) != (target.owner, server, tool):
                raise UnknownRequestState(
                    "requestState names no pending call of this client for this tool",
                    hint="it expired, was already answered to the end, or belongs to another call; "
                    "call the tool again without requestState",
                    data={"server": server, "tool": tool},
                )
            pending.answer(target.input_responses or {})
            pending.progress = target.progress_callback()
        else:
            if self._tg is None:
                raise Overloaded("mcpproxy is shutting down and takes no new calls")
            if len(self._pending) >= self.max_pending:
                raise Overloaded(
                    f"{len(self._pending)} calls already wait for their clients' input",
                    hint="answer or abandon pending calls, or raise input_relay_max_pending",
                )
            pending = PendingCall(self, secrets.token_urlsafe(32), target.owner, server, tool)
            pending.progress = target.progress_callback()
            self._pending[pending.state] = pending
            self._tg.start_soon(self._drive, pending, client, dict(arguments), target, meta)
        return await self._next(pending)

    async def _next(self, pending: PendingCall) -> types.CallToolResult:
        """Wait for the result or the next input requests (the caller bounds the wait)."""
        handed_over = False
        try:
            while True:
                if pending.done:
                    handed_over = True
                    self.drop(pending)
                    if pending.error is not None:
                        raise pending.error
                    if pending.result is None:
                        raise UpstreamProtocolError(f"server '{pending.server}' gave no result")
                    return pending.result
                unanswered = pending.unanswered()
                if unanswered:
                    handed_over = True
                    raise relay.InputRequiredRelay(
                        types.InputRequiredResult(input_requests=unanswered, request_state=pending.state)
                    )
                await pending.changed.wait()
        finally:
            pending.progress = None
            if not handed_over:
                # The client's request ended while the upstream worked (timeout, disconnect).
                self.drop(pending)
                pending.scope.cancel()

    async def _drive(
        self,
        pending: PendingCall,
        client: Client,
        arguments: dict[str, Any],
        target: relay.RelayTarget,
        meta: types.RequestParamsMeta | None,
    ) -> None:
        """The upstream call, in the relay's own task, asking for input through ``pending``."""
        inner = dataclasses.replace(
            target, pending=pending, waiting=False, progress=False, input_responses=None, request_state=None
        )
        with pending.scope:
            try:
                with relay.acting_for(inner), relay.tracking(pending.server), map_upstream_errors(pending.server):
                    result = await client.call_tool(
                        pending.tool, arguments, progress_callback=pending.forward_progress, meta=meta
                    )
            except Exception as exc:  # noqa: BLE001 - handed to the client's request, which raises it
                pending.finish(error=exc)
                return
            pending.finish(result=result)
        if not pending.done:
            pending.finish(error=UpstreamProtocolError(f"the call to server '{pending.server}' was cancelled"))
