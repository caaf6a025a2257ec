"""The REST API ``/api/v1`` of an in-process gateway: the API key, servers CRUD with errors that
say what is wrong, search, calls through the same pipeline as MCP (tier check included), status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway
from tests.support.mcp_raw import raw_tools_call

from mcpproxy.cli.common import API_KEY_FILE as CLI_API_KEY_FILE
from mcpproxy.endpoints.rest import API_KEY_FILE

pytestmark = pytest.mark.anyio

WAIT = 60.0

# A server that is never started: adding it disabled touches only the config file.
DORMANT = {"command": "never-started-mcp-server", "args": ["--flag"], "enabled": False}


def api(gw: GatewayHandle, headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=gw.base_url + "/api/v1", headers=gw.api_headers if headers is None else headers, timeout=30.0
    )


def config_servers(gw: GatewayHandle) -> dict[str, Any]:
    servers: dict[str, Any] = json.loads(gw.config_path.read_text(encoding="utf-8"))["mcpServers"]
    return servers


def content_text(body: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in body.get("content", []))


async def test_requests_without_the_api_key_or_with_a_wrong_one_are_refused(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}) as gw:
            async with api(gw, headers={}) as anonymous:
                for method, path in (("GET", "/status"), ("GET", "/servers"), ("POST", "/call")):
                    response = await anonymous.request(method, path)
                    assert response.status_code == 401, (method, path, response.text)
                    assert response.json()["error"] == "unauthorized"
                    assert "api_key" in response.json()["hint"]
                wrong = await anonymous.get("/status", headers={"X-API-Key": gw.api_key + "x"})
                assert wrong.status_code == 401
                wrong_bearer = await anonymous.get("/status", headers={"Authorization": "Bearer nope"})
                assert wrong_bearer.status_code == 401
                # Refused requests change nothing.
                refused_add = await anonymous.post("/servers", json={"name": "sneaky", **DORMANT})
                assert refused_add.status_code == 401
                assert "sneaky" not in config_servers(gw)

                assert (await anonymous.get("/status", headers=gw.api_headers)).status_code == 200
                bearer = await anonymous.get("/status", headers={"Authorization": f"Bearer {gw.api_key}"})
                assert bearer.status_code == 200
            # The key is the one in the data dir, where the CLI looks for it.
            key_file = gw.gateway.data_dir / API_KEY_FILE
            assert key_file.read_text(encoding="utf-8").strip() == gw.api_key
            assert CLI_API_KEY_FILE == API_KEY_FILE
            assert key_file.stat().st_mode & 0o077 == 0


async def test_servers_are_added_updated_and_removed_with_errors_that_name_the_problem(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}) as gw, api(gw) as client:
            added = await client.post("/servers", json={"name": "dormant", **DORMANT})
            assert added.status_code == 201, added.text
            assert added.json()["added"] == "dormant"
            assert config_servers(gw)["dormant"] == DORMANT

            duplicate = await client.post("/servers", json={"name": "dormant", **DORMANT})
            assert duplicate.status_code == 409
            assert duplicate.json()["error"] == "conflict"

            nameless = await client.post("/servers", json=DORMANT)
            assert nameless.status_code == 400
            assert nameless.json()["data"]["key"] == "name"

            no_target = await client.post("/servers", json={"name": "empty"})
            assert no_target.status_code == 400
            assert "command" in no_target.json()["message"]

            not_json = await client.post("/servers", content=b"{nope", headers={"Content-Type": "application/json"})
            assert not_json.status_code == 400
            assert not_json.json()["error"] == "invalid_arguments"

            bad_args = await client.patch("/servers/dormant", json={"args": "--verbose"})
            assert bad_args.status_code == 400
            assert bad_args.json()["error"] == "config_error"
            assert bad_args.json()["data"]["key"] == "mcpServers.dormant.args"
            bad_timeout = await client.patch("/servers/dormant", json={"call_timeout": -1})
            assert bad_timeout.status_code == 400
            assert bad_timeout.json()["data"]["key"] == "mcpServers.dormant.call_timeout"
            # A key mcpproxy does not know is refused, naming the closest one it knows. (A config file
            # keeps other clients' keys; a request to the API is for mcpproxy alone, and a typo dropped
            # unseen would leave the user believing the change was made.)
            typo = await client.patch("/servers/dormant", json={"call_timout": 5, "args": ["--new"]})
            assert typo.status_code == 400
            assert typo.json()["message"] == "unknown key 'call_timout' for server 'dormant'; nothing was changed"
            assert typo.json()["hint"].startswith("did you mean 'call_timeout'? known keys: args, call_timeout")
            assert typo.json()["data"]["key"] == "mcpServers.dormant.call_timout"
            pasted_entry = {"name": "pasted", **DORMANT, "autoApprove": [], "alwaysAllow": []}
            pasted = await client.post("/servers", json=pasted_entry)
            assert pasted.status_code == 400
            assert pasted.json()["message"].startswith("unknown keys 'alwaysAllow', 'autoApprove' for server 'pasted'")
            assert (await client.get("/servers/pasted")).status_code == 404
            # A refused update leaves the file as it was.
            assert config_servers(gw)["dormant"] == DORMANT

            updated = await client.patch("/servers/dormant", json={"args": ["--other"], "description": "kept asleep"})
            assert updated.status_code == 200, updated.text
            assert updated.json()["server"]["args"] == ["--other"]
            on_disk = config_servers(gw)["dormant"]
            assert on_disk["args"] == ["--other"] and on_disk["description"] == "kept asleep"

            one = await client.get("/servers/dormant")
            assert one.status_code == 200
            assert one.json()["enabled"] is False
            assert one.json()["config"]["description"] == "kept asleep"
            listing = (await client.get("/servers")).json()["servers"]
            assert [s["name"] for s in listing] == ["dormant"]

            removed = await client.delete("/servers/dormant")
            assert removed.status_code == 200
            assert removed.json() == {"removed": "dormant"}
            assert config_servers(gw) == {}

            for method in ("GET", "PATCH", "DELETE"):
                missing = await client.request(method, "/servers/dormant", json={} if method == "PATCH" else None)
                assert missing.status_code == 404, (method, missing.text)
                assert missing.json()["error"] == "unknown_server"
            assert (await client.post("/servers/dormant/enable")).status_code == 404
            assert (await client.get("/servers/dormant/logs")).status_code == 404


async def test_search_and_calls_go_through_the_gateway_to_the_real_upstream(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw, api(gw) as client:
            await gw.wait_ready("notes")

            search = await client.get("/search", params={"q": "add two numbers", "limit": 3})
            assert search.status_code == 200
            hits = search.json()["tools"]
            assert hits[0]["name"] == "notes:add"
            assert hits[0]["call_with"] == "call_tool_read"
            assert isinstance(hits[0]["score"], float)
            assert (await client.get("/search", params={"q": "  "})).status_code == 400
            not_a_number = await client.get("/search", params={"q": "add", "limit": "lots"})
            assert not_a_number.status_code == 400
            assert "'limit' must be an integer" in not_a_number.json()["message"]

            logs = await client.get("/servers/notes/logs", params={"lines": 5})
            assert logs.status_code == 200
            assert any("Starting MCP server" in line for line in logs.json()["lines"])
            from_start = (await client.get("/servers/notes/logs", params={"offset": 0})).json()
            assert "Starting MCP server" in from_start["text"]
            assert from_start["offset"] >= logs.json()["offset"] > 0
            assert (await client.get("/servers/notes/logs", params={"lines": "all"})).status_code == 400

            tools = (await client.get("/tools", params={"server": "notes"})).json()
            assert "notes:delete_all_notes" in {t["name"] for t in tools["tools"]}
            # A filter naming no server is a mistake to report, not an empty list.
            nosuch = await client.get("/tools", params={"server": "nosuch"})
            assert nosuch.status_code == 404 and nosuch.json()["error"] == "unknown_server"
            described = (await client.get("/tools/notes/add")).json()
            assert set(described["input_schema"]["properties"]) == {"a", "b"}

            call = await client.post("/call", json={"name": "notes:add", "args": {"a": 2, "b": 3}})
            assert call.status_code == 200, call.text
            assert content_text(call.json()) == "5"
            assert not call.json().get("isError")
            echoed = await client.post("/call", json={"name": "notes:echo", "args": {"text": "héllo"}, "tier": "read"})
            assert content_text(echoed.json()) == "héllo"

            # With a tier, the tool must fit it; without one, the tool's own tier applies.
            too_low = await client.post(
                "/call", json={"name": "notes:delete_all_notes", "args": {"confirm": False}, "tier": "read"}
            )
            assert too_low.status_code == 403
            assert too_low.json()["error"] == "tier_mismatch"
            assert "call_tool_destructive" in too_low.json()["hint"]
            for tier in ("destructive", None):
                allowed = await client.post(
                    "/call", json={"name": "notes:delete_all_notes", "args": {"confirm": False}, "tier": tier}
                )
                assert allowed.status_code == 200, (tier, allowed.text)
                assert "nothing deleted" in content_text(allowed.json())
            bad_tier = await client.post("/call", json={"name": "notes:add", "args": {}, "tier": "root"})
            assert bad_tier.status_code == 400

            unknown = await client.post("/call", json={"name": "notes:nope", "args": {}})
            assert unknown.status_code == 404
            assert unknown.json()["error"] == "unknown_tool"
            wrong_args = await client.post("/call", json={"name": "notes:add", "args": {"a": "two"}})
            assert wrong_args.status_code == 400
            assert wrong_args.json()["error"] == "invalid_arguments"
            assert (await client.post("/call", json={"name": "notes:add", "args": [1, 2]})).status_code == 400

            status = await client.get("/status")
            assert status.status_code == 200
            body = status.json()
            assert {
                "version",
                "listen",
                "data_dir",
                "config_path",
                "uptime_s",
                "tools_indexed",
                "all_attempted",
                "states",
                "servers",
                "config_error",
            } <= set(body)
            assert body["listen"] == gw.base_url.removeprefix("http://")
            assert body["config_path"] == str(gw.config_path)
            assert body["data_dir"] == str(gw.gateway.data_dir)
            assert body["tools_indexed"] >= 10
            assert body["all_attempted"] is True
            assert body["states"] == {"ready": 1}
            assert body["config_error"] is None
            (notes,) = body["servers"]
            assert notes["name"] == "notes"
            assert notes["state"] == "ready"
            assert notes["enabled"] is True
            assert notes["transport"] == "stdio"
            assert notes["tool_count"] >= 10


async def test_a_number_json_does_not_have_is_refused_at_both_front_doors(tmp_path: Path) -> None:
    # Python's JSON parser and the SDK's read NaN and Infinity; sent on, they would reach the server as null.
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw, api(gw) as client:
            await gw.wait_ready("notes")
            said = "invalid arguments for 'notes:slow': argument 'seconds': NaN is not a JSON number"
            rest = await client.post(
                "/call",
                content='{"name": "notes:slow", "args": {"seconds": NaN}}',
                headers={"content-type": "application/json"},
            )
            assert rest.status_code == 400
            assert rest.json()["error"] == "invalid_arguments"
            assert rest.json()["message"] == "request body is not JSON: NaN is not a JSON number"
            arguments = '{"name": "notes:slow", "args": {"seconds": NaN}}'
            result = await raw_tools_call(gw.mcp_url, "call_tool_read", arguments)
            assert result["isError"] and result["structuredContent"]["message"] == said


async def test_a_server_with_an_infinite_timeout_is_refused_and_not_stored(tmp_path: Path) -> None:
    # JSON text says infinity as 1e999 (Python's parser also reads Infinity); stored, it made the file invalid JSON.
    # The REST API refuses such numbers in any body; the settings refuse them too (a config file,
    # the upstream_servers tool: tests/test_settings.py, tests/config/test_config_loader.py).
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}) as gw, api(gw) as client:
            json_headers = {"content-type": "application/json"}
            before = gw.config_path.read_bytes()
            for key, number, message in (
                ("call_timeout", "1e999", "1e999 is out of range for a number"),
                ("connect_timeout", "Infinity", "Infinity is not a JSON number"),
                ("call_timeout", "NaN", "NaN is not a JSON number"),
            ):
                body = f'{{"name": "inf1", "command": "x", "enabled": false, "{key}": {number}}}'
                added = await client.post("/servers", content=body, headers=json_headers)
                assert added.status_code == 400, added.text
                assert added.json()["message"] == f"request body is not JSON: {message}"
                assert (await client.get("/servers/inf1")).status_code == 404
                assert gw.config_path.read_bytes() == before
            json.loads(before)

            # The same through an update of a stored server.
            assert (await client.post("/servers", json={"name": "dormant", **DORMANT})).status_code == 201
            stored = gw.config_path.read_bytes()
            patched = await client.patch("/servers/dormant", content='{"call_timeout": 1e999}', headers=json_headers)
            assert patched.status_code == 400, patched.text
            assert gw.config_path.read_bytes() == stored
            one = await client.get("/servers/dormant")
            assert one.status_code == 200 and "call_timeout" not in one.json()["config"]
            assert json.loads(stored)["mcpServers"]["dormant"] == DORMANT


async def test_a_body_holding_what_json_cannot_carry_on_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    # Each of these once answered 500, and some left a record that made a listing answer 500 after.
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw, api(gw) as client:
            await gw.wait_ready("notes")
            before = gw.config_path.read_bytes()
            refused = {
                ("/tokens", r'{"name": "t", "servers": ["\ud800"]}'): "field 'servers[0]': holds an unpaired surrogate",
                ("/tokens", r'{"name": "\udc00"}'): "field 'name': holds an unpaired surrogate",
                ("/tokens", '{"name": "t", "expires_in": 1' + "0" * 400 + "}"): "'expires_in' must be a positive",
                ("/servers", r'{"name": "s", "command": "x\ud800", "enabled": false}'): "field 'command'",
                ("/servers", '{"name": "s", "command": "x", "call_timeout": 1e999}'): "1e999 is out of range",
                ("/call", r'{"name": "\ud800"}'): "field 'name': holds an unpaired surrogate",
                ("/call", '{"name": "notes:echo", "args": {"text": "x"}, "timeout": 1' + "0" * 400 + "}"): (
                    "'timeout' must be a positive"
                ),
                ("/call", '{"name": "notes:echo", "args": ' + "[" * 100_000 + "]" * 100_000 + "}"): (
                    "request body is nested too deeply"
                ),
                ("/call", '{"name": "notes:echo", "args": {"text": "x", "d": ' + "[" * 70 + "]" * 70 + "}}"): (
                    "nested more than 64 levels deep"
                ),
            }
            for (route, body), message in refused.items():
                answer = await client.post(route, content=body, headers={"content-type": "application/json"})
                assert answer.status_code == 400, (route, body[:80], answer.text[:300])
                assert message in answer.json()["message"], (route, answer.json())
            assert (await client.get("/tokens")).json()["tokens"] == []
            assert (await client.get("/servers/s")).status_code == 404
            assert gw.config_path.read_bytes() == before
            assert (await client.get("/activity")).status_code == 200
            assert gw.gateway.fatal is None


async def test_an_unknown_route_or_method_and_args_that_are_not_an_object_get_json_errors(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw, api(gw) as client:
            await gw.wait_ready("notes")
            nowhere = await client.get("/nowhere")
            assert nowhere.status_code == 404
            assert nowhere.json()["error"] == "not_found"
            assert nowhere.json()["message"] == "GET /api/v1/nowhere: no such API route"
            wrong_method = await client.delete("/status")
            assert wrong_method.status_code == 405
            assert wrong_method.json()["error"] == "method_not_allowed"
            assert "GET" in wrong_method.headers["allow"] and "GET" in wrong_method.json()["hint"]
            # Without the key, still the key's error first: the API says nothing about its routes.
            async with api(gw, headers={}) as anonymous:
                assert (await anonymous.get("/nowhere")).status_code == 401
            # 'args' that is not an object is the caller's error, even when it is falsy.
            not_objects: tuple[object, ...] = (0, "", False, [], "x")
            for args in not_objects:
                answer = await client.post("/call", json={"name": "notes:echo", "args": args})
                assert answer.status_code == 400, (args, answer.text)
                assert answer.json()["message"] == "'args' must be an object", args
            no_args = await client.post("/call", json={"name": "notes:echo", "args": None})  # null: no arguments
            assert no_args.status_code == 400 and "'text' is a required property" in no_args.json()["message"]
