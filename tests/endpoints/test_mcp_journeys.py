"""The MCP endpoints with real clients and real upstreams: retrieve mode (/mcp) in both
protocol eras, the proxy tools, and direct mode (/mcp/all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent
from tests.support import paths
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway, stdio_entry
from tests.support.servers import run_fixture

from mcpproxy.upstream.base import UpstreamState

pytestmark = pytest.mark.anyio

ERAS = ["auto", "legacy"]
PROXY_TOOLS = {
    "retrieve_tools",
    "describe_tool",
    "call_tool_read",
    "call_tool_write",
    "call_tool_destructive",
    "read_cache",
    "quarantine_security",
    "upstream_servers",
    "code_execution",
}


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _json(result: Any) -> Any:
    assert not result.is_error, _text(result)
    return json.loads(result.content[0].text)


@pytest.fixture
async def notes_gateway(tmp_path: Path) -> Any:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}, tool_response_limit=1000) as gw:
        await gw.wait_ready("notes")
        yield gw


@pytest.mark.parametrize("mode", ERAS)
async def test_retrieve_mode_lists_only_the_proxy_tools_and_teaches_the_workflow(
    notes_gateway: GatewayHandle, mode: str
) -> None:
    async with Client(notes_gateway.mcp_url, mode=mode) as client:
        if mode == "auto":
            assert client.protocol_version == "2026-07-28"
        else:
            assert client.protocol_version == "2025-11-25"
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == PROXY_TOOLS
        assert client.instructions is not None
        assert "retrieve_tools" in client.instructions and "call_tool_read" in client.instructions


async def test_code_execution_is_listed_only_while_it_is_on_with_the_languages_offered(tmp_path: Path) -> None:
    for name in ("off", "py"):
        (tmp_path / name).mkdir()
    async with running_gateway(tmp_path / "off", {}, code_execution=False) as gw, Client(gw.mcp_url) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == PROXY_TOOLS - {"code_execution"}
    async with running_gateway(tmp_path / "py", {}, code_languages="python") as gw, Client(gw.mcp_url) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert listed["code_execution"].input_schema["properties"]["language"]["enum"] == ["python"]


async def test_search_finds_the_time_tool_for_what_time_is_it_in_tokyo(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    servers = {
        "time": stdio_entry(paths.pyserver_bin("mcp-server-time")),
        "everything": stdio_entry([*paths.npm_bin("mcp-server-everything"), "stdio"]),
        # Their files live beside, never around, the gateway's data dir (isolation keeps that hidden).
        "filesystem": stdio_entry([*paths.npm_bin("mcp-server-filesystem"), str(files)]),
        "memory": stdio_entry(paths.npm_bin("mcp-server-memory"), {"MEMORY_FILE_PATH": str(files / "m.jsonl")}),
        "notes": fixture_entry("notes_server"),
    }
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_ready(*servers)
        for mode in ERAS:
            async with Client(gw.mcp_url, mode=mode) as client:
                found = _json(await client.call_tool("retrieve_tools", {"query": "what time is it in Tokyo"}))
                first = found["tools"][0]
                assert first["name"] == "time:get_current_time"
                assert first["server"] == "time"
                assert first["call_with"] == "call_tool_read" or first["call_with"].startswith("call_tool_")
                assert "timezone" in json.dumps(first["input_schema"])
                assert isinstance(first["score"], float)
                answer = await client.call_tool(
                    first["call_with"], {"name": first["name"], "args": {"timezone": "Asia/Tokyo"}}
                )
                assert not answer.is_error, _text(answer)
                assert "Asia/Tokyo" in _text(answer)


async def test_search_filters_keep_out_what_the_caller_excludes(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        everything = _json(await client.call_tool("retrieve_tools", {"query": "notes delete write add", "limit": 20}))
        tiers = {t["name"]: t["tier"] for t in everything["tools"]}
        assert "destructive" in tiers.values()
        read_only = _json(
            await client.call_tool(
                "retrieve_tools", {"query": "notes delete write add", "limit": 20, "read_only_only": True}
            )
        )
        assert read_only["tools"] and all(t["tier"] == "read" for t in read_only["tools"])
        safe = _json(
            await client.call_tool(
                "retrieve_tools", {"query": "notes delete write add", "limit": 20, "exclude_destructive": True}
            )
        )
        assert all(t["tier"] != "destructive" for t in safe["tools"])
        limited = _json(await client.call_tool("retrieve_tools", {"query": "notes", "limit": 2}))
        assert len(limited["tools"]) <= 2


@pytest.mark.parametrize("mode", ERAS)
async def test_a_call_returns_the_upstream_result_unchanged(tmp_path: Path, mode: str) -> None:
    async with run_fixture("notes_server", transport="http") as notes:
        async with running_gateway(tmp_path, {"notes": {"url": notes.url}}) as gw:
            await gw.wait_ready("notes")
            async with Client(notes.url, mode=mode) as direct, Client(gw.mcp_url, mode=mode) as proxied:
                for tool, args in (("add", {"a": 20, "b": 22}), ("echo", {"text": "héllo ✓"})):
                    want = await direct.call_tool(tool, args)
                    got = await proxied.call_tool("call_tool_read", {"name": f"notes:{tool}", "args": args})
                    assert got.content == want.content
                    assert got.structured_content == want.structured_content
                    assert got.is_error == want.is_error


async def test_a_tool_error_from_the_upstream_is_passed_back_as_an_error_result(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        result = await client.call_tool("call_tool_read", {"name": "notes:fail", "args": {"message": "disk on fire"}})
        assert result.is_error
        assert "disk on fire" in _text(result)


async def test_tiers_must_fit_the_tool_annotations(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        refused = await client.call_tool(
            "call_tool_write", {"name": "notes:delete_all_notes", "args": {"confirm": True}}
        )
        assert refused.is_error
        assert refused.structured_content is not None and refused.structured_content["error"] == "tier_mismatch"
        assert "call_tool_destructive" in _text(refused)
        refused_read = await client.call_tool(
            "call_tool_read", {"name": "notes:write_note", "args": {"title": "t", "body": "b"}}
        )
        assert refused_read.is_error and "call_tool_write" in _text(refused_read)
        # A read-only tool works through any tier; a write tool through write and destructive.
        for tier in ("call_tool_read", "call_tool_write", "call_tool_destructive"):
            ok = await client.call_tool(tier, {"name": "notes:add", "args": {"a": 1, "b": 2}})
            assert not ok.is_error and "3" in _text(ok)
        written = await client.call_tool(
            "call_tool_write", {"name": "notes:write_note", "args": {"title": "t", "body": "b"}}
        )
        assert not written.is_error
        deleted = await client.call_tool(
            "call_tool_destructive", {"name": "notes:delete_all_notes", "args": {"confirm": True}}
        )
        assert not deleted.is_error, _text(deleted)


async def test_arguments_are_checked_against_the_schema_before_dispatch(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        bad = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": "one"}})
        assert bad.is_error
        text = _text(bad)
        assert "argument 'a'" in text and "not of type 'integer'" in text
        assert "'b' is a required property" in text
        assert bad.structured_content is not None and bad.structured_content["error"] == "invalid_arguments"


async def test_an_argument_a_proxy_tool_does_not_take_is_refused_naming_the_one_meant(
    notes_gateway: GatewayHandle,
) -> None:
    # Dropped silently, it would leave the model believing it took effect (a time limit, a filter).
    async with Client(notes_gateway.mcp_url) as client:
        slow = await client.call_tool("code_execution", {"code": "1", "timeout": 1})
        assert slow.is_error
        assert _text(slow).startswith("Error (invalid_arguments): code_execution takes no argument 'timeout'")
        assert "did you mean 'timeout_ms'?" in _text(slow)
        assert slow.structured_content is not None and slow.structured_content["data"] == {"unknown": ["timeout"]}
        search = await client.call_tool("retrieve_tools", {"query": "add numbers", "read_only": True, "max": 3})
        assert search.is_error and "retrieve_tools takes no arguments 'max', 'read_only'" in _text(search)
        assert "Hint: did you mean 'read_only_only' for 'read_only'? it takes: diversify, " in _text(search)
        before = notes_gateway.config_path.read_bytes()
        update = await client.call_tool("upstream_servers", {"op": "update", "name": "notes", "call_timeout": 5})
        assert update.is_error and "upstream_servers takes no argument 'call_timeout'" in _text(update)
        assert notes_gateway.config_path.read_bytes() == before
        # What the schema names, and the spelling of call arguments models often use, still work.
        added = await client.call_tool("call_tool_read", {"name": "notes:add", "arguments": {"a": 2, "b": 3}})
        assert not added.is_error and _text(added) == "5"
        ran = await client.call_tool("code_execution", {"code": "6 * 7", "timeout_ms": 5000})
        assert not ran.is_error and ran.structured_content is not None, _text(ran)
        assert ran.structured_content["value"] == 42
    # The code-mode endpoint checks its tools the same way.
    async with Client(notes_gateway.base_url + "/mcp/code") as client:
        slow = await client.call_tool("code_execution", {"code": "1", "timeout": 1})
        assert slow.is_error and "did you mean 'timeout_ms'?" in _text(slow)


async def test_unknown_servers_and_tools_get_an_actionable_error(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        unknown_server = await client.call_tool("call_tool_read", {"name": "nowhere:add", "args": {}})
        assert unknown_server.is_error and "retrieve_tools" in _text(unknown_server)
        unknown_tool = await client.call_tool("call_tool_read", {"name": "notes:ad", "args": {}})
        assert unknown_tool.is_error and "notes:add" in _text(unknown_tool)
        not_a_name = await client.call_tool("call_tool_read", {"name": "add", "args": {}})
        assert not_a_name.is_error and "server:tool" in _text(not_a_name)


async def test_a_long_result_is_truncated_and_read_cache_pages_through_all_of_it(notes_gateway: GatewayHandle) -> None:
    size = 4321
    async with Client(notes_gateway.mcp_url, mode="legacy") as client:
        direct = await client.call_tool("describe_tool", {"names": ["notes:big_text"]})
        assert not direct.is_error
        result = await client.call_tool("call_tool_read", {"name": "notes:big_text", "args": {"size": size}})
        assert not result.is_error
        first, last = result.content[0], result.content[-1]
        assert isinstance(first, TextContent) and isinstance(last, TextContent)
        shown, notice = first.text, last.text
        assert len(shown) == 1000
        assert "truncated" in notice and "read_cache" in notice and str(size) in notice
        key = notice.split('key="')[1].split('"')[0]
        pieces = [shown]
        offset: int | None = 1000
        while offset is not None:
            page = _json(await client.call_tool("read_cache", {"key": key, "offset": offset, "limit": 1500}))
            assert page["total"] == size
            pieces.append(page["content"])
            offset = page["next_offset"]
        from tests.fixtures.notes_server import big_text_pattern

        assert "".join(pieces) == big_text_pattern(size)
        missing = await client.call_tool("read_cache", {"key": "nope"})
        assert missing.is_error and "expire" in _text(missing)


async def test_describe_tool_gives_full_schemas(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        described = _json(await client.call_tool("describe_tool", {"names": ["notes:write_note", "notes:add"]}))
        by_name = {t["name"]: t for t in described["tools"]}
        assert by_name["notes:write_note"]["tier"] == "write"
        assert set(by_name["notes:write_note"]["input_schema"]["properties"]) == {"title", "body"}
        assert by_name["notes:add"]["annotations"]["readOnlyHint"] is True


async def test_the_model_manages_servers_through_upstream_servers(notes_gateway: GatewayHandle) -> None:
    async with Client(notes_gateway.mcp_url) as client:
        listing = _json(await client.call_tool("upstream_servers", {"op": "list"}))
        assert [s["name"] for s in listing["servers"]] == ["notes"]
        argv = paths.fixture_argv("notes_server", "--transport", "stdio", "--name", "second")
        added = await client.call_tool(
            "upstream_servers",
            {
                "op": "add",
                "name": "second",
                "command": argv[0],
                "args": argv[1:],
                "env": {"FASTMCP_SHOW_SERVER_BANNER": "false"},
            },
        )
        assert not added.is_error, _text(added)
        await notes_gateway.wait_ready("second")
        saved = json.loads(notes_gateway.config_path.read_text(encoding="utf-8"))
        assert saved["mcpServers"]["second"]["command"] == argv[0]
        duplicate = await client.call_tool("upstream_servers", {"op": "add", "name": "second", "command": "x"})
        assert duplicate.is_error and "already exists" in _text(duplicate)
        invalid = await client.call_tool("upstream_servers", {"op": "add", "name": "bad name!", "command": "x"})
        assert invalid.is_error
        logs = _json(await client.call_tool("upstream_servers", {"op": "logs", "name": "second", "lines": 5}))
        assert isinstance(logs["lines"], list)
        assert not (await client.call_tool("upstream_servers", {"op": "disable", "name": "second"})).is_error
        await notes_gateway.wait_state("second", UpstreamState.DISABLED)
        assert (
            json.loads(notes_gateway.config_path.read_text(encoding="utf-8"))["mcpServers"]["second"]["enabled"]
            is False
        )
        removed = await client.call_tool("upstream_servers", {"op": "remove", "name": "second"})
        assert not removed.is_error
        listing = _json(await client.call_tool("upstream_servers", {"op": "list"}))
        assert [s["name"] for s in listing["servers"]] == ["notes"]
        assert "second" not in json.loads(notes_gateway.config_path.read_text(encoding="utf-8"))["mcpServers"]


@pytest.mark.parametrize("mode", ERAS)
async def test_direct_mode_exposes_every_upstream_tool_under_server__tool(
    notes_gateway: GatewayHandle, mode: str
) -> None:
    async with Client(notes_gateway.direct_url, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "notes__add" in tools and "notes__delete_all_notes" in tools
        assert tools["notes__add"].annotations is not None and tools["notes__add"].annotations.read_only_hint
        assert set(tools["notes__add"].input_schema["properties"]) == {"a", "b"}
        result = await client.call_tool("notes__add", {"a": 5, "b": 6})
        assert not result.is_error and "11" in _text(result)
        bad = await client.call_tool("notes__add", {"a": "x", "b": 1})
        assert bad.is_error and "argument 'a'" in _text(bad)
