"""Inbound auth with real processes and clients: agent tokens, tiers, scopes, required auth."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.support.gateway import (
    GatewayHandle,
    fixture_entry,
    mcpproxy_argv,
    mcpproxy_process,
    running_gateway,
    write_config,
)

pytestmark = pytest.mark.anyio

WAIT = 60.0


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = mcpproxy_argv("--config", str(config), *args)
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=False)
    )


async def make_token(gw: GatewayHandle, *args: str) -> str:
    done = await cli(gw.config_path, "token", "create", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@asynccontextmanager
async def client_with(url: str, token: str | None) -> AsyncIterator[Client]:
    """An MCP client that presents ``token`` (the HTTP client is closed with it)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_a_gateway_refuses_to_listen_beyond_loopback_without_required_auth(tmp_path: Path) -> None:
    config = write_config(tmp_path, {}, listen="0.0.0.0:0")
    done = await cli(config, "serve")
    assert done.returncode == 5
    assert "refusing to listen on 0.0.0.0 without authentication" in done.stderr
    assert "mcp_auth" in done.stderr


async def test_with_required_auth_a_call_without_a_token_is_refused_and_a_token_works(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}, mcp_auth="required") as gw:
        await gw.wait_ready("notes")
        async with httpx2.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            anonymous = await http.post(
                gw.mcp_url, json=body, headers={"accept": "application/json, text/event-stream"}
            )
            assert anonymous.status_code == 401
            assert "agent token" in anonymous.json()["error"]["message"]
            wrong = await http.post(gw.mcp_url, json=body, headers={"authorization": "Bearer mcpt_nope"})
            assert wrong.status_code == 401
        token = await make_token(gw, "--tier", "write")
        async with client_with(gw.mcp_url, token) as client:
            result = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 2, "b": 3}})
            assert not result.is_error and "5" in _text(result)
        async with client_with(gw.mcp_url, gw.api_key) as admin:
            assert not (
                await admin.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 1}})
            ).is_error
        revoked = await cli(gw.config_path, "token", "list", "--json")
        token_id = json.loads(revoked.stdout)[0]["id"]
        assert (await cli(gw.config_path, "token", "revoke", token_id)).returncode == 0
        async with httpx2.AsyncClient() as http:
            after = await http.post(gw.mcp_url, json=body, headers={"authorization": f"Bearer {token}"})
            assert after.status_code == 401


async def test_a_read_token_cannot_call_a_write_tool_nor_find_it(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
        await gw.wait_ready("notes")
        token = await make_token(gw, "reader", "--tier", "read")
        async with client_with(gw.mcp_url, token) as client:
            refused = await client.call_tool(
                "call_tool_write", {"name": "notes:write_note", "args": {"title": "t", "body": "b"}}
            )
            assert refused.is_error and "tier 'read'" in _text(refused)
            ok = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 2}})
            assert not ok.is_error
            found = json.loads(
                _text(await client.call_tool("retrieve_tools", {"query": "write note store", "limit": 30}))
            )
            assert found["tools"] and all(t["tier"] == "read" for t in found["tools"])
        stored = (gw.gateway.data_dir / "mcpproxy.db").read_bytes()
        assert token.encode() not in stored


async def test_a_token_limited_to_some_servers_sees_and_calls_only_those(tmp_path: Path) -> None:
    servers = {"notes": fixture_entry("notes_server"), "other": fixture_entry("notes_server", "--name", "other")}
    async with running_gateway(tmp_path, servers) as gw:
        await gw.wait_ready("notes", "other")
        token = await make_token(gw, "scoped", "--tier", "destructive", "--servers", "other")
        async with client_with(gw.mcp_url, token) as client:
            refused = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 2}})
            assert refused.is_error and "may not use server 'notes'" in _text(refused)
            found = json.loads(_text(await client.call_tool("retrieve_tools", {"query": "add numbers", "limit": 30})))
            assert {t["server"] for t in found["tools"]} == {"other"}
        async with client_with(gw.direct_url, token) as direct:
            names = {t.name for t in (await direct.list_tools()).tools}
            assert names and all(n.startswith("other__") for n in names)


