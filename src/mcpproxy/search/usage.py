"""Usage signal: tools a client actually called after a search rank a little higher for it.

Off by default (setting ``search_usage_boost``). When on, the gateway remembers which tools each
search returned to a client, and when that client then calls one of them successfully, the
``(client, tool)`` count goes up (in memory and in the database). A later search by the *same*
client adds a bounded bonus to those tools; one client's counts never affect another's ranking,
and calls by an anonymous client (no client identity) are not counted.

The bonus grows with the logarithm of the count and saturates: at most ``MAX_BOOST`` times the
fused score of a first-ranked hit, reached at ``SATURATION`` calls. That is enough to reorder tools
that score alike, never enough to lift a tool that does not match the request (a tool that no
channel found gets no bonus at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["MAX_BOOST", "SATURATION", "UsageCounts"]

MAX_BOOST = 0.15
"""Largest bonus, as a share of the fused score of a first-ranked hit."""
SATURATION = 20
"""Calls after which the bonus stops growing."""
MAX_CLIENTS = 1000
MAX_TOOLS_PER_CLIENT = 500
"""Bounds on what is kept in memory; the least used entries go first."""


class UsageCounts:
    """Per-client call counts of tools found by search."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}

    def load(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """Replace the counts with ``(client, tool key, count)`` rows (from the database)."""
        self._counts = {}
        for client, key, count in rows:
            self._counts.setdefault(client, {})[key] = int(count)

    def record(self, client: str, key: str) -> int:
        """Count one call of ``key`` by ``client``; returns the new count."""
        tools = self._counts.get(client)
        if tools is None:
            if len(self._counts) >= MAX_CLIENTS:
                quietest = min(self._counts, key=lambda c: (sum(self._counts[c].values()), c))
                del self._counts[quietest]
            tools = self._counts[client] = {}
        if key not in tools and len(tools) >= MAX_TOOLS_PER_CLIENT:
            del tools[min(tools, key=lambda k: (tools[k], k))]
        tools[key] = tools.get(key, 0) + 1
        return tools[key]

    def count(self, client: str | None, key: str) -> int:
        if client is None:
            return 0
        return self._counts.get(client, {}).get(key, 0)

    def factor(self, client: str | None, key: str) -> float:
        """The bonus of ``key`` for ``client`` as a share of a first-ranked hit's score (0 to ``MAX_BOOST``)."""
        n = self.count(client, key)
        if not n:
            return 0.0
        return MAX_BOOST * min(1.0, math.log1p(n) / math.log1p(SATURATION))

    def forget(self, client: str | None = None) -> None:
        """Drop the counts of ``client`` (of everyone when ``None``)."""
        if client is None:
            self._counts.clear()
        else:
            self._counts.pop(client, None)
