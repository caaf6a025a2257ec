"""A stateless-era client in front of a handshake-era upstream that asks for sampling, elicitation
and roots in the middle of a tool call: mcpproxy answers the client ``input_required``, keeps the
upstream call pending, and feeds the client's answers back to it. Real upstreams (the tasks
fixture reached in the handshake era, over HTTP and over stdio) and real stateless clients."""

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
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway
from tests.support.servers import run_fixture

from mcpproxy.store.activity import ActivityFilter, ActivityStore

pytestmark = pytest.mark.anyio

WAIT = 30.0
TOOL = "jobs__interview"


async def sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="forty-two"), model="test-model"
    )


async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "ada"})


async def roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///projects/demo")])


@asynccontextmanager
async def handshake_upstream(tmp_path: Path, transport: str, **settings: Any) -> AsyncIterator[GatewayHandle]:
    """A gateway in front of the fixture, reached in the handshake era (it asks by request)."""
    if transport == "stdio":
        servers = {"jobs": fixture_entry("tasks_server", protocol="legacy")}
        async with running_gateway(tmp_path, servers, **settings) as gw:
            await gw.wait_ready("jobs")
            yield gw
        return
    async with run_fixture("tasks_server", timeout=60) as fixture:
        servers = {"jobs": {"url": fixture.url, "protocol": "legacy"}}
        async with running_gateway(tmp_path, servers, **settings) as gw:
            await gw.wait_ready("jobs")
            yield gw


@asynccontextmanager
async def stateless(gw: GatewayHandle, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=WAIT) as http,
        Client(
            streamable_http_client(gw.direct_url, http_client=http),
            mode="auto",
            sampling_callback=sample,
            elicitation_callback=elicit,
            list_roots_callback=roots,
        ) as client,
    ):
        assert client.protocol_version == types.LATEST_PROTOCOL_VERSION
        yield client


async def first_round(client: Client) -> types.InputRequiredResult:
    first = await client.session.call_tool(TOOL, {"topic": "life"}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult)
    return first


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_a_stateless_client_answers_sampling_elicitation_and_roots_of_a_handshake_upstream(
    tmp_path: Path, transport: str
) -> None:
    async with handshake_upstream(tmp_path, transport) as gw, stateless(gw) as client:
        with anyio.fail_after(WAIT):
            result = await client.call_tool(TOOL, {"topic": "life"})  # the SDK answers each round itself
    assert not result.is_error, result
    assert result.content[0].text == "llm=forty-two name=ada roots=file:///projects/demo"  # type: ignore[union-attr]


async def test_each_round_is_an_input_required_result_until_the_final_result(tmp_path: Path) -> None:
    async with handshake_upstream(tmp_path, "http") as gw, stateless(gw) as client:
        with anyio.fail_after(WAIT):
            first = await first_round(client)
            assert first.input_requests is not None and first.request_state
            [(key, request)] = first.input_requests.items()
            assert isinstance(request, types.CreateMessageRequest)  # the upstream's own request
            assert request.params.messages[0].content.text == "life"  # type: ignore[union-attr]
            answer = types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text="yes"), model="m"
            )
            second = await client.session.call_tool(
                TOOL, {"topic": "life"}, input_responses={key: answer}, request_state=first.request_state,
                allow_input_required=True,
            )
            assert isinstance(second, types.InputRequiredResult) and second.input_requests is not None
            [(key, request)] = second.input_requests.items()
            assert isinstance(request, types.ElicitRequest)
            third = await client.session.call_tool(
                TOOL, {"topic": "life"}, input_responses={key: types.ElicitResult(action="decline")},
                request_state=second.request_state, allow_input_required=True,
            )
            assert isinstance(third, types.InputRequiredResult) and third.input_requests is not None
            [(key, request)] = third.input_requests.items()
            assert isinstance(request, types.ListRootsRequest)
            final = await client.session.call_tool(
                TOOL, {"topic": "life"}, input_responses={key: types.ListRootsResult(roots=[])},
                request_state=third.request_state, allow_input_required=True,
            )
            # The activity log tells each leg for what it was: three questions, then the answer.
            recorder = gw.gateway.ops.activity
            assert recorder is not None
            await recorder.flush()
            calls = ActivityFilter(tool="interview", kind="call")
            rows = await ActivityStore(gw.gateway.store).query(calls, oldest_first=True)
    assert isinstance(final, types.CallToolResult) and not final.is_error
    assert final.content[0].text == "llm=yes name=decline roots="  # type: ignore[union-attr]
    assert [row.status for row in rows] == ["input_required"] * 3 + ["ok"]


