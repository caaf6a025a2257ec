"""Which tools one program may find and call: the caller's view, narrowed by ``allowed_tools``.

A program never sees more than its caller: a tool must be visible (not quarantined, not held
for review), allowed by the caller's agent token (servers and tier), and, when the request
names ``allowed_tools``, matched by one of its entries: an exact name (``server:tool``, or
``server__tool``) or a whole server (``server:*``). The intersection is computed once per
execution; entries that match no tool the caller may use are reported before the program
starts, so a typo is not discovered at the first call.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcpproxy.endpoints.auth import token_allows
from mcpproxy.errors import InvalidArguments
from mcpproxy.gateway import Gateway
from mcpproxy.routing.catalog import ToolEntry
from mcpproxy.store.security import AgentToken


def _normalise(pattern: str) -> tuple[str, str]:
    """``server:tool`` / ``server__tool`` / ``server:*`` -> ``(server, tool or "*")``."""
    text = pattern.strip()
    cuts = [(at, len(sep)) for sep in (":", "__") if (at := text.find(sep)) >= 0]
    if not cuts:
        raise InvalidArguments(
            f"allowed_tools entry {pattern!r} is not a tool name",
            hint="use 'server:tool' for one tool or 'server:*' for every tool of a server",
        )
    at, width = min(cuts)
    server, tool = text[:at], text[at + width :]
    if not server or not tool:
        raise InvalidArguments(
            f"allowed_tools entry {pattern!r} is not a tool name", hint="use 'server:tool' or 'server:*'"
        )
    return server, tool


class ToolScope:
    """The tools one execution may use.

    Args:
        gw: The gateway.
        token: The caller's agent token, if any.
        patterns: ``allowed_tools`` of the request (``None``: no narrowing).

    Raises:
        InvalidArguments: A pattern is not of the form ``server:tool`` or ``server:*``.
    """

    def __init__(self, gw: Gateway, token: AgentToken | None, patterns: Sequence[str] | None) -> None:
        self.gw = gw
        self.token = token
        self.patterns = tuple(patterns) if patterns is not None else None
        self._parsed = [(_normalise(p), p) for p in self.patterns] if self.patterns is not None else None

    def _matches(self, entry: ToolEntry) -> bool:
        if self._parsed is None:
            return True
        return any(server == entry.server and tool in ("*", entry.name) for (server, tool), _ in self._parsed)

    def caller_may_use(self, entry: ToolEntry) -> bool:
        """Whether the caller could use the tool at all (visible, and within its token)."""
        return self.gw.visible(entry) and token_allows(self.token, entry)

    def allowed(self, entry: ToolEntry) -> bool:
        """Whether ``allowed_tools`` lets the program call the tool."""
        return self._matches(entry)

    def permits(self, entry: ToolEntry) -> bool:
        """Whether the program may find and call the tool."""
        return self.caller_may_use(entry) and self._matches(entry)

    def entries(self) -> list[ToolEntry]:
        """Every tool the program may use, in the catalog's order."""
        return [entry for entry in self.gw.catalog if self.permits(entry)]

    def unknown(self) -> list[str]:
        """``allowed_tools`` entries that match no tool the caller may use."""
        if self._parsed is None:
            return []
        usable = [entry for entry in self.gw.catalog if self.caller_may_use(entry)]
        return [
            original
            for (server, tool), original in self._parsed
            if not any(e.server == server and tool in ("*", e.name) for e in usable)
        ]
