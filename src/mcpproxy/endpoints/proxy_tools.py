"""The proxy tools the model sees in retrieve mode, and what each one does.

The model searches (``retrieve_tools``), optionally reads full schemas (``describe_tool``),
then calls through the tool that matches its intent (``call_tool_read`` / ``_write`` /
``_destructive``). Results truncated at ``tool_response_limit`` are paged with
``read_cache``. ``upstream_servers`` manages servers. Every call goes through
``Gateway.call_tool``; this module only translates arguments and shapes answers.

A gateway error becomes a tool result with ``isError: true`` whose text says what went
wrong and what to do, and whose structured content carries the error code: the model can
read it and recover, which a JSON-RPC error would hide from it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import mcp_types as types
from pydantic import ValidationError

from mcpproxy.codemode import tool as code_tool
from mcpproxy.errors import ConfigError, InvalidArguments, ProxyError, quoted, unknown_keys
from mcpproxy.gateway import CallContext, Gateway, SearchFilters, caller_timeout, describe_entries
from mcpproxy.policy.guards import check_path, check_url
from mcpproxy.routing.catalog import Tier
from mcpproxy.secrets.masking import mask_config, mask_known, mask_target
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.state import spec_from_entry

INSTRUCTIONS = """\
mcpproxy gives you access to many tools on many MCP servers without listing them all.
Workflow:
1. retrieve_tools(query="what you want to do") -> the best matching tools, named "server:tool",
   each with its input schema and a `call_with` field naming the call tool to use.
2. Call the tool with the call tool named in `call_with`:
   call_tool_read(name, args) for read-only tools, call_tool_write(name, args) for tools that
   change state, call_tool_destructive(name, args) for tools that may delete or overwrite.
   A tool can always be called through a higher tier, never a lower one.
