"""Protocol completeness through mcpproxy with real clients and a real upstream (the conformance
fixture over HTTP): resources, prompts, completion, subscriptions, notifications, progress,
cancellation, sampling and elicitation relay, Host/Origin checks and one server under its names."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway
from tests.support.servers import run_fixture

from mcpproxy.settings import ServerSpec

pytestmark = pytest.mark.anyio

WATCHED = "mcpproxy://fixture/test://watched-resource"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that one gateway and its two upstreams serve the tests that share them."""
    return "asyncio"


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayHandle]:
    async with run_fixture("conformance_server", timeout=60) as fixture:
        servers = {
            "fixture": {"url": fixture.url, "protocol": "legacy"},
            "notes": fixture_entry("notes_server"),
        }
        async with running_gateway(tmp_path_factory.mktemp("features"), servers) as gw:
            await gw.wait_ready("fixture", "notes")
            yield gw


class Inbox:
    """Notifications a client received, waited for without sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        self.items.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, kind: type, within: float = 10.0) -> Any:
        with anyio.fail_after(within):
            while True:
                for item in self.items:
                    if isinstance(item, kind):
                        return item
                await self._changed.wait()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_resources_are_listed_under_namespaced_uris_that_read_back(gateway: GatewayHandle, mode: str) -> None:
    async with Client(gateway.direct_url, mode=mode) as client:
        listed = await client.list_resources()
        uris = [r.uri for r in listed.resources]
        assert "mcpproxy://fixture/test://static-text" in uris
        assert any(u.startswith("mcpproxy://notes/notes://") for u in uris)
        assert uris == sorted(uris, key=lambda u: u.split("/")[2])  # server order, deterministic
        for uri in uris:
            read = await client.read_resource(uri)
            assert read.contents and read.contents[0].uri == uri
        templates = await client.list_resource_templates()
        assert "mcpproxy://fixture/test://template/{id}/data" in [t.uri_template for t in templates.resource_templates]
        expanded = await client.read_resource("mcpproxy://fixture/test://template/123/data")
        assert "123" in getattr(expanded.contents[0], "text", "")


async def test_resource_links_in_tool_results_point_where_the_client_can_read(gateway: GatewayHandle) -> None:
    async with Client(gateway.direct_url, mode="legacy") as client:
        result = await client.call_tool("fixture__test_resource_link", {})
        link = result.content[0]
        assert isinstance(link, types.ResourceLink) and link.uri == "mcpproxy://fixture/test://static-text"
        assert (await client.read_resource(link.uri)).contents
        embedded = await client.call_tool("fixture__test_embedded_resource", {})
        assert isinstance(embedded.content[0], types.EmbeddedResource)
        assert embedded.content[0].resource.uri == "mcpproxy://fixture/test://embedded-resource"


async def test_an_unknown_resource_uri_is_a_resource_not_found_error(gateway: GatewayHandle) -> None:
    async with Client(gateway.direct_url, mode="legacy") as client:
        with pytest.raises(Exception, match="not a resource URI of this gateway"):
            await client.read_resource("test://static-text")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_prompts_are_namespaced_and_completion_is_routed_by_reference(gateway: GatewayHandle, mode: str) -> None:
    async with Client(gateway.mcp_url, mode=mode) as client:
        names = [p.name for p in (await client.list_prompts()).prompts]
        assert "fixture__test_prompt_with_arguments" in names and "notes__summarize" in names
        got = await client.get_prompt("fixture__test_prompt_with_arguments", {"arg1": "A1", "arg2": "B2"})
        assert "A1" in str(got.messages) and "B2" in str(got.messages)
        done = await client.complete(
            types.PromptReference(type="ref/prompt", name="fixture__test_prompt_with_arguments"),
            {"name": "arg1", "value": "te"},
        )
        assert done.completion.values == ["test1", "test2", "testing"]
        by_template = await client.complete(
            types.ResourceTemplateReference(type="ref/resource", uri="mcpproxy://fixture/test://template/{id}/data"),
            {"name": "id", "value": "1"},
        )
        assert by_template.completion.values == ["1", "123"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_one_server_endpoint_shows_its_tools_resources_and_prompts_under_their_own_names(
    gateway: GatewayHandle, mode: str
) -> None:
    async with Client(gateway.base_url + "/mcp/s/fixture", mode=mode) as client:
        assert client.instructions == "Conformance fixture for mcpproxy tests."
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "test_simple_text" in tools and not any("__" in t for t in tools)
        assert "test://static-text" in [r.uri for r in (await client.list_resources()).resources]
        assert (await client.read_resource("test://static-text")).contents[0].uri == "test://static-text"
        link = (await client.call_tool("test_resource_link", {})).content[0]
        assert isinstance(link, types.ResourceLink) and link.uri == "test://static-text"
        assert "test_simple_prompt" in [p.name for p in (await client.list_prompts()).prompts]


def _offered(caps: types.ServerCapabilities) -> dict[str, bool]:
    """Which features a capabilities object offers (subscribe counted apart from resources)."""
    return {
        "tools": caps.tools is not None,
        "resources": caps.resources is not None,
        "subscribe": bool(caps.resources and caps.resources.subscribe),
        "prompts": caps.prompts is not None,
        "completions": caps.completions is not None,
        "logging": caps.logging is not None,
    }


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_one_server_endpoint_offers_what_both_mcpproxy_and_that_server_support(
    gateway: GatewayHandle, mode: str
) -> None:
    """``server/discover`` (stateless) and ``initialize`` (handshake) on /mcp/s/<server>: the intersection."""
    for name in ("fixture", "notes"):
        upstream = gateway.gateway.pool.get(name).live_client().server_capabilities
        assert upstream is not None
        async with Client(gateway.base_url + f"/mcp/s/{name}", mode=mode) as client:
            assert client.server_capabilities is not None
            through = _offered(client.server_capabilities)
        # mcpproxy serves every one of these features itself, so the upstream decides each of them.
        assert through == _offered(upstream), name
    async with Client(gateway.base_url + "/mcp/s/fixture", mode=mode) as fixture_client:
        assert fixture_client.server_capabilities is not None
        assert _offered(fixture_client.server_capabilities)["subscribe"]
    async with Client(gateway.base_url + "/mcp/s/notes", mode=mode) as notes_client:
        assert notes_client.server_capabilities is not None
        assert not _offered(notes_client.server_capabilities)["subscribe"]  # FastMCP offers no subscriptions


async def test_an_unknown_server_endpoint_is_not_found(gateway: GatewayHandle) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(gateway.base_url + "/mcp/s/nope", json={})
    assert response.status_code == 404


async def test_lists_are_paged_by_mcpproxy_with_opaque_cursors(tmp_path: Path) -> None:
    async with run_fixture("conformance_server", timeout=60) as fixture:
        servers = {"fixture": {"url": fixture.url, "protocol": "legacy"}}
        async with running_gateway(tmp_path, servers, list_page_size=2) as gw:
            await gw.wait_ready("fixture")
            async with Client(gw.direct_url, mode="legacy") as client:
                seen: list[str] = []
                cursor: str | None = None
                for _ in range(50):
                    page = await client.list_tools(cursor=cursor)
                    assert len(page.tools) <= 2
                    seen += [t.name for t in page.tools]
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                everything = [e.direct_name for e in gw.gateway.visible_tools()]
                assert seen == everything
                with pytest.raises(Exception, match="invalid cursor"):
                    await client.list_tools(cursor="not-a-cursor")


async def test_a_subscription_update_reaches_the_subscribed_client(gateway: GatewayHandle) -> None:
    inbox = Inbox()
    async with Client(gateway.direct_url, mode="legacy", message_handler=inbox) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(WATCHED)
        await client.call_tool("fixture__touch_watched_resource", {})
        updated = await inbox.wait_for(types.ResourceUpdatedNotification)
        assert updated.params.uri == WATCHED


async def test_progress_of_the_upstream_streams_to_the_client(gateway: GatewayHandle) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    for url in (gateway.direct_url, gateway.base_url + "/mcp/s/fixture"):
        seen.clear()
        async with Client(url, mode="legacy") as client:
            name = "fixture__test_tool_with_progress" if url.endswith("/all") else "test_tool_with_progress"
            await client.call_tool(name, {}, progress_callback=on_progress)
        assert seen == [0, 50, 100]


async def test_upstream_log_lines_reach_the_client_that_called(gateway: GatewayHandle) -> None:
    lines: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        lines.append(params)

    async with Client(gateway.direct_url, mode="legacy", logging_callback=on_log) as client:
        await client.call_tool("fixture__test_tool_with_logging", {})
    assert [line.data["msg"] for line in lines] == [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_cancel_or_disconnect_reaches_the_upstream(gateway: GatewayHandle, mode: str) -> None:
    """Handshake era: notifications/cancelled; stateless era: the client closes its request stream."""
    async with Client(gateway.direct_url, mode=mode) as client:
        with anyio.move_on_after(1.0):
            await client.call_tool("fixture__wait_for_cancel", {"label": mode})
        with anyio.fail_after(10):
            while True:
                result = await client.call_tool("fixture__cancelled_calls", {})
                if mode in str(result.content):
                    break


async def test_sampling_is_answered_by_the_requesting_client_while_another_is_connected(
    gateway: GatewayHandle,
) -> None:
    asked: list[str] = []

    def sampler(name: str) -> Any:
        async def sample(
            context: ClientRequestContext, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult:
            asked.append(name)
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"from {name}"), model="test"
            )

        return sample

    async with Client(gateway.direct_url, mode="legacy", sampling_callback=sampler("bystander")):
        async with Client(gateway.direct_url, mode="legacy", sampling_callback=sampler("caller")) as caller:
            result = await caller.call_tool("fixture__test_sampling", {"prompt": "hi"})
    assert "from caller" in str(result.content)
    assert asked == ["caller"]


async def test_sampling_is_refused_for_a_client_that_did_not_declare_it(gateway: GatewayHandle) -> None:
    async with Client(gateway.direct_url, mode="legacy") as client:
        result = await client.call_tool("fixture__test_sampling", {"prompt": "hi"})
    assert result.is_error and "did not declare" in str(result.content)


async def test_an_elicitation_is_relayed_to_the_client(gateway: GatewayHandle) -> None:
    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async with Client(gateway.direct_url, mode="legacy", elicitation_callback=elicit) as client:
        result = await client.call_tool("fixture__test_elicitation", {"message": "who are you?"})
    assert "ada@example.com" in str(result.content)


async def test_a_server_added_at_run_time_announces_tools_prompts_and_resources_changes(
    gateway: GatewayHandle,
) -> None:
    inbox = Inbox()
    async with Client(gateway.direct_url, mode="legacy", message_handler=inbox):
        spec = ServerSpec.model_validate({**fixture_entry("notes_server", "--name", "notes2"), "name": "notes2"})
        await gateway.gateway.state.add(spec)
        await inbox.wait_for(types.ToolListChangedNotification, within=30)
        await inbox.wait_for(types.PromptListChangedNotification, within=30)
        await inbox.wait_for(types.ResourceListChangedNotification, within=30)
        inbox.items.clear()
        await gateway.gateway.enable("notes2", False)
        await inbox.wait_for(types.ToolListChangedNotification, within=30)
        await inbox.wait_for(types.ResourceListChangedNotification, within=30)
    await gateway.gateway.state.remove("notes2")  # the gateway is shared by this module's tests


async def test_a_stateless_client_hears_of_changes_through_subscriptions_listen(gateway: GatewayHandle) -> None:
    async with Client(gateway.direct_url, mode="auto") as client:
        async with client.listen(tools_list_changed=True, resources_list_changed=True) as sub:
            await gateway.gateway.enable("notes", False)
            try:
                with anyio.fail_after(30):
                    kinds = set()
                    async for event in sub:
                        kinds.add(type(event).__name__)
                        if {"ToolsListChanged", "ResourcesListChanged"} <= kinds:
                            break
            finally:
                # The gateway is shared by this module's tests: notes comes back for the next ones.
                await gateway.gateway.enable("notes", True)
                await gateway.wait_ready("notes")


async def test_a_request_naming_a_foreign_host_is_refused(gateway: GatewayHandle) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as http:
        for path in ("/mcp", "/mcp/all", "/mcp/s/fixture"):
            evil = await http.post(gateway.base_url + path, json=body, headers={**headers, "Host": "evil.example.com"})
            assert 400 <= evil.status_code < 500
            origin = await http.post(
                gateway.base_url + path, json=body, headers={**headers, "Origin": "http://evil.example.com"}
            )
            assert origin.status_code == 403
        huge = await http.post(gateway.base_url + "/mcp", content=b"x" * (5 * 1024 * 1024), headers=headers)
        assert huge.status_code == 413


@pytest.mark.parametrize(
    ("path", "method", "params", "header", "value"),
    [
        ("/mcp/s/fixture", "tools/list", {}, "Mcp-Method", "prompts/list"),
        ("/mcp/s/fixture", "tools/call", {"name": "test_simple_text", "arguments": {}}, "Mcp-Name", "other"),
        ("/mcp/all", "tools/call", {"name": "fixture__test_simple_text", "arguments": {}}, "Mcp-Name", "notes__add"),
        ("/mcp/all", "prompts/get", {"name": "notes__summarize", "arguments": {"topic": "x"}}, "Mcp-Name", "other"),
    ],
)
async def test_a_stateless_request_whose_routing_header_disagrees_is_refused(
    gateway: GatewayHandle, path: str, method: str, params: dict[str, Any], header: str, value: str
) -> None:
    meta = {
        types.PROTOCOL_VERSION_META_KEY: "2026-07-28",
        types.CLIENT_INFO_META_KEY: {"name": "t", "version": "1"},
        types.CLIENT_CAPABILITIES_META_KEY: {},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
    headers["Mcp-Method"] = method
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    headers[header] = value
    async with httpx2.AsyncClient() as http:
        response = await http.post(gateway.base_url + path, json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == types.HEADER_MISMATCH
        # The same request with agreeing headers is served.
        headers[header] = method if header == "Mcp-Method" else params["name"]
        agreed = await http.post(gateway.base_url + path, json=body, headers=headers)
        assert agreed.status_code == 200 and "result" in agreed.json(), agreed.text


# --- cross-era pairs ------------------------------------------------------------------------------


async def _answer_name(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "ada"})


@pytest.mark.parametrize("upstream", ["auto", "legacy"])
@pytest.mark.parametrize("client_mode", ["auto", "legacy"])
async def test_input_requests_cross_the_protocol_eras(tmp_path: Path, upstream: str, client_mode: str) -> None:
    """Each pair: handshake or stateless client, in front of a handshake or stateless upstream."""
    async with run_fixture("conformance_server", timeout=60) as fixture:
        servers = {"fixture": {"url": fixture.url, "protocol": upstream}}
        async with running_gateway(tmp_path, servers) as gw:
            await gw.wait_ready("fixture")
            async with Client(gw.direct_url, mode=client_mode, elicitation_callback=_answer_name) as client:
                result = await client.call_tool("fixture__ask_name", {})
    text = str(result.content)
    if upstream == "legacy":
        # The upstream asks by request: relayed to a handshake-era client, answered input_required
        # (the upstream call kept pending) for a stateless one.
        assert "hello ada (handshake)" in text
    else:
        # input_required from the upstream: answered by the client (relayed for a handshake-era
        # client, passed through with its requestState untouched for a stateless one).
        assert "hello ada (state asked-once)" in text


async def test_a_stateless_client_gets_the_upstream_input_required_result_untouched(tmp_path: Path) -> None:
    async with run_fixture("conformance_server", timeout=60) as fixture:
        servers = {"fixture": {"url": fixture.url, "protocol": "auto"}}
        async with running_gateway(tmp_path, servers) as gw:
            await gw.wait_ready("fixture")
            async with Client(gw.direct_url, mode="auto", elicitation_callback=_answer_name) as client:
                first = await client.session.call_tool("fixture__ask_name", {}, allow_input_required=True)
                assert isinstance(first, types.InputRequiredResult)
                assert first.request_state and first.request_state != "asked-once"  # sealed by the upstream
                answer = types.ElicitResult(action="accept", content={"name": "bob"})
                second = await client.session.call_tool(
                    "fixture__ask_name",
                    {},
                    input_responses={"name": answer},
                    request_state=first.request_state,
                    allow_input_required=True,
                )
    assert isinstance(second, types.CallToolResult)
    assert "hello bob (state asked-once)" in str(second.content)


async def test_an_upstream_that_goes_away_fails_the_call_promptly_with_a_clear_error(gateway: GatewayHandle) -> None:
    async with Client(gateway.direct_url, mode="legacy") as client:
        with anyio.fail_after(20):
            result = await client.call_tool("notes__crash", {})
    assert result.is_error
    assert "notes" in str(result.content) and "unavailable" in str(result.content)