async def answer_all(client: Client, result: types.CallToolResult | types.InputRequiredResult) -> types.CallToolResult:
    """Answer each round by hand (as the fixture's callbacks would) until the final result."""
    while isinstance(result, types.InputRequiredResult):
        responses: dict[str, Any] = {}
        for key, request in (result.input_requests or {}).items():
            if isinstance(request, types.CreateMessageRequest):
                responses[key] = await sample(None, request.params)  # type: ignore[arg-type]
            elif isinstance(request, types.ElicitRequest):
                responses[key] = await elicit(None, request.params)  # type: ignore[arg-type]
            else:
                responses[key] = await roots(None)  # type: ignore[arg-type]
        result = await client.session.call_tool(
            TOOL, {"topic": "x"}, input_responses=responses, request_state=result.request_state,
            allow_input_required=True,
        )
    return result


async def test_a_forged_or_finished_request_state_is_refused(tmp_path: Path) -> None:
    async with handshake_upstream(tmp_path, "http") as gw, stateless(gw) as client:
        with anyio.fail_after(WAIT):
            with pytest.raises(MCPError) as forged:
                await client.session.call_tool(TOOL, {"topic": "x"}, request_state="forged", allow_input_required=True)
            assert "requestState names no pending call" in str(forged.value)
            first = await first_round(client)
            done = await answer_all(client, first)
            assert not done.is_error
            assert len(gw.gateway.input_relay) == 0
            # Replaying a state after its call ended finds nothing.
            with pytest.raises(MCPError, match="requestState names no pending call"):
                await client.session.call_tool(
                    TOOL, {"topic": "x"}, input_responses={}, request_state=first.request_state,
                    allow_input_required=True,
                )


async def test_another_client_cannot_answer_or_steal_a_pending_call(tmp_path: Path) -> None:
    async with handshake_upstream(tmp_path, "http") as gw:
        alice, _ = await gw.gateway.create_token("alice", "destructive", None, None)
        mallory, _ = await gw.gateway.create_token("mallory", "destructive", None, None)
        async with stateless(gw, alice) as a, stateless(gw, mallory) as m:
            with anyio.fail_after(WAIT):
                first = await first_round(a)
                assert first.input_requests is not None
                [key] = first.input_requests
                answer = types.CreateMessageResult(
                    role="assistant", content=types.TextContent(type="text", text="stolen"), model="m"
                )
                with pytest.raises(MCPError, match="requestState names no pending call"):
                    await m.session.call_tool(
                        TOOL, {"topic": "life"}, input_responses={key: answer}, request_state=first.request_state,
                        allow_input_required=True,
                    )
                # Alice's call is untouched: her own answer still goes through.
                mine = types.CreateMessageResult(
                    role="assistant", content=types.TextContent(type="text", text="mine"), model="m"
                )
                second = await a.session.call_tool(
                    TOOL, {"topic": "life"}, input_responses={key: mine}, request_state=first.request_state,
                    allow_input_required=True,
                )
                assert isinstance(second, types.InputRequiredResult)


async def test_a_call_whose_client_never_answers_expires_and_its_state_is_refused(tmp_path: Path) -> None:
    async with handshake_upstream(tmp_path, "http", input_relay_timeout=0.5) as gw, stateless(gw) as client:
        with anyio.fail_after(WAIT):
            first = await first_round(client)
            # The client takes too long: the call is cancelled and forgotten.
            await gw.wait_for(lambda: len(gw.gateway.input_relay) == 0, within=WAIT, what="the call to expire")
            with pytest.raises(MCPError, match="requestState names no pending call"):
                await client.session.call_tool(
                    TOOL, {"topic": "life"}, input_responses={}, request_state=first.request_state,
                    allow_input_required=True,
                )


async def test_a_stateless_client_without_those_capabilities_still_gets_a_clear_error(tmp_path: Path) -> None:
    async with handshake_upstream(tmp_path, "http") as gw, Client(gw.direct_url, mode="auto") as client:
        with anyio.fail_after(WAIT):
            result = await client.call_tool(TOOL, {"topic": "life"})
        assert len(gw.gateway.input_relay) == 0
    assert result.is_error and "sampling/createMessage cannot be relayed" in str(result.content)


async def test_progress_of_a_call_that_may_ask_for_input_still_reaches_the_client(tmp_path: Path) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with run_fixture("conformance_server", timeout=60) as fixture:
        servers = {"fixture": {"url": fixture.url, "protocol": "legacy"}}
        async with running_gateway(tmp_path, servers) as gw:
            await gw.wait_ready("fixture")
            async with stateless(gw) as client:  # it declared sampling, elicitation and roots
                with anyio.fail_after(WAIT):
                    result = await client.call_tool(
                        "fixture__test_tool_with_progress", {}, progress_callback=on_progress
                    )
    assert not result.is_error
    assert seen == [0, 50, 100]
