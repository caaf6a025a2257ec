"""The bridge: the only way from a running program to the gateway.

Design. A program reaches the gateway through four operations and nothing else: ``call``
(one tool), ``calls`` (several in parallel), ``search`` and ``describe``. Every request
carries the execution's capability, a random token minted for this execution alone and
checked in constant time; a request without it, or after the execution ended, is refused
and ends the program. The capability names an execution, it is not a credential: the
worker that holds it is started for one execution, talks to the gateway only over its own
stdin/stdout (the OS sandbox has no network at all, so the gateway's HTTP port is out of
reach), and is killed when the execution ends.

Every tool call goes through ``Gateway.call_tool`` — quarantine, pins, tiers, the caller's
token, argument validation, sanitisation, truncation and the activity record — with a
``CallContext`` that says ``via="code"``, carries the caller's token and client, and names
the execution as the parent. Before that, the bridge applies what only an execution knows:
``allowed_tools`` (a refusal is recorded as a policy decision) and ``max_tool_calls``
(every attempt counts, refused or not). A refused call comes back to the program as an
error envelope, which the program's runtime raises as ``ToolError``: the program can catch
it.

Results are turned into plain values: structured content when the tool gave some, else the
text (parsed as JSON when it is JSON). A result the pipeline truncated for a model's context
is read back whole from the response cache (up to ``MAX_VALUE_CHARS``): a program's results
never enter the model's context, which is the point of running code.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import mcp_types as types

from mcpproxy.codemode.model import Limits, ToolCallLog, json_safe
from mcpproxy.codemode.scope import ToolScope
from mcpproxy.codemode.stubs import Namespace, path_of, py_signature, ts_signature
from mcpproxy.errors import InvalidArguments, PolicyDenied, ProxyError
from mcpproxy.gateway import CallContext, Gateway, SearchFilters, describe_entries
from mcpproxy.observe.events import OpsEvent
from mcpproxy.routing.catalog import Tier
from mcpproxy.upstream import relay

MAX_VALUE_CHARS = 16_000_000
"""Characters of one tool result a program receives at most (a truncated result is read back up to this)."""

MAX_PARALLEL = 16
"""Tool calls of one ``call_tools`` running at once."""

MAX_BATCH = 100
"""Tool calls one ``call_tools`` may ask for."""

SEARCH_LIMIT = 50
"""Most tools one ``search_tools`` returns."""

Envelope = dict[str, Any]
"""``{"ok": true, "value": ...}`` or ``{"ok": false, "error": {"kind", "message", "hint", "tool"}}``."""


class CapabilityError(Exception):
    """A request did not carry the execution's capability: the program is stopped."""


def error_envelope(kind: str, message: str, *, hint: str | None = None, tool: str | None = None) -> Envelope:
    error: dict[str, Any] = {"kind": kind, "message": message}
    if hint:
        error["hint"] = hint
    if tool is not None:
        error["tool"] = tool
    return {"ok": False, "error": error}


