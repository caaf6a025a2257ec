"""Intent tiers: a call must come through a call tool that fits the tool's annotations.

The model declares its intent by picking ``call_tool_read``, ``call_tool_write`` or
``call_tool_destructive``. A tool may be called through its own tier or a higher one: a
read-only tool works through any, a destructive tool only through ``call_tool_destructive``.
A human watching the calls (or an agent token limited to a tier) can rely on that.
"""

from __future__ import annotations

from mcpproxy.errors import TierMismatch
from mcpproxy.routing.catalog import Tier, ToolEntry


def check_tier(entry: ToolEntry, requested: Tier | None) -> None:
    """Raise ``TierMismatch`` when ``requested`` is below the tool's tier (``None``: no tier asked)."""
    if requested is None or requested >= entry.tier:
        return
    raise TierMismatch(
        f"'{entry.key}' is a {entry.tier.label} tool and cannot be called through {requested.call_tool}",
        hint=f"call it with {entry.tier.call_tool} if you intend a {entry.tier.label} action",
        data={"tool": entry.key, "tool_tier": entry.tier.label, "requested_tier": requested.label},
    )
