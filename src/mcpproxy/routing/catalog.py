"""The aggregated catalog: every visible upstream tool under one name.

Names: ``server:tool`` in retrieve mode (what ``retrieve_tools`` returns and the call tools
take) and ``server__tool`` in direct mode (MCP tool names may not contain ':' everywhere).
A server name never contains ':' or '__' (settings enforce it), so both split unambiguously
at the first separator. This module does no I/O: the gateway feeds it tool lists.

Tiers follow the MCP annotations with the spec's defaults: ``readOnlyHint`` true -> read;
otherwise ``destructiveHint`` (default true) -> destructive, false -> write. A tool that says
nothing is treated as possibly destructive, as the spec tells clients to.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from mcpproxy.errors import UnknownServer, UnknownTool


class Tier(enum.IntEnum):
    READ = 1
    WRITE = 2
    DESTRUCTIVE = 3

    @property
    def call_tool(self) -> str:
        return f"call_tool_{self.name.lower()}"

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One upstream tool as the gateway exposes it."""

    server: str
    tool: types.Tool

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def key(self) -> str:
        return f"{self.server}:{self.tool.name}"

    @property
    def direct_name(self) -> str:
        return f"{self.server}__{self.tool.name}"

    @property
    def tier(self) -> Tier:
        ann = self.tool.annotations
        if ann is not None and ann.read_only_hint:
            return Tier.READ
        if ann is not None and ann.destructive_hint is False:
            return Tier.WRITE
        return Tier.DESTRUCTIVE

    @property
    def input_schema(self) -> dict[str, Any]:
        return dict(self.tool.input_schema or {"type": "object"})

    def annotations_dict(self) -> dict[str, Any]:
        ann = self.tool.annotations
        return ann.model_dump(by_alias=True, exclude_none=True) if ann is not None else {}


def split_name(name: str) -> tuple[str, str]:
    """``server:tool`` or ``server__tool`` -> ``(server, tool)``, split at the first separator."""
    cuts = [(at, len(sep)) for sep in (":", "__") if (at := name.find(sep)) >= 0]
    if cuts:
        at, width = min(cuts)
        server, tool = name[:at], name[at + width :]
        if server and tool:
            return server, tool
    raise UnknownTool(
        f"'{name}' is not a tool name of the form server:tool",
        hint="use the exact name retrieve_tools returned, e.g. 'time:get_current_time'",
        data={"name": name},
    )


class Catalog:
    """Tools by server, in a deterministic order (server name, then the server's own order)."""

    def __init__(self) -> None:
        self._by_server: dict[str, dict[str, ToolEntry]] = {}

    def replace_server(self, server: str, tools: Iterable[types.Tool]) -> None:
        self._by_server[server] = {t.name: ToolEntry(server, t) for t in tools}

    def remove_server(self, server: str) -> None:
        self._by_server.pop(server, None)

    def servers(self) -> list[str]:
        return sorted(self._by_server)

    def has_server(self, server: str) -> bool:
        return server in self._by_server

    def tools_of(self, server: str) -> list[ToolEntry]:
        return list(self._by_server.get(server, {}).values())

    def __iter__(self) -> Iterator[ToolEntry]:
        for server in self.servers():
            yield from self._by_server[server].values()

    def __len__(self) -> int:
        return sum(len(tools) for tools in self._by_server.values())

    def get(self, server: str, tool: str) -> ToolEntry | None:
        return self._by_server.get(server, {}).get(tool)

    def resolve(self, name: str, *, known_servers: Iterable[str] = ()) -> ToolEntry:
        """The entry for ``server:tool`` (or ``server__tool``), with an actionable error."""
        server, tool = split_name(name)
        tools = self._by_server.get(server)
        if tools is None:
            if server in set(known_servers):
                raise UnknownTool(
                    f"server '{server}' has no tools available right now",
                    hint=f"it may still be connecting or down; `mcpproxy upstream list` shows '{server}'",
                    data={"name": name, "server": server},
                )
            raise UnknownServer(
                f"no server named '{server}'",
                hint="call retrieve_tools to find tools; names look like 'server:tool'",
                data={"name": name, "server": server},
            )
        entry = tools.get(tool)
        if entry is None:
            close = sorted(t for t in tools if tool.lower() in t.lower() or t.lower() in tool.lower())[:5]
            hint = (
                f"did you mean {', '.join(server + ':' + c for c in close)}?"
                if close
                else ("call retrieve_tools to find the right tool")
            )
            raise UnknownTool(f"server '{server}' has no tool '{tool}'", hint=hint, data={"name": name})
        return entry
