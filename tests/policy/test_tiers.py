"""Intent tiers: a tool may be called through its own tier or a higher one, never lower."""

from __future__ import annotations

import mcp_types as types
import pytest

from mcpproxy.errors import PolicyDenied, TierMismatch
from mcpproxy.policy.tiers import check_tier
from mcpproxy.routing.catalog import Tier, ToolEntry

ANNOTATIONS = {
    Tier.READ: types.ToolAnnotations(read_only_hint=True),
    Tier.WRITE: types.ToolAnnotations(read_only_hint=False, destructive_hint=False),
    Tier.DESTRUCTIVE: types.ToolAnnotations(destructive_hint=True),
}


def entry_of(tier: Tier) -> ToolEntry:
    tool = types.Tool(name=f"{tier.label}_tool", input_schema={"type": "object"}, annotations=ANNOTATIONS[tier])
    entry = ToolEntry("srv", tool)
    assert entry.tier is tier
    return entry


ALLOWED = [(tool, via) for tool in Tier for via in Tier if via >= tool]
REFUSED = [(tool, via) for tool in Tier for via in Tier if via < tool]


def test_the_combination_table_is_the_one_the_docs_promise() -> None:
    assert set(ALLOWED) == {
        (Tier.READ, Tier.READ),
        (Tier.READ, Tier.WRITE),
        (Tier.READ, Tier.DESTRUCTIVE),
        (Tier.WRITE, Tier.WRITE),
        (Tier.WRITE, Tier.DESTRUCTIVE),
        (Tier.DESTRUCTIVE, Tier.DESTRUCTIVE),
    }
    assert set(REFUSED) == {
        (Tier.WRITE, Tier.READ),
        (Tier.DESTRUCTIVE, Tier.READ),
        (Tier.DESTRUCTIVE, Tier.WRITE),
    }


@pytest.mark.parametrize(("tool_tier", "via"), ALLOWED, ids=lambda t: t.label)
def test_a_tool_can_be_called_through_its_own_tier_or_a_higher_one(tool_tier: Tier, via: Tier) -> None:
    check_tier(entry_of(tool_tier), via)


@pytest.mark.parametrize(("tool_tier", "via"), REFUSED, ids=lambda t: t.label)
def test_a_tool_is_refused_through_a_lower_tier(tool_tier: Tier, via: Tier) -> None:
    with pytest.raises(TierMismatch) as info:
        check_tier(entry_of(tool_tier), via)
    err = info.value
    assert isinstance(err, PolicyDenied)
    assert err.message == (
        f"'srv:{tool_tier.label}_tool' is a {tool_tier.label} tool and cannot be called through {via.call_tool}"
    )
    assert err.hint == f"call it with {tool_tier.call_tool} if you intend a {tool_tier.label} action"
    assert err.data == {
        "tool": f"srv:{tool_tier.label}_tool",
        "tool_tier": tool_tier.label,
        "requested_tier": via.label,
    }


@pytest.mark.parametrize("tool_tier", list(Tier), ids=lambda t: t.label)
def test_no_requested_tier_means_no_check(tool_tier: Tier) -> None:
    check_tier(entry_of(tool_tier), None)


def test_a_destructive_tool_is_refused_through_call_tool_write() -> None:
    with pytest.raises(TierMismatch, match="through call_tool_write") as info:
        check_tier(entry_of(Tier.DESTRUCTIVE), Tier.WRITE)
    assert info.value.hint is not None and "call_tool_destructive" in info.value.hint


def test_an_unannotated_tool_needs_call_tool_destructive() -> None:
    entry = ToolEntry("srv", types.Tool(name="mystery", input_schema={"type": "object"}))
    with pytest.raises(TierMismatch):
        check_tier(entry, Tier.WRITE)
    check_tier(entry, Tier.DESTRUCTIVE)
