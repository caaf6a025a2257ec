"""Search through the running gateway: only what the caller may see, usage per client, kept vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway

from mcpproxy.gateway import CallContext, SearchFilters
from mcpproxy.routing.catalog import Tier, ToolEntry
from mcpproxy.store.vectors import SearchStore

pytestmark = pytest.mark.anyio

CATALOGUE = [
    {
        "name": "Weather",
        "description": "Weather forecasts for any city.",
        "tools": {"weather": {"tools": [
            {"name": "get_forecast", "description": "Weather forecast for a city.",
             "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "get_alerts", "description": "Weather alerts for a region.",
             "inputSchema": {"type": "object", "properties": {"region": {"type": "string"}}}},
        ]}},
    },
    {
        "name": "Files",
        "description": "Read and write files.",
        "tools": {"files": {"tools": [
            {"name": "write_file", "description": "Write a file with new content.",
             "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
            {"name": "read_file", "description": "Read a file.",
             "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
        ]}},
    },
    {
        "name": "Paused",
        "description": "A weather server that is switched off.",
        "tools": {"paused": {"tools": [
            {"name": "paused_forecast", "description": "Weather forecast for a city, from a paused server.",
             "inputSchema": {"type": "object", "properties": {}}},
        ]}},
    },
]
QUERY = "weather forecast for Paris, then save it to a file /tmp/paris.md and read the file back"


def _servers(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(CATALOGUE), encoding="utf-8")
    return {
        name: fixture_entry("catalog_server", "--tools", str(path), "--server", name, enabled=name != "paused")
        for name in ("weather", "files", "paused")
    }


async def _retrieve(gw: GatewayHandle, **args: Any) -> list[str]:
    async with Client(gw.mcp_url) as client:
        result = await client.call_tool("retrieve_tools", {"limit": 50, **args})
    return [tool["name"] for tool in _body(result)["tools"]]


def _body(result: Any) -> Any:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return json.loads(block.text)


async def test_disabled_servers_and_hidden_tools_never_appear_in_retrieve_tools(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather", "files")
        everything = await _retrieve(gw, query=QUERY)
        assert {"weather:get_forecast", "files:write_file", "files:read_file"} <= set(everything)
        assert not any(name.startswith("paused:") for name in everything)

        def hide_writes(entry: ToolEntry) -> bool:
            return entry.name != "write_file"

        gw.gateway.visibility.append(hide_writes)
        hidden = await _retrieve(gw, query=QUERY, explain=True)
        assert "files:write_file" not in hidden and "files:read_file" in hidden
        many = await _retrieve(gw, queries=["write a file", "save the text to /tmp/a.md"], diversify=False)
        assert "files:write_file" not in many

        await gw.gateway.enable("weather", False)
        assert not any(name.startswith("weather:") for name in await _retrieve(gw, query=QUERY))


async def test_server_filters_limit_results_to_the_named_servers(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather", "files")
        found = gw.gateway.search(QUERY, 20, SearchFilters(servers=frozenset({"files"})))
        assert found
        assert {r.entry.server for r in found} == {"files"}


async def test_retrieve_tools_groups_by_server_and_explains(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather", "files")
        async with Client(gw.mcp_url) as client:
            result = await client.call_tool(
                "retrieve_tools", {"query": QUERY, "group_by_server": True, "explain": True, "limit": 4}
            )
        body = _body(result)
        assert [group["server"] for group in body["servers"]][:2] in (["weather", "files"], ["files", "weather"])
        first = body["servers"][0]["tools"][0]
        assert first["why"]["found_by"]
        assert body["count"] == sum(len(group["tools"]) for group in body["servers"])


async def test_retrieve_tools_needs_a_query(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather")
        async with Client(gw.mcp_url) as client:
            result = await client.call_tool("retrieve_tools", {"limit": 3})
        assert result.is_error


async def test_usage_lifts_called_tools_for_that_client_only_and_is_kept(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path), search_usage_boost=True) as gw:
        await gw.wait_ready("weather")
        query = "weather"
        before = [r.entry.key for r in gw.gateway.search(query, 2, client="alice")]
        target = before[1]
        for _ in range(5):
            gw.gateway.search(query, 2, client="alice")
            await gw.gateway.call_tool(target, {}, CallContext(via="mcp", tier=Tier.DESTRUCTIVE, client="alice"))
        assert gw.gateway.search(query, 2, client="alice")[0].entry.key == target
        assert [r.entry.key for r in gw.gateway.search(query, 2, client="bob")] == before
        # A call of a tool no search showed the client is not counted.
        await gw.gateway.call_tool(before[0], {}, CallContext(via="mcp", tier=Tier.DESTRUCTIVE, client="carol"))
        await gw.gateway.searcher.wait_embedded()
        rows = await SearchStore(gw.gateway.store).usage()
        assert ("alice", target, 5) in rows
        assert not any(client == "carol" for client, _, _ in rows)


async def test_usage_is_not_counted_when_the_setting_is_off(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather")
        key = gw.gateway.search("weather", 1, client="alice")[0].entry.key
        await gw.gateway.call_tool(key, {}, CallContext(via="mcp", tier=Tier.DESTRUCTIVE, client="alice"))
        assert await SearchStore(gw.gateway.store).usage() == []


async def test_hybrid_vectors_are_computed_once_and_reused_after_a_restart(tmp_path: Path) -> None:
    servers = _servers(tmp_path)
    async with running_gateway(tmp_path, servers, search_mode="hybrid") as gw:
        await gw.wait_ready("weather", "files")
        await gw.wait_for(lambda: not gw.gateway.index.without_vectors("files"), what="vectors")
        await gw.gateway.searcher.wait_embedded()
        embedder = gw.gateway.index.embedder
        assert embedder is not None
        stored = await SearchStore(gw.gateway.store).vectors(embedder.model_id, _hashes(gw))
        assert len(stored) == 4
        found = gw.gateway.search("city temperature outlook", 5, explain=True)
        assert any(f.get("by") == "meaning" for r in found for f in (r.why or {}).get("found_by", []))
    async with running_gateway(tmp_path, servers, search_mode="hybrid") as gw:
        # Right after start the index is rebuilt from the store and the vectors are reused, not recomputed.
        await gw.gateway.searcher.wait_embedded()
        assert not gw.gateway.index.without_vectors("files")
        again = await SearchStore(gw.gateway.store).vectors(embedder.model_id, list(stored))
        assert {h: v.vector for h, v in again.items()} == {h: v.vector for h, v in stored.items()}


def _hashes(gw: GatewayHandle) -> list[str]:
    from mcpproxy.store.tools import tool_hash

    return [
        tool_hash(entry.tool.model_dump(by_alias=True, mode="json", exclude_none=True))
        for entry in gw.gateway.catalog
        if entry.server in ("weather", "files")
    ]


async def test_the_rest_search_explains_and_lists_copies_on_request(tmp_path: Path) -> None:
    import httpx2

    async with running_gateway(tmp_path, _servers(tmp_path)) as gw:
        await gw.wait_ready("weather", "files")
        async with httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=30) as http:
            answer = await http.get("/search", params={"q": "save it to /tmp/a.md", "explain": "1", "limit": 2})
            assert answer.status_code == 200
            first = answer.json()["tools"][0]
            assert first["name"] == "files:write_file"
            assert "write" in first["why"]["matched"]
            plain = await http.get("/search", params={"q": "save it to /tmp/a.md", "diversify": "0", "limit": 2})
            assert "why" not in plain.json()["tools"][0]


async def test_a_gateway_in_hybrid_mode_without_the_extra_refuses_to_start_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from tests.support.gateway import write_config

    from mcpproxy.config.loader import load_settings
    from mcpproxy.gateway import Gateway
    from mcpproxy.search.embed import EmbeddingsUnavailable

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    settings = load_settings(write_config(tmp_path, {}, search_mode="hybrid"), env={})
    with pytest.raises(EmbeddingsUnavailable) as info:
        async with Gateway(settings, watch_config=False):
            pass
    assert info.value.hint is not None and "mcpproxy[embeddings]" in info.value.hint