async def test_the_rest_api_refuses_a_foreign_host_or_origin_even_with_the_key(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {}) as gw, httpx2.AsyncClient() as http:
        url = gw.base_url + "/api/v1/status"
        assert (await http.get(url, headers=gw.api_headers)).status_code == 200
        rebinding = await http.get(url, headers={**gw.api_headers, "host": "evil.example.com"})
        assert rebinding.status_code == 421
        cross_site = await http.get(url, headers={**gw.api_headers, "origin": "http://evil.example.com"})
        assert cross_site.status_code == 403


async def test_on_a_non_loopback_bind_an_mcp_call_without_a_token_is_refused(tmp_path: Path) -> None:
    # Bound to every interface (the case that must require auth); the test only talks to 127.0.0.1.
    config = write_config(tmp_path, {"notes": fixture_entry("notes_server")}, mcp_auth="required")
    data = json.loads(config.read_text(encoding="utf-8"))
    port = data["listen"].rsplit(":", 1)[1]
    data["listen"] = f"0.0.0.0:{port}"
    config.write_text(json.dumps(data), encoding="utf-8")
    async with mcpproxy_process(config) as (_proc, _base), httpx2.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/mcp"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        refused = await http.post(url, json=body, headers={"accept": "application/json, text/event-stream"})
        assert refused.status_code == 401


async def test_a_token_with_a_lifetime_works_until_it_expires(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}, mcp_auth="required") as gw:
        await gw.wait_ready("notes")
        async with httpx2.AsyncClient() as http:
            made = await http.post(
                gw.base_url + "/api/v1/tokens", headers=gw.api_headers, json={"name": "brief", "expires_in": 1.5}
            )
            assert made.status_code == 201, made.text
            token, expires_at = made.json()["token"], made.json()["expires_at"]
            assert expires_at == pytest.approx(made.json()["created_at"] + 1.5)
        async with client_with(gw.mcp_url, token) as client:
            ok = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 2}})
            assert not ok.is_error
        await gw.wait_for(lambda: not gw.gateway.tokens()[0].active(), within=WAIT, what="the token to expire")
        async with httpx2.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            after = await http.post(gw.mcp_url, json=body, headers={"authorization": f"Bearer {token}"})
            assert after.status_code == 401


NOT_SECONDS = "'expires_in' must be a positive number of seconds"


@pytest.mark.parametrize(
    ("lifetime", "message"),
    [
        ("0", NOT_SECONDS),
        ("-5", NOT_SECONDS),
        ('"60"', NOT_SECONDS),
        ("true", NOT_SECONDS),
        ("[60]", NOT_SECONDS),
        ("1" + "0" * 400, NOT_SECONDS),
        # Numbers JSON does not have: the REST API refuses them in any body.
        ("NaN", "request body is not JSON: NaN is not a JSON number"),
        ("Infinity", "request body is not JSON: Infinity is not a JSON number"),
        ("-Infinity", "request body is not JSON: -Infinity is not a JSON number"),
        ("1e999", "request body is not JSON: 1e999 is out of range for a number"),
    ],
)
async def test_a_token_with_a_lifetime_that_is_not_a_positive_number_of_seconds_is_refused(
    tmp_path: Path, lifetime: str, message: str
) -> None:
    async with running_gateway(tmp_path, {}) as gw, httpx2.AsyncClient() as http:
        url = gw.base_url + "/api/v1/tokens"
        body = '{"name": "t", "expires_in": ' + lifetime + "}"
        refused = await http.post(url, headers={**gw.api_headers, "content-type": "application/json"}, content=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"] == message
        listed = await http.get(url, headers=gw.api_headers)
        assert listed.status_code == 200 and listed.json()["tokens"] == []
