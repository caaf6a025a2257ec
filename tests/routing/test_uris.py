"""Namespaced resource URIs and prompt names round-trip; merged lists page deterministically."""

from __future__ import annotations

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from mcpproxy.endpoints.views import View, item_key, page
from mcpproxy.routing import uris

SERVERS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(lambda s: "__" not in s)


@given(server=SERVERS, uri=st.text(min_size=1, max_size=60))
def test_every_namespaced_uri_maps_back_to_its_server_and_original(server: str, uri: str) -> None:
    assert uris.split_uri(uris.namespace_uri(server, uri)) == (server, uri)


def test_a_template_expansion_maps_back_to_the_expansion_of_the_original_template() -> None:
    template = uris.namespace_uri("s", "test://item/{id}/data")
    assert template == "mcpproxy://s/test://item/{id}/data"
    assert uris.split_uri(template.replace("{id}", "42")) == ("s", "test://item/42/data")


@pytest.mark.parametrize("bad", ["test://x", "mcpproxy://", "mcpproxy://s", "mcpproxy:///x"])
def test_a_uri_that_is_not_ours_is_resource_not_found(bad: str) -> None:
    with pytest.raises(uris.UnknownResource) as caught:
        uris.split_uri(bad)
    assert caught.value.code == -32002


def test_prompt_names_split_at_the_first_separator() -> None:
    assert uris.split_prompt(uris.namespace_prompt("s", "a__b")) == ("s", "a__b")
    with pytest.raises(uris.UnknownPrompt):
        uris.split_prompt("plain")


def test_links_and_embedded_resources_in_results_are_rewritten_and_other_blocks_kept() -> None:
    text = types.TextContent(type="text", text="t")
    link = types.ResourceLink(type="resource_link", uri="file:///a", name="a")
    embedded = types.EmbeddedResource(type="resource", resource=types.TextResourceContents(uri="file:///b", text="b"))
    result = types.CallToolResult(content=[text, link, embedded])
    out = uris.rewrite_call_result(result, uris.namespacer("s"))
    assert out.content[0] == text
    assert out.content[1].uri == "mcpproxy://s/file:///a"  # type: ignore[union-attr]
    assert out.content[2].resource.uri == "mcpproxy://s/file:///b"  # type: ignore[union-attr]
    assert uris.rewrite_call_result(result, uris.identity) is result


def test_a_single_server_view_keeps_names_and_an_aggregated_one_namespaces_them() -> None:
    assert View("s").uri_out("s", "x://1") == "x://1" and View("s").uri_in("x://1") == ("s", "x://1")
    assert View().uri_in(View().uri_out("s", "x://1")) == ("s", "x://1")
    assert View().prompt_in(View().prompt_out("s", "p")) == ("s", "p")


def _tools(names: list[str]) -> list[types.Tool]:
    return [types.Tool(name=n, input_schema={"type": "object"}) for n in names]


def test_pages_cover_the_list_once_in_order() -> None:
    items = _tools([f"t{i}" for i in range(7)])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        chunk, cursor = page(items, cursor, 3, item_key)
        seen += [t.name for t in chunk]
        if cursor is None:
            break
    assert seen == [t.name for t in items]


def test_a_cursor_resumes_after_its_item_when_items_before_it_went_away() -> None:
    items = _tools(["a", "b", "c", "d"])
    _, cursor = page(items, None, 2, item_key)
    chunk, _ = page(_tools(["b", "c", "d"]), cursor, 2, item_key)
    assert [t.name for t in chunk] == ["c", "d"]


def test_a_cursor_mcpproxy_did_not_make_is_invalid_params() -> None:
    with pytest.raises(MCPError) as caught:
        page(_tools(["a"]), "garbage", 2, item_key)
    assert caught.value.error.code == types.INVALID_PARAMS
