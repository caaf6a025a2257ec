"""Upstream connections with real servers: transports, eras, parallel start, failures,
pagination, list_changed, crash and reconnect, per-server stderr logs."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from tests.support import paths
from tests.support.gateway import fixture_entry, running_gateway, stdio_entry
from tests.support.servers import run_fixture

from mcpproxy.upstream.base import UpstreamState

pytestmark = pytest.mark.anyio


def _text(result: object) -> str:
    content = getattr(result, "content", [])
    return "\n".join(getattr(block, "text", "") for block in content)


@pytest.mark.parametrize("http_transport", ["lean", "httpx"])
async def test_an_http_upstream_is_spoken_to_in_the_newest_era_it_supports(tmp_path: Path, http_transport: str) -> None:
    async with run_fixture("notes_server", transport="http") as notes:
        servers = {
            "modern": {"url": notes.url},
            "legacy": {"url": notes.url, "protocol": "legacy"},
        }
        async with running_gateway(tmp_path, servers, upstream_http_transport=http_transport) as gw:
            await gw.wait_ready("modern", "legacy")
            versions = {s.name: s.protocol_version for s in gw.gateway.statuses()}
            assert versions["modern"] == "2026-07-28"
            assert versions["legacy"] == "2025-11-25"
            async with Client(gw.mcp_url, mode="auto") as client:
                for server in ("modern", "legacy"):
                    result = await client.call_tool(
                        "call_tool_read", {"name": f"{server}:add", "args": {"a": 2, "b": 40}}
                    )
                    assert not result.is_error, _text(result)
                    assert "42" in _text(result)


async def test_a_legacy_sse_upstream_connects_and_serves_calls(tmp_path: Path) -> None:
    async with run_fixture("notes_server", transport="sse") as notes:
        async with running_gateway(tmp_path, {"notes": {"url": notes.url}}) as gw:
            await gw.wait_ready("notes")
            status = next(s for s in gw.gateway.statuses() if s.name == "notes")
            assert status.transport == "sse"
            assert status.protocol_version is not None
            async with Client(gw.mcp_url, mode="legacy") as client:
                result = await client.call_tool("call_tool_read", {"name": "notes:echo", "args": {"text": "over sse"}})
                assert "over sse" in _text(result)


async def test_a_slow_or_broken_server_never_delays_the_others(tmp_path: Path) -> None:
    servers = {
        "hangs": fixture_entry("broken_server", "--mode", "hang-at-start", connect_timeout=60),
        "exits": fixture_entry("broken_server", "--mode", "exit-at-start"),
        "notes": fixture_entry("notes_server"),
    }
    async with running_gateway(tmp_path, servers) as gw:
        # The endpoint answers at once, before any server is ready.
        async with httpx2.AsyncClient() as http:
            assert (await http.get(gw.base_url + "/healthz")).status_code == 200
        await gw.wait_ready("notes")
        await gw.wait_state("exits", UpstreamState.BACKOFF, UpstreamState.ERROR)
        states = {s.name: s for s in gw.gateway.statuses()}
        # The hanging server is still trying while the healthy one already serves.
        assert states["hangs"].state is UpstreamState.CONNECTING
        assert states["exits"].error
        async with Client(gw.mcp_url, mode="auto") as client:
            result = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 1}})
            assert "2" in _text(result)
            refused = await client.call_tool("call_tool_read", {"name": "exits:anything", "args": {}})
            assert refused.is_error


async def test_a_server_that_exits_at_start_reports_its_reason_and_its_stderr_goes_to_its_own_log(
    tmp_path: Path,
) -> None:
    servers = {"exits": fixture_entry("broken_server", "--mode", "exit-at-start")}
    async with running_gateway(tmp_path, servers, backoff_initial=0.05, backoff_max=0.2) as gw:
        seen: list[tuple[UpstreamState, str | None]] = []
        gw.gateway.state_listeners.append(lambda s: seen.append((s.state, s.error)) if s.name == "exits" else None)
        await gw.wait_state("exits", UpstreamState.BACKOFF)
        status = next(s for s in gw.gateway.statuses() if s.name == "exits")
        # Its exit status and last stderr line, not a bare "connection closed".
        reason = "exited with status 1: broken_server: refusing to start (exit-at-start)"
        assert status.error == reason
        # It keeps retrying with backoff (attempts grow), and the others are not involved.
        await gw.wait_for(
            lambda: next(s for s in gw.gateway.statuses() if s.name == "exits").attempts >= 3, what="three attempts"
        )
        # While it connects again, the reason stays on show: a listing never finds it failing with no error.
        def reconnecting() -> list[str | None]:
            states = [state for state, _ in seen]
            after = states.index(UpstreamState.BACKOFF) if UpstreamState.BACKOFF in states else len(seen)
            return [error for state, error in seen[after:] if state is UpstreamState.CONNECTING]

        await gw.wait_for(lambda: len(reconnecting()) >= 2, what="two reconnections seen")
        assert set(reconnecting()) == {reason}
        log = gw.gateway.server_log("exits").read_text(encoding="utf-8")
        assert "broken_server" in log
        assert not gw.gateway.server_log("exits").with_name("upstream-other.log").exists()


async def test_a_command_that_does_not_exist_is_an_error_with_a_clear_reason(tmp_path: Path) -> None:
    servers = {"ghost": {"command": str(tmp_path / "no-such-program")}}
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_state("ghost", UpstreamState.BACKOFF)
        status = next(s for s in gw.gateway.statuses() if s.name == "ghost")
        assert status.error is not None and "not found" in status.error


async def test_every_page_of_a_paginated_tool_list_is_indexed(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"paged": fixture_entry("paged_server")}) as gw:
        await gw.wait_ready("paged")
        tools = gw.gateway.catalog.tools_of("paged")
        assert len(tools) > 100
        assert len({t.name for t in tools}) == len(tools)


async def test_list_changed_re_lists_that_server_and_updates_only_its_part_of_the_index(tmp_path: Path) -> None:
    servers = {"notes": fixture_entry("notes_server"), "other": fixture_entry("notes_server", "--name", "other")}
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_ready("notes", "other")
        other_before = [t.tool for t in gw.gateway.catalog.tools_of("other")]
        assert not gw.gateway.search("zebra_crossing_counter", 5)
        async with Client(gw.mcp_url, mode="legacy") as client:
            await client.call_tool(
                "call_tool_write", {"name": "notes:add_tool", "args": {"name": "zebra_crossing_counter"}}
            )
            await gw.wait_for(
                lambda: any(
                    r.entry.key == "notes:zebra_crossing_counter"
                    for r in gw.gateway.search("zebra crossing counter", 5)
                ),
                what="the new tool in search",
            )
            # It says nothing about itself, so by the spec's defaults it may be destructive.
            result = await client.call_tool(
                "call_tool_destructive", {"name": "notes:zebra_crossing_counter", "args": {}}
            )
            assert not result.is_error, _text(result)
            await client.call_tool(
                "call_tool_destructive", {"name": "notes:remove_tool", "args": {"name": "zebra_crossing_counter"}}
            )
            await gw.wait_for(
                lambda: gw.gateway.catalog.get("notes", "zebra_crossing_counter") is None, what="the removed tool gone"
            )
        assert [t.tool for t in gw.gateway.catalog.tools_of("other")] == other_before
        assert not any(
            r.entry.server == "notes" and r.entry.name == "zebra_crossing_counter"
            for r in gw.gateway.search("zebra crossing counter", 5)
        )


async def test_an_upstream_killed_mid_session_fails_the_call_clearly_then_reconnects(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}, backoff_initial=0.1) as gw:
        await gw.wait_ready("notes")
        first_connect = next(s for s in gw.gateway.statuses() if s.name == "notes").connected_at
        async with Client(gw.mcp_url, mode="auto") as client:
            with anyio.fail_after(20):
                crashed = await client.call_tool("call_tool_destructive", {"name": "notes:crash", "args": {}})
            assert crashed.is_error
            assert "notes" in _text(crashed) and "unavailable" in _text(crashed)
            await gw.wait_for(
                lambda: any(
                    s.name == "notes" and s.state is UpstreamState.READY and s.connected_at != first_connect
                    for s in gw.gateway.statuses()
                ),
                what="notes to reconnect",
            )
            again = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 3, "b": 4}})
            assert not again.is_error and "7" in _text(again)


async def test_the_real_npm_and_pypi_servers_connect_over_stdio(tmp_path: Path) -> None:
    # In a directory of its own: the sandbox shares the file's directory, never one holding the data dir.
    (tmp_path / "memory").mkdir()
    memory_file = tmp_path / "memory" / "memory.jsonl"
    servers = {
        "everything": stdio_entry([*paths.npm_bin("mcp-server-everything"), "stdio"]),
        "filesystem": stdio_entry([*paths.npm_bin("mcp-server-filesystem"), str(memory_file.parent)]),
        "memory": stdio_entry(paths.npm_bin("mcp-server-memory"), {"MEMORY_FILE_PATH": str(memory_file)}),
        "time": stdio_entry(paths.pyserver_bin("mcp-server-time")),
    }
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_ready(*servers)
        counts = {name: len(gw.gateway.catalog.tools_of(name)) for name in servers}
        # server-everything lists 13 tools, 17 to a client that can answer sampling, elicitation and roots.
        assert counts["everything"] in (13, 17)
        assert {k: v for k, v in counts.items() if k != "everything"} == {"filesystem": 14, "memory": 9, "time": 2}
        async with Client(gw.mcp_url, mode="auto") as client:
            created = await client.call_tool(
                "call_tool_write",
                {
                    "name": "memory:create_entities",
                    "args": {
                        "entities": [{"name": "mcpproxy", "entityType": "project", "observations": ["a gateway"]}]
                    },
                },
            )
            assert not created.is_error, _text(created)
            graph = await client.call_tool("call_tool_read", {"name": "memory:read_graph", "args": {}})
            assert "mcpproxy" in _text(graph)
        assert json.loads(memory_file.read_text(encoding="utf-8").splitlines()[0])["name"] == "mcpproxy"


async def test_updating_a_server_that_hangs_while_connecting_takes_effect_at_once(tmp_path: Path) -> None:
    servers = {"flaky": fixture_entry("broken_server", "--mode", "hang-at-start", connect_timeout=600)}
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_state("flaky", UpstreamState.CONNECTING)
        argv = paths.fixture_argv("notes_server", "--transport", "stdio")
        # Without the fix this waits for the 600 s connect timeout; the bound below is far shorter.
        await gw.gateway.state.update("flaky", {"args": argv[1:], "command": argv[0]})
        await gw.wait_ready("flaky", within=60)
        assert gw.gateway.catalog.get("flaky", "add") is not None
        await gw.gateway.enable("flaky", False)
        await gw.wait_state("flaky", UpstreamState.DISABLED, within=30)