3. If a result says it was truncated, page through it with read_cache(key, offset, limit).
New servers and changed tools are held for a human's review; quarantine_security(op="list") shows them.
Use describe_tool(names=[...]) to see full schemas, and upstream_servers(op="list") to see servers.
For work with several steps, code_execution(code=...) runs a short program that calls the tools and returns only
its result (call_tool, call_tools in parallel, search_tools, typed tools.<server>.<tool>(...)).
"""

_CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Tool name as retrieve_tools returned it: 'server:tool'."},
        "args": {"type": "object", "description": "Arguments for the tool, matching its input schema."},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Optional: seconds this call may take at most (shortens the server's limit, never "
            "lengthens it).",
        },
    },
    "required": ["name"],
}

_SERVER_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "description": "Server name."},
    "command": {"type": "string", "description": "add/update: program to start (stdio server)."},
    "args": {"type": "array", "items": {"type": "string"}, "description": "add/update: its arguments."},
    "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "add/update: env."},
    "working_dir": {"type": "string", "description": "add/update: working directory (stdio)."},
    "url": {"type": "string", "description": "add/update: URL of an HTTP or SSE server."},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "HTTP headers."},
    "transport": {"type": "string", "enum": ["stdio", "http", "sse"], "description": "Override detection."},
    "lines": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "logs: how many lines."},
}


def proxy_tool_definitions(default_limit: int, settings: Settings | None = None) -> list[types.Tool]:
    """The proxy tools; ``code_execution`` (with the languages ``settings`` offer) only while it is on."""
    read_only = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
    return [
        types.Tool(
            name="retrieve_tools",
            title="Find tools",
            description=(
                "Search every connected MCP server for the tools that fit a task. Returns tools named "
                "'server:tool' with description, input schema, score and `call_with` (the call tool to use). "
                "The query may be a whole task with several steps; the tools of each step are found."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "What you want to do, in plain words: a short need or a whole task.",
                    },
                    "queries": {
                        "type": "array",
                        "items": {"type": "string"},
                        "maxItems": 10,
                        "description": "Several needs at once (instead of or besides 'query').",
                    },
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": default_limit},
                    "read_only_only": {"type": "boolean", "default": False},
                    "exclude_destructive": {"type": "boolean", "default": False},
                    "exclude_open_world": {"type": "boolean", "default": False},
                    "diversify": {
                        "type": "boolean",
                        "default": True,
                        "description": "Move near copies (the same tool on several servers) after distinct tools.",
                    },
                    "group_by_server": {
                        "type": "boolean",
                        "default": False,
                        "description": "Return the tools grouped by server, best-fitting servers first.",
                    },
                    "explain": {"type": "boolean", "default": False, "description": "Say why each tool matched."},
                },
            },
            annotations=read_only,
        ),
        types.Tool(
            name="describe_tool",
            title="Describe tools",
            description="Full descriptions and input schemas of the named tools ('server:tool').",
            input_schema={
                "type": "object",
                "properties": {"names": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
                "required": ["names"],
            },
            annotations=read_only,
        ),
        types.Tool(
            name="call_tool_read",
            title="Call a read-only tool",
            description="Call a tool that only reads (its call_with is call_tool_read).",
            input_schema=_CALL_SCHEMA,
            annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True),
        ),
        types.Tool(
            name="call_tool_write",
            title="Call a tool that changes state",
            description="Call a tool that creates or updates things (call_with call_tool_write), or a read tool.",
            input_schema=_CALL_SCHEMA,
            annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True),
        ),
        types.Tool(
            name="call_tool_destructive",
            title="Call a destructive tool",
            description="Call a tool that may delete or overwrite (call_with call_tool_destructive), or any tool.",
            input_schema=_CALL_SCHEMA,
            annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
        ),
        types.Tool(
            name="read_cache",
            title="Read a truncated result",
            description="Page through a tool result that was truncated; the truncated result gives the key.",
            input_schema={
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "offset": {"type": "integer", "minimum": 0, "default": 0},
                    "limit": {"type": "integer", "minimum": 1},
                },
                "required": ["key"],
            },
            annotations=read_only,
        ),
        types.Tool(
            name="quarantine_security",
            title="Inspect quarantined servers and held tools",
            description=(
                "List servers in quarantine and tools held for review (new, changed or flagged by the scanner), "
                "or inspect one server's tools with their scanner findings. Read-only: only a human can approve."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["list", "inspect"]},
                    "name": {"type": "string", "description": "inspect: the server to inspect."},
                },
                "required": ["op"],
            },
            annotations=read_only,
        ),
        types.Tool(
            name="upstream_servers",
            title="Manage upstream servers",
            description=(
                "List, add, update, remove, enable, disable or restart the MCP servers behind mcpproxy, "
                "or read a server's log."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "op": {
                        "type": "string",
                        "enum": ["list", "add", "update", "remove", "enable", "disable", "restart", "logs"],
                    },
                    **_SERVER_FIELDS,
                },
                "required": ["op"],
            },
            annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
        ),
        *([code_tool.code_execution_tool(settings)] if settings is None or settings.code_execution else []),
    ]


def json_result(value: Any) -> types.CallToolResult:
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value, ensure_ascii=False, indent=1))],
        structured_content=structured,
    )


def error_result(error: ProxyError) -> types.CallToolResult:
    text = f"Error ({error.kind}): {error.message}"
    if error.hint:
        text += f"\nHint: {error.hint}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=error.to_dict(), is_error=True
    )


def _int(args: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArguments(f"'{key}' must be an integer between {lo} and {hi}")
    return max(lo, min(hi, value))


def _str(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArguments(f"'{key}' is required and must be a non-empty string")
    return value


Handler = Callable[[Gateway, Mapping[str, Any], CallContext], Awaitable[types.CallToolResult]]


def _queries(args: Mapping[str, Any]) -> list[str]:
    queries: list[str] = []
    query = args.get("query")
    if query is not None:
        queries.append(_str(args, "query"))
    many = args.get("queries")
    if many is not None:
        if not isinstance(many, list) or not all(isinstance(q, str) for q in many):
            raise InvalidArguments("'queries' must be a list of strings")
        queries.extend(q for q in many if q.strip())
    if not queries:
        raise InvalidArguments("give 'query' (a string) or 'queries' (a list of strings)")
    return queries[:10]


async def retrieve_tools(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    queries = _queries(args)
    limit = _int(args, "limit", gw.settings.tools_limit, 1, 100)
    filters = SearchFilters.for_token(
        ctx.token,
        read_only_only=bool(args.get("read_only_only")),
        exclude_destructive=bool(args.get("exclude_destructive")),
        exclude_open_world=bool(args.get("exclude_open_world")),
    )
    explain = bool(args.get("explain"))
    by_server = bool(args.get("group_by_server"))
    results = gw.search(
        queries,
        limit,
        filters,
        diversify=args.get("diversify") is not False,
        explain=explain,
        client=ctx.client,
        by_server=by_server,
    )
    described = describe_entries([r.entry for r in results])
    for item, result in zip(described, results, strict=True):
        item["score"] = round(result.score, 4)
        if explain and result.why is not None:
            item["why"] = result.why
    answer: dict[str, Any] = {"query": queries[0] if len(queries) == 1 else queries, "count": len(described)}
    if by_server:
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in described:
            groups.setdefault(item["server"], []).append(item)
        answer["servers"] = [{"server": server, "tools": tools} for server, tools in groups.items()]
    else:
        answer["tools"] = described
    return json_result(answer)


async def describe_tool(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    names = args.get("names")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidArguments("'names' must be a non-empty list of tool names like 'server:tool'")
    return json_result({"tools": describe_entries([gw.resolve(n) for n in names[:50]])})


def _call(tier: Tier) -> Handler:
    async def handler(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
        name = _str(args, "name")
        call_args = args.get("args", args.get("arguments"))
        if isinstance(call_args, str):
            # Some models send the arguments as a JSON string; accept it when it parses to an object.
            try:
                call_args = json.loads(call_args)
            except ValueError:
                raise InvalidArguments("'args' must be a JSON object") from None
        if call_args is not None and not isinstance(call_args, dict):
            raise InvalidArguments("'args' must be an object of arguments for the tool")
        return await gw.call_tool(
            name, call_args, CallContext(via=ctx.via, tier=tier, client=ctx.client, meta=ctx.meta, token=ctx.token,
                                         events=ctx.events, timeout=caller_timeout(args.get("timeout")))
        )

    return handler


async def read_cache(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    page = gw.read_cache(_str(args, "key"), _int(args, "offset", 0, 0, 2**62), _int(args, "limit", 0, 0, 10**7))
    return json_result(page.to_dict())


async def upstream_servers(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    op = args.get("op")
    if op == "list":
        return json_result({"servers": server_listing(gw)})
    name = _str(args, "name")
    if op == "add":
        entry = {k: v for k, v in args.items() if k in _SERVER_FIELDS and k not in ("name", "lines")}
        # A server the model adds is never trusted, whatever the defaults: a human approves it.
        spec = spec_from_entry(name, {**entry, "trust": "manual"})
        await guard_model_supplied(gw, spec)
        spec = await gw.state.add(spec)
        return json_result({
            "added": name,
            "server": mask_config(spec.to_config()),
            "quarantined": True,
            "note": "the server is quarantined: its tools stay hidden until a human approves it "
            f"(`mcpproxy upstream approve {name}`)",
        })
    if op == "update":
        changes = {k: v for k, v in args.items() if k in _SERVER_FIELDS and k not in ("name", "lines")}
        current = gw.state.get(name)
        candidate = spec_from_entry(name, {**current.to_config(), **changes})
        await guard_model_supplied(gw, candidate)
        spec = await gw.state.update(name, changes)
        if changes.keys() & {"command", "args", "url", "env", "working_dir", "headers", "transport"}:
            # What runs changed: a human looks again.
            await gw.security.quarantine_server(name, by="model update")
        return json_result({"updated": name, "server": mask_config(spec.to_config())})
    if op == "remove":
        await gw.state.remove(name)
        return json_result({"removed": name})
    if op in ("enable", "disable"):
        await gw.enable(name, op == "enable")
        return json_result({op + "d": name})
    if op == "restart":
        gw.restart(name)
        return json_result({"restarting": name})
    if op == "logs":
        lines = _int(args, "lines", 50, 1, 1000)
        return json_result({"server": name, "lines": await tail_lines(gw, name, lines)})
    raise InvalidArguments(
        f"unknown op {op!r}", hint="op is one of list, add, update, remove, enable, disable, restart, logs"
    )


async def guard_model_supplied(gw: Gateway, spec: ServerSpec) -> None:
    """Refuse URLs to private or metadata addresses and working dirs outside the allowed roots."""
    if spec.url is not None:
        await check_url(spec.url, allow_private=gw.settings.allow_private_upstreams)
    if spec.working_dir is not None:
        check_path(spec.working_dir, roots=gw.settings.roots())


async def quarantine_security(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    op = args.get("op")
    if op == "list":
        return json_result({
            "quarantined_servers": gw.security.quarantined_servers(gw.state.servers),
            "held_tools": [p.to_dict() for p in gw.security.held_tools()],
            "how_to_release": "only a human can approve (mcpproxy upstream approve NAME, mcpproxy tools approve S:T)",
        })
    if op == "inspect":
        name = _str(args, "name")
        gw.state.get(name)
        tools = []
        for entry in gw.catalog.tools_of(name):
            pin = gw.security.pin(name, entry.name)
            item = describe_entries([entry])[0]
            item["status"] = pin.status if pin is not None else "pending"
            item["risk"] = pin.risk if pin is not None else None
            item["findings"] = pin.findings if pin is not None else []
            tools.append(item)
        return json_result({
            "server": name,
            "approval": gw.security.server_status(name),
            "reason": gw.security.server_reason(name),
            "tools": tools,
        })
    raise InvalidArguments(f"unknown op {op!r}", hint="op is list or inspect; approving is for humans only")


def server_listing(gw: Gateway) -> list[dict[str, Any]]:
    statuses = {s.name: s for s in gw.statuses()}
    out = []
    for name, spec in sorted(gw.state.servers.items()):
        status = statuses.get(name)
        item: dict[str, Any] = status.to_dict() if status is not None else {"name": name, "state": "stopped"}
        item["enabled"] = spec.enabled
        item["trust"] = gw.settings.trust_for(spec)
        item["approval"] = gw.security.server_status(name)
        item["transport"] = spec.transport
        item["target"] = mask_target(spec)  # secret values masked; ${keyring:NAME} references shown as written
        if item.get("error"):
            item["error"] = mask_known(item["error"])
        out.append(item)
    return out


async def tail_lines(gw: Gateway, name: str, lines: int) -> list[str]:
    path = gw.server_log(name)
    if not await anyio.Path(path).exists():
        return []

    def read() -> list[str]:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
        return [mask_known(line) for line in data.splitlines()[-lines:]]

    return await anyio.to_thread.run_sync(read)


HANDLERS: dict[str, Handler] = {
    "retrieve_tools": retrieve_tools,
    "describe_tool": describe_tool,
    "call_tool_read": _call(Tier.READ),
    "call_tool_write": _call(Tier.WRITE),
    "call_tool_destructive": _call(Tier.DESTRUCTIVE),
    "read_cache": read_cache,
    "quarantine_security": quarantine_security,
    "upstream_servers": upstream_servers,
    "code_execution": code_tool.handle,
}


# Spellings a tool takes besides its schema's properties (models often send ``arguments``).
_ALIASES = {name: frozenset({"arguments"}) for name in ("call_tool_read", "call_tool_write", "call_tool_destructive")}


@functools.cache
def _argument_names() -> dict[str, frozenset[str]]:
    """The arguments each proxy tool takes: its input schema's properties, and its aliases."""
    return {
        tool.name: frozenset(tool.input_schema.get("properties") or ()) | _ALIASES.get(tool.name, frozenset())
        for tool in proxy_tool_definitions(1)
    }


def check_argument_names(name: str, args: Mapping[str, Any]) -> None:
    """Refuse an argument the proxy tool ``name`` does not take, naming the closest one it does.

    Dropping it would let the model believe it took effect (``timeout`` for ``timeout_ms``).
    """
    found = unknown_keys(args, _argument_names().get(name, frozenset()), listing="it takes")
    if found is not None:
        keys, hint = found
        raise InvalidArguments(
            f"{name} takes no argument{'s' if len(keys) > 1 else ''} {quoted(keys)}", hint=hint, data={"unknown": keys}
        )


async def dispatch(gw: Gateway, name: str, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    """Run proxy tool ``name``; gateway errors become readable ``isError`` results."""
    handler = HANDLERS.get(name)
    if handler is None:
        return error_result(InvalidArguments(f"unknown tool '{name}'", hint="call retrieve_tools first"))
    try:
        check_argument_names(name, args)
        return await handler(gw, args, ctx)
    except ValidationError as exc:
        return error_result(ConfigError(f"invalid server definition: {exc.errors()[0]['msg']}"))
    except ProxyError as exc:
        return error_result(exc)
