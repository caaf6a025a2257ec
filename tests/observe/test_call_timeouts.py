"""A caller can give one call less time than its server's ``call_timeout`` (REST ``timeout``, the
``timeout`` argument of ``call_tool_*``), never more; and a timeout the caller chose does not count
against the server's circuit breaker, so no client can pause a server for everyone by asking for
too little time. Real gateway, the notes server over stdio, its ``slow`` tool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway

pytestmark = pytest.mark.anyio

WAIT = 90.0


async def rest_call(gw: GatewayHandle, body: dict[str, Any]) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=30.0) as api:
        return await api.post("/call", json=body)


async def test_a_call_can_shorten_its_timeout_but_not_lengthen_it(tmp_path: Path) -> None:
    servers = {
        "notes": fixture_entry("notes_server"),
        "short": fixture_entry("notes_server", "--name", "short", call_timeout=1.0),
    }
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, servers, call_timeout=60.0, breaker_failures=2) as gw:
            await gw.wait_ready("notes", "short")
            # Three calls that give themselves 0.3 s of a 60 s limit: each ends at 0.3 s, clearly...
            for _ in range(3):
                started = time.monotonic()
                answer = await rest_call(gw, {"name": "notes:slow", "args": {"seconds": 20}, "timeout": 0.3})
                assert time.monotonic() - started < 10
                assert answer.status_code == 504, answer.text
                assert answer.json()["error"] == "upstream_timeout" and "0.3 s" in answer.json()["message"]
            # ... and the server's circuit stays closed (two server timeouts in a row would open it).
            guard = gw.gateway.ops.guard("notes")
            assert guard.breaker.state.value == "closed" and guard.breaker.failures == 0
            ok = await rest_call(gw, {"name": "notes:add", "args": {"a": 2, "b": 3}, "timeout": 30})
            assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "5"

            # A longer timeout than the server's does not lengthen it: the server's 1 s applies.
            answer = await rest_call(gw, {"name": "short:slow", "args": {"seconds": 20}, "timeout": 600})
            assert answer.status_code == 504 and "within 1 s" in answer.json()["message"]
            assert gw.gateway.ops.guard("short").breaker.failures == 1  # the server's own limit: counted

            # The same through MCP, as an argument of call_tool_read.
            async with Client(gw.mcp_url) as client:
                timed_out = await client.call_tool(
                    "call_tool_read", {"name": "notes:slow", "args": {"seconds": 20}, "timeout": 0.3}
                )
                assert timed_out.is_error
                assert timed_out.structured_content is not None
                assert timed_out.structured_content["error"] == "upstream_timeout"
                bad = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {}, "timeout": -1})
                assert bad.is_error


async def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            # An integer of 400 digits is too large for a float (1e999, infinity once parsed, is
            # refused with every number JSON does not have: test_rest_api).
            for timeout in ("0", "-1", '"5"', "true", "1" + "0" * 400):
                async with httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers) as api:
                    answer = await api.post(
                        "/call",
                        content=f'{{"name": "notes:add", "args": {{"a": 1, "b": 1}}, "timeout": {timeout}}}'.encode(),
                        headers={"content-type": "application/json"},
                    )
                assert answer.status_code == 400, (timeout, answer.text)
                assert answer.json()["error"] == "invalid_arguments" and "positive number" in answer.json()["message"]
