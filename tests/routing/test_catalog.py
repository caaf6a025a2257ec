"""The aggregated catalog: tiers, names, resolution errors and order."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest

from mcpproxy.errors import UnknownServer, UnknownTool
from mcpproxy.routing.catalog import Catalog, Tier, ToolEntry, split_name


def tool(name: str, annotations: types.ToolAnnotations | None = None, **schema: Any) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object", **schema}, annotations=annotations)


def entry(annotations: types.ToolAnnotations | None) -> ToolEntry:
    return ToolEntry("srv", tool("t", annotations))


# --- tiers -----------------------------------------------------------------------------


def test_a_tool_without_annotations_is_treated_as_destructive() -> None:
    assert entry(None).tier is Tier.DESTRUCTIVE


def test_a_tool_with_annotations_that_say_nothing_about_effects_is_destructive() -> None:
    assert entry(types.ToolAnnotations(title="Delete everything")).tier is Tier.DESTRUCTIVE


def test_a_read_only_tool_is_read_tier() -> None:
    assert entry(types.ToolAnnotations(read_only_hint=True)).tier is Tier.READ


def test_read_only_wins_over_a_destructive_hint_as_the_spec_says() -> None:
    ann = types.ToolAnnotations(read_only_hint=True, destructive_hint=True)
    assert entry(ann).tier is Tier.READ


def test_a_tool_that_is_not_destructive_is_write_tier() -> None:
    assert entry(types.ToolAnnotations(destructive_hint=False)).tier is Tier.WRITE


def test_a_tool_that_is_explicitly_not_read_only_defaults_to_destructive() -> None:
    assert entry(types.ToolAnnotations(read_only_hint=False)).tier is Tier.DESTRUCTIVE


def test_a_tool_that_says_it_is_destructive_is_destructive() -> None:
    ann = types.ToolAnnotations(read_only_hint=False, destructive_hint=True)
    assert entry(ann).tier is Tier.DESTRUCTIVE


def test_tiers_are_ordered_read_write_destructive() -> None:
    assert Tier.READ < Tier.WRITE < Tier.DESTRUCTIVE


@pytest.mark.parametrize(
    ("tier", "call_tool", "label"),
    [
        (Tier.READ, "call_tool_read", "read"),
        (Tier.WRITE, "call_tool_write", "write"),
        (Tier.DESTRUCTIVE, "call_tool_destructive", "destructive"),
    ],
)
def test_each_tier_names_its_call_tool(tier: Tier, call_tool: str, label: str) -> None:
    assert tier.call_tool == call_tool
    assert tier.label == label


# --- entries ---------------------------------------------------------------------------


def test_an_entry_is_named_server_colon_tool_and_server_double_underscore_tool() -> None:
    e = ToolEntry("github", tool("create_issue"))
    assert e.name == "create_issue"
    assert e.key == "github:create_issue"
    assert e.direct_name == "github__create_issue"


def test_the_input_schema_is_a_copy_the_caller_may_change() -> None:
    t = tool("t", properties={"a": {"type": "string"}})
    e = ToolEntry("s", t)
    schema = e.input_schema
    schema["extra"] = 1
    assert "extra" not in e.input_schema
    assert e.input_schema["properties"] == {"a": {"type": "string"}}


def test_annotations_are_reported_under_their_wire_names() -> None:
    e = entry(types.ToolAnnotations(read_only_hint=True, title="Look"))
    assert e.annotations_dict() == {"readOnlyHint": True, "title": "Look"}
    assert entry(None).annotations_dict() == {}


# --- split_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("time:get_current_time", ("time", "get_current_time")),
        ("time__get_current_time", ("time", "get_current_time")),
        ("my_srv__tool", ("my_srv", "tool")),
        ("srv.v2:tool", ("srv.v2", "tool")),
        ("fs:read:file", ("fs", "read:file")),
        ("fs:read__file", ("fs", "read__file")),
        ("fs__read__file", ("fs", "read__file")),
        ("fs__read:file", ("fs", "read:file")),
        ("fs::x", ("fs", ":x")),
    ],
)
def test_a_name_splits_at_its_first_separator(name: str, expected: tuple[str, str]) -> None:
    assert split_name(name) == expected


@pytest.mark.parametrize(
    "name", ["", "tool", ":", "__", "srv:", ":tool", "srv__", "__tool", ":a__b", "single_underscore"]
)
def test_a_name_without_server_and_tool_is_refused_with_an_example(name: str) -> None:
    with pytest.raises(UnknownTool) as info:
        split_name(name)
    assert f"'{name}'" in info.value.message
    assert info.value.hint is not None
    assert "time:get_current_time" in info.value.hint
    assert info.value.data == {"name": name}


# --- resolve ---------------------------------------------------------------------------


@pytest.fixture
def catalog() -> Catalog:
    c = Catalog()
    c.replace_server("time", [tool("get_current_time"), tool("convert_time")])
    c.replace_server("fs", [tool("read_file"), tool("write_file"), tool("list:dir")])
    return c


def test_resolve_finds_a_tool_in_both_naming_modes(catalog: Catalog) -> None:
    assert catalog.resolve("time:convert_time").key == "time:convert_time"
    assert catalog.resolve("time__convert_time").key == "time:convert_time"


def test_resolve_finds_a_tool_whose_name_contains_a_colon_in_both_modes(catalog: Catalog) -> None:
    assert catalog.resolve("fs:list:dir").name == "list:dir"
    assert catalog.resolve("fs__list:dir").name == "list:dir"


def test_resolving_an_unconfigured_server_says_there_is_no_such_server(catalog: Catalog) -> None:
    with pytest.raises(UnknownServer) as info:
        catalog.resolve("github:create_issue", known_servers=["time", "fs"])
    assert info.value.message == "no server named 'github'"
    assert info.value.hint is not None and "retrieve_tools" in info.value.hint
    assert info.value.data == {"name": "github:create_issue", "server": "github"}


def test_resolving_a_configured_server_that_is_not_ready_says_it_is_not_available(catalog: Catalog) -> None:
    with pytest.raises(UnknownTool) as info:
        catalog.resolve("github:create_issue", known_servers=iter(["github"]))
    assert not isinstance(info.value, UnknownServer)
    assert info.value.message == "server 'github' has no tools available right now"
    assert info.value.hint is not None and "`mcpproxy upstream list`" in info.value.hint
    assert info.value.data["server"] == "github"


def test_resolving_an_unknown_tool_suggests_similar_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownTool) as info:
        catalog.resolve("time:TIME")
    assert info.value.message == "server 'time' has no tool 'TIME'"
    assert info.value.hint == "did you mean time:convert_time, time:get_current_time?"


def test_resolving_a_longer_misspelt_name_suggests_the_tool_it_contains(catalog: Catalog) -> None:
    with pytest.raises(UnknownTool) as info:
        catalog.resolve("fs:read_file_now")
    assert info.value.hint == "did you mean fs:read_file?"


def test_resolving_an_unknown_tool_with_nothing_similar_points_to_retrieve_tools(catalog: Catalog) -> None:
    with pytest.raises(UnknownTool) as info:
        catalog.resolve("time:zzz")
    assert info.value.hint == "call retrieve_tools to find the right tool"


def test_at_most_five_suggestions_are_made() -> None:
    c = Catalog()
    c.replace_server("s", [tool(f"get_{i}") for i in range(9)])
    with pytest.raises(UnknownTool) as info:
        c.resolve("s:get_")
    assert info.value.hint is not None
    assert info.value.hint.count("s:get_") == 5


def test_a_server_with_an_empty_tool_list_reports_an_unknown_tool_not_server() -> None:
    c = Catalog()
    c.replace_server("empty", [])
    with pytest.raises(UnknownTool) as info:
        c.resolve("empty:anything")
    assert not isinstance(info.value, UnknownServer)
    assert info.value.message == "server 'empty' has no tool 'anything'"


def test_resolve_refuses_a_malformed_name(catalog: Catalog) -> None:
    with pytest.raises(UnknownTool):
        catalog.resolve("get_current_time")


# --- order and updates ----------------------------------------------------------------


def test_iteration_is_by_sorted_server_then_each_servers_own_order() -> None:
    c = Catalog()
    c.replace_server("zeta", [tool("b"), tool("a")])
    c.replace_server("alpha", [tool("z"), tool("y"), tool("x")])
    c.replace_server("mid", [tool("only")])
    assert [e.key for e in c] == ["alpha:z", "alpha:y", "alpha:x", "mid:only", "zeta:b", "zeta:a"]
    assert c.servers() == ["alpha", "mid", "zeta"]
    assert [e.name for e in c.tools_of("zeta")] == ["b", "a"]
    assert len(c) == 6


def test_iteration_order_does_not_depend_on_insertion_order() -> None:
    first, second = Catalog(), Catalog()
    first.replace_server("a", [tool("1")])
    first.replace_server("b", [tool("2")])
    second.replace_server("b", [tool("2")])
    second.replace_server("a", [tool("1")])
    assert [e.key for e in first] == [e.key for e in second]


def test_replacing_a_server_changes_only_that_server(catalog: Catalog) -> None:
    before_fs = catalog.tools_of("fs")
    catalog.replace_server("time", [tool("now")])
    assert [e.name for e in catalog.tools_of("time")] == ["now"]
    assert catalog.tools_of("fs") == before_fs
    assert catalog.get("time", "convert_time") is None
    assert catalog.get("fs", "read_file") is not None
    assert len(catalog) == 4


def test_replacing_a_server_adds_it_when_new(catalog: Catalog) -> None:
    catalog.replace_server("new", [tool("t")])
    assert catalog.has_server("new")
    assert catalog.servers() == ["fs", "new", "time"]


def test_removing_a_server_drops_its_tools_and_is_idempotent(catalog: Catalog) -> None:
    catalog.remove_server("time")
    catalog.remove_server("time")
    assert not catalog.has_server("time")
    assert catalog.tools_of("time") == []
    assert [e.server for e in catalog] == ["fs", "fs", "fs"]
    with pytest.raises(UnknownServer):
        catalog.resolve("time:convert_time")


def test_a_duplicate_tool_name_in_one_list_keeps_one_entry_the_last() -> None:
    c = Catalog()
    c.replace_server("s", [tool("t", description_marker={"v": 1}), tool("t", description_marker={"v": 2})])
    assert len(c) == 1
    found = c.get("s", "t")
    assert found is not None
    assert found.input_schema["description_marker"] == {"v": 2}
