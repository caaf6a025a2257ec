"""Tasks through mcpproxy with real clients of both eras and a real upstream that runs tools as
background tasks (FastMCP's tasks extension, over HTTP): the client's handle reaches the same
upstream task after a restart, belongs to the client that created it, and the task's result goes
through the gateway's result filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, encode_header_value
from tests.fixtures.tasks_server import FAKE_SECRET
from tests.support.gateway import GatewayHandle, running_gateway
from tests.support.servers import RunningServer, run_fixture

from mcpproxy.store.activity import ActivityFilter, ActivityStore
from mcpproxy.upstream.tasks import TASKS_EXTENSION

pytestmark = pytest.mark.anyio

WAIT = 30.0


@pytest.fixture
async def upstream() -> AsyncIterator[RunningServer]:
    async with run_fixture("tasks_server", timeout=60) as server:
        yield server


@asynccontextmanager
async def gateway_for(tmp_path: Path, upstream: RunningServer, **settings: Any) -> AsyncIterator[GatewayHandle]:
    servers = {"jobs": {"url": upstream.url, "protocol": "auto"}}
    async with running_gateway(tmp_path, servers, **settings) as gw:
        await gw.wait_ready("jobs")
        yield gw


@asynccontextmanager
async def client(url: str, mode: str, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=WAIT) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as connected,
    ):
        yield connected


async def raw(c: Client, method: str, params: dict[str, Any], *, tasks: bool = False) -> dict[str, Any]:
    """One request as the client's session would stamp it, the answer unvalidated (the SDK has no
    client API for tasks); ``tasks`` opts this stateless-era request into the tasks extension."""
    session = c.session
    data: dict[str, Any] = {"method": method, "params": params}
    opts: CallOptions = {"timeout": WAIT}
    session._stamp(data, opts)
    if tasks:
        meta = data["params"].setdefault("_meta", {})
        caps = dict(meta.get(types.CLIENT_CAPABILITIES_META_KEY) or {})
        caps["extensions"] = {TASKS_EXTENSION: {}}
        meta[types.CLIENT_CAPABILITIES_META_KEY] = caps
    if "taskId" in params:
        opts.setdefault("headers", {})[MCP_NAME_HEADER] = encode_header_value(params["taskId"])
    return await session._dispatcher.send_raw_request(method, data["params"], opts)


async def start_modern(c: Client, text: str, tool: str = "jobs__slow_echo") -> str:
    created = await raw(c, "tools/call", {"name": tool, "arguments": {"text": text}}, tasks=True)
    assert created["resultType"] == "task" and created["status"] == "working"
    handle = created["taskId"]
    assert isinstance(handle, str)
    return handle


async def start_handshake(c: Client, text: str, tool: str = "jobs__slow_echo") -> str:
    created = await raw(c, "tools/call", {"name": tool, "arguments": {"text": text}, "task": {"ttl": 60_000}})
    assert "task" in created, created
    assert created["task"]["status"] == "working"
    handle = created["task"]["taskId"]
    assert isinstance(handle, str)
    return handle


async def release(c: Client, tool: str = "jobs__release") -> None:
    result = await c.call_tool(tool, {})
    assert not result.is_error


async def completed(c: Client, handle: str) -> dict[str, Any]:
    """``tasks/get`` until the task ended (stateless era)."""
    with anyio.fail_after(WAIT):
        while True:
            task = await raw(c, "tasks/get", {"taskId": handle}, tasks=True)
            if task["status"] != "working":
                return task
            await anyio.sleep(0.05)


async def test_a_stateless_client_runs_a_tool_as_a_task_and_gets_its_result_through_the_filters(
    tmp_path: Path, upstream: RunningServer
) -> None:
    async with gateway_for(tmp_path, upstream) as gw, client(gw.base_url + "/mcp/s/jobs", "auto") as c:
        assert TASKS_EXTENSION in (c.server_capabilities.extensions or {})
        handle = await start_modern(c, "hello", "slow_echo")
        waiting = await raw(c, "tasks/get", {"taskId": handle}, tasks=True)
        assert waiting["taskId"] == handle and waiting["status"] == "working"
        await release(c, "release")
        done = await completed(c, handle)
    assert done["status"] == "completed"
    text = done["result"]["content"][0]["text"]
    assert "echo: hello" in text
    assert FAKE_SECRET not in text  # the gateway's secret redaction ran on the task's result


async def test_a_handshake_client_follows_a_task_and_gets_its_filtered_result(
    tmp_path: Path, upstream: RunningServer
) -> None:
    async with gateway_for(tmp_path, upstream) as gw, client(gw.direct_url, "legacy") as c:
        caps = c.server_capabilities.tasks
        assert caps is not None and caps.requests is not None and caps.list is not None
        handle = await start_handshake(c, "hi")
        listed = await raw(c, "tasks/list", {})
        assert [t["taskId"] for t in listed["tasks"]] == [handle]
        await release(c)
        result = await raw(c, "tasks/result", {"taskId": handle})
        # The activity log has the start and the result, each a call of the tool.
        recorder = gw.gateway.ops.activity
        assert recorder is not None
        with anyio.fail_after(WAIT):
            await recorder.flush()
        calls = ActivityFilter(tool="slow_echo", kind="call")
        rows = await ActivityStore(gw.gateway.store).query(calls, oldest_first=True)
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": handle}
    text = result["content"][0]["text"]
    assert "echo: hi" in text and FAKE_SECRET not in text
    assert [(row.server, row.via, row.status) for row in rows] == [("jobs", "mcp-direct", "ok")] * 2
    assert rows[0].result_size is None and rows[1].result_size


async def test_another_client_can_neither_see_nor_read_nor_cancel_a_task(
    tmp_path: Path, upstream: RunningServer
) -> None:
    async with gateway_for(tmp_path, upstream) as gw:
        alice, _ = await gw.gateway.create_token("alice", "destructive", None, None)
        mallory, _ = await gw.gateway.create_token("mallory", "destructive", None, None)
        async with client(gw.direct_url, "legacy", alice) as a, client(gw.direct_url, "legacy", mallory) as m:
            handle = await start_handshake(a, "private")
            assert (await raw(m, "tasks/list", {}))["tasks"] == []
            for method in ("tasks/get", "tasks/result", "tasks/cancel"):
                with pytest.raises(MCPError) as refused:
                    await raw(m, method, {"taskId": handle})
                assert refused.value.code == types.INVALID_PARAMS
                assert "unknown, expired, or belongs to another client" in str(refused.value.error.data)
            # Without any token (the API key's principal) it is someone else's too.
            async with client(gw.direct_url, "legacy") as anonymous:
                with pytest.raises(MCPError):
                    await raw(anonymous, "tasks/get", {"taskId": handle})
            # Still the owner's, untouched.
            task = await raw(a, "tasks/get", {"taskId": handle})
            assert task["status"] == "working"
            assert [t["taskId"] for t in (await raw(a, "tasks/list", {}))["tasks"]] == [handle]


async def test_a_task_handle_reaches_the_same_upstream_task_after_a_gateway_restart(
    tmp_path: Path, upstream: RunningServer
) -> None:
    async with gateway_for(tmp_path, upstream) as gw, client(gw.direct_url, "auto") as c:
        handle = await start_modern(c, "before")
        async with client(gw.direct_url, "legacy") as legacy:
            handshake_handle = await start_handshake(legacy, "also before")
    # A new gateway process state: only the store remembers the handles.
    async with gateway_for(tmp_path, upstream) as gw:
        async with client(gw.direct_url, "auto") as c:
            still = await raw(c, "tasks/get", {"taskId": handle}, tasks=True)
            assert still["status"] == "working"
            await release(c)
            done = await completed(c, handle)
        async with client(gw.direct_url, "legacy") as legacy:
            result = await raw(legacy, "tasks/result", {"taskId": handshake_handle})
    assert "echo: before" in done["result"]["content"][0]["text"]
    assert FAKE_SECRET not in done["result"]["content"][0]["text"]
    assert "echo: also before" in result["content"][0]["text"]


async def test_a_task_can_be_cancelled_by_its_owner(tmp_path: Path, upstream: RunningServer) -> None:
    async with gateway_for(tmp_path, upstream) as gw, client(gw.direct_url, "legacy") as c:
        handle = await start_handshake(c, "never")
        cancelled = await raw(c, "tasks/cancel", {"taskId": handle})
        assert cancelled["taskId"] == handle and cancelled["status"] == "cancelled"
        with pytest.raises(MCPError, match="cancelled"):
            await raw(c, "tasks/result", {"taskId": handle})


async def test_a_task_call_to_a_server_without_tasks_runs_as_a_plain_call(
    tmp_path: Path, upstream: RunningServer
) -> None:
    # The same server, reached in the handshake era, where it does not run tasks.
    servers = {"jobs": {"url": upstream.url, "protocol": "legacy"}}
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_ready("jobs")
        async with client(gw.base_url + "/mcp/s/jobs", "legacy") as c:
            assert c.server_capabilities.tasks is None  # not advertised: nobody behind it runs tasks
            result = await raw(c, "tools/call", {"name": "plain", "arguments": {"text": "now"}, "task": {"ttl": 1000}})
    assert "task" not in result
    assert result["content"][0]["text"] == "plain: now"


async def test_quarantining_the_server_stops_a_task_result_from_being_read(
    tmp_path: Path, upstream: RunningServer
) -> None:
    async with gateway_for(tmp_path, upstream) as gw, client(gw.direct_url, "legacy") as c:
        handle = await start_handshake(c, "held back")
        await release(c)
        await gw.gateway.quarantine_server("jobs", by="test")
        with pytest.raises(MCPError) as refused:
            await raw(c, "tasks/result", {"taskId": handle})
    assert "quarantine" in str(refused.value).lower()



async def release_directly(upstream: RunningServer) -> None:
    """``release`` on the upstream itself, past the gateway (whose slot for it may be taken)."""
    async with Client(upstream.url, mode="auto") as direct:
        assert not (await direct.call_tool("release", {})).is_error


async def test_starting_a_task_is_refused_past_the_servers_concurrency_limit_and_runs_once_free(
    tmp_path: Path, upstream: RunningServer
) -> None:
    """A task start is an upstream call like any other: past the server's limit and queue it is
    refused at once with the overload error, and it runs once the slot is free."""
    async with (
        gateway_for(tmp_path, upstream, max_concurrent_calls=1, max_queued_calls=0) as gw,
        client(gw.base_url + "/mcp/all", "auto") as c,
    ):
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                # A plain call of the waiting tool holds the server's only slot until released.
                tg.start_soon(c.call_tool, "jobs__slow_echo", {"text": "holding"})
                while gw.gateway.ops.inflight == 0:  # noqa: ASYNC110 - polling a counter
                    await anyio.sleep(0.02)  # until the plain call holds the slot
                arguments = {"name": "jobs__slow_echo", "arguments": {"text": "queued"}}
                refused = await raw(c, "tools/call", arguments, tasks=True)
                await release_directly(upstream)
            handle = await start_modern(c, "after")
            await release_directly(upstream)
            done = await completed(c, handle)
    # Refused as any call past the limit is: a tool error naming the overload, no task created.
    assert refused["resultType"] == "complete" and refused["isError"] is True, refused
    assert "overloaded" in refused["content"][0]["text"].lower(), refused
    assert done["status"] == "completed"