def _text_of(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


def _parse(text: str) -> Any:
    """``text`` as the JSON value it spells, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _block(block: types.ContentBlock) -> Any:
    if isinstance(block, types.TextContent):
        return _parse(block.text)
    return block.model_dump(by_alias=True, mode="json", exclude_none=True)


def result_value(gw: Gateway, result: types.CallToolResult) -> Any:
    """What a program receives for a tool result (see the module docstring)."""
    truncated = (result.meta or {}).get("mcpproxy/truncated")
    if isinstance(truncated, dict) and isinstance(truncated.get("key"), str):
        total = int(truncated.get("total") or 0)
        try:
            page = gw.read_cache(truncated["key"], 0, max(1, min(total, MAX_VALUE_CHARS)))
        except ProxyError:
            page = None
        if page is not None:
            others = [b for b in result.content if not isinstance(b, types.TextContent)]
            value = _parse(page.text)
            return value if not others else [value, *(_block(b) for b in others)]
    structured = result.structured_content
    if structured is not None:
        # A tool returning a plain value (FastMCP wraps it as {"result": value}): the value itself.
        texts = _text_of(result)
        if set(structured) == {"result"} and len(texts) == 1 and _parse(texts[0]) == structured["result"]:
            return structured["result"]
        return structured
    blocks = list(result.content)
    if len(blocks) == 1:
        return _block(blocks[0])
    if not blocks:
        return None
    if all(isinstance(b, types.TextContent) for b in blocks):
        return _parse("\n".join(_text_of(result)))
    return [_block(b) for b in blocks]


class Bridge:
    """The gateway as one execution's program sees it.

    Args:
        gw: The gateway.
        ctx: The context of the ``code_execution`` call (token, client, trace ``_meta``).
        execution_id: The execution's id: the parent of every call made from the program.
        scope: The tools the program may use.
        limits: The execution's limits (``max_tool_calls``).
        tier: The highest tier the program's calls may use.
        spaces: The typed-function namespaces (to name functions in search results).
        language: The program's language (signatures in ``describe``).
        on_call: Told of each finished tool call (live progress).
    """

    def __init__(
        self,
        gw: Gateway,
        ctx: CallContext,
        *,
        execution_id: str,
        scope: ToolScope,
        limits: Limits,
        tier: Tier = Tier.DESTRUCTIVE,
        spaces: Mapping[str, Namespace] | None = None,
        language: str = "python",
        on_call: Callable[[ToolCallLog], None] | None = None,
    ) -> None:
        self.gw = gw
        self.ctx = ctx
        self.execution_id = execution_id
        self.scope = scope
        self.limits = limits
        self.tier = tier
        self.spaces = dict(spaces or {})
        self.language = language
        self.on_call = on_call
        self.capability = secrets.token_urlsafe(24)
        self.tool_calls: list[ToolCallLog] = []
        self.attempts = 0
        self.closed = False

    # -- the capability -------------------------------------------------------------------

    def check(self, capability: Any) -> None:
        """Raise ``CapabilityError`` unless ``capability`` is this execution's and it still runs."""
        if self.closed or not isinstance(capability, str) or not hmac.compare_digest(capability, self.capability):
            raise CapabilityError("a request without this execution's capability")

    def close(self) -> None:
        """The execution ended: every later request is refused."""
        self.closed = True

    async def handle(self, capability: Any, op: Any, payload: Any) -> Any:
        """One request from a program: check the capability, then run ``op``.

        Raises:
            CapabilityError: Wrong or expired capability.
        """
        self.check(capability)
        args = payload if isinstance(payload, dict) else {}
        if op == "call":
            return await self.call(args.get("name"), args.get("args"))
        if op == "calls":
            return await self.call_many(args.get("calls"))
        if op == "search":
            return self.search(args.get("query"), args.get("limit"))
        if op == "describe":
            return self.describe(args.get("name"))
        return error_envelope("invalid_arguments", f"unknown bridge operation {op!r}")

    # -- operations ------------------------------------------------------------------------

    def _log(self, name: str, started: float, ok: bool, error: str | None) -> None:
        entry = ToolCallLog(name=name, duration_ms=(time.perf_counter() - started) * 1000, ok=ok, error=error)
        self.tool_calls.append(entry)
        if self.on_call is not None:
            self.on_call(entry)

    def _refuse(self, name: str, started: float, exc: ProxyError) -> Envelope:
        self._log(name, started, False, exc.kind)
        return error_envelope(exc.kind, exc.message, hint=exc.hint, tool=name)

    async def call(self, name: Any, args: Any) -> Envelope:
        """Call one tool through the gateway's pipeline; an error envelope when refused or failed."""
        started = time.perf_counter()
        if not isinstance(name, str) or not name:
            return error_envelope("invalid_arguments", "call_tool needs a tool name like 'server:tool'")
        self.attempts += 1
        if self.attempts > self.limits.max_tool_calls:
            exc = PolicyDenied(
                f"this program may make {self.limits.max_tool_calls} tool calls and asked for more",
                hint="do more per call (call_tools batches), or ask for a higher max_tool_calls",
                data={"max_tool_calls": self.limits.max_tool_calls},
            )
            self._log(name, started, False, "tool_call_limit")
            return error_envelope("tool_call_limit", exc.message, hint=exc.hint, tool=name)
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return self._refuse(name, started, InvalidArguments("tool arguments must be an object (a dict)"))
        try:
            entry = self.gw.resolve(name)
        except ProxyError:
            entry = None  # the pipeline says why, and records it
        if entry is not None and self.scope.caller_may_use(entry) and not self.scope.allowed(entry):
            exc = PolicyDenied(
                f"'{entry.key}' is not in this program's allowed_tools",
                hint="add it to allowed_tools, or use a tool that is listed",
                data={"tool": entry.key},
            )
            self.gw.record_event(
                OpsEvent(
                    kind="policy",
                    action="deny",
                    check="allowed_tools",
                    server=entry.server,
                    tool=entry.name,
                    message=exc.message,
                    call_id=self.execution_id,
                )
            )
            return self._refuse(name, started, exc)
        ctx = CallContext(
            via="code",
            tier=self.tier,
            client=self.ctx.client,
            meta=self.ctx.meta,
            token=self.ctx.token,
            parent_id=self.execution_id,
        )
        target = relay.relay_target.get()
        # The program's progress is the execution's; an upstream's own progress is not relayed on top.
        # A program's call cannot be answered input_required: its input requests are refused.
        token = relay.relay_target.set(
            dataclasses.replace(target, progress=False, input_relay=None) if target is not None else None
        )
        try:
            result = await self.gw.call_tool(name, args, ctx)
        except ProxyError as exc:
            return self._refuse(name, started, exc)
        finally:
            relay.relay_target.reset(token)
        if result.is_error:
            text = "\n".join(_text_of(result)) or "the tool reported an error"
            self._log(name, started, False, "tool_error")
            return error_envelope("tool_error", text[:4000], tool=name)
        value = json_safe(result_value(self.gw, result))
        self._log(name, started, True, None)
        return {"ok": True, "value": value}

    async def call_many(self, calls: Any) -> Any:
        """Run several calls in parallel; one envelope per call, in order."""
        if not isinstance(calls, list) or len(calls) > MAX_BATCH:
            return error_envelope(
                "invalid_arguments", f"call_tools takes a list of at most {MAX_BATCH} [name, args] pairs or objects"
            )
        results: list[Envelope] = [error_envelope("invalid_arguments", "not run")] * len(calls)
        limiter = anyio.CapacityLimiter(MAX_PARALLEL)

        async def one(index: int, item: Any) -> None:
            if isinstance(item, dict):
                name, args = item.get("name"), item.get("args", item.get("arguments"))
            elif isinstance(item, list | tuple) and 1 <= len(item) <= 2:
                name, args = item[0], item[1] if len(item) == 2 else None
            else:
                results[index] = error_envelope("invalid_arguments", "each call is [name, args] or {name, args}")
                return
            async with limiter:
                results[index] = await self.call(name, args)

        async with anyio.create_task_group() as tg:
            for index, item in enumerate(calls):
                tg.start_soon(one, index, item)
        return {"ok": True, "value": results}

    def _function(self, key: str) -> str | None:
        entry = self.gw.catalog.get(*key.split(":", 1)) if ":" in key else None
        return path_of(entry, self.spaces) if entry is not None else None

    def search(self, query: Any, limit: Any) -> Envelope:
        """Tools for ``query`` among those the program may use, best first."""
        if not isinstance(query, str) or not query.strip():
            return error_envelope("invalid_arguments", "search_tools needs a query string")
        count = limit if isinstance(limit, int) and not isinstance(limit, bool) else 10
        count = max(1, min(count, SEARCH_LIMIT))
        filters = SearchFilters.for_token(self.ctx.token)
        found = self.gw.search(query, SEARCH_LIMIT if self.scope.patterns is not None else count, filters,
                               client=self.ctx.client)
        out = []
        for match in found:
            if not self.scope.permits(match.entry):
                continue
            item = describe_entries([match.entry])[0]
            item["score"] = round(match.score, 4)
            function = path_of(match.entry, self.spaces)
            if function is not None:
                item["function"] = function
            out.append(item)
            if len(out) >= count:
                break
        return {"ok": True, "value": out}

    def describe(self, name: Any) -> Envelope:
        """The full description and schema of one tool the program may use."""
        if not isinstance(name, str) or not name:
            return error_envelope("invalid_arguments", "describe_tool needs a tool name like 'server:tool'")
        try:
            entry = self.gw.resolve(name)
        except ProxyError as exc:
            return error_envelope(exc.kind, exc.message, hint=exc.hint, tool=name)
        if not self.scope.permits(entry):
            return error_envelope("not_found", f"no tool '{name}' this program may use", tool=name)
        item = describe_entries([entry])[0]
        for ns in self.spaces.values():
            for fn in ns.functions:
                if fn.key == entry.key:
                    item["function"] = f"tools.{ns.ident}.{fn.ident}"
                    item["signature"] = ts_signature(fn) if self.language == "typescript" else py_signature(fn)
        return {"ok": True, "value": item}
