"""A journey through a real gateway leaves an activity log and metrics that say what happened.

One gateway with the notes server (a real FastMCP process over stdio) takes calls over REST, over
MCP in retrieve mode and in direct mode: successes, a tool error, a tier refusal, an unknown tool.
Afterwards the activity records and the Prometheus counters must agree with each other and with
what was done, call by call; arguments are stored redacted; the CLI lists, shows and exports the
same records.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from tests.observe.support import activity, call_counts, flush_activity, metric, metric_call_counts, scrape
from tests.support.gateway import GatewayHandle, fixture_entry, mcpproxy_argv, running_gateway

pytestmark = pytest.mark.anyio

WAIT = 90.0
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


async def rest_call(gw: GatewayHandle, name: str, args: dict[str, Any], tier: str | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=30.0) as api:
        body: dict[str, Any] = {"name": name, "args": args}
        if tier:
            body["tier"] = tier
        return await api.post("/call", json=body, headers={"X-Request-Id": f"req-{name}-{len(args)}"})


async def cli(gw: GatewayHandle, *args: str) -> str:
    done = await anyio.run_process(mcpproxy_argv("--config", str(gw.config_path), *args), check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


async def test_activity_records_and_metrics_match_what_the_calls_did(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            await gw.wait_for(lambda: gw.gateway.catalog.get("notes", "add") is not None, what="notes tools")

            for i in range(3):
                assert (await rest_call(gw, "notes:add", {"a": i, "b": 1})).status_code == 200
            failed = await rest_call(gw, "notes:fail", {"message": "it broke"})
            assert failed.json()["isError"] is True
            refused = await rest_call(gw, "notes:delete_all_notes", {"confirm": True}, tier="read")
            assert refused.status_code == 403
            unknown = await rest_call(gw, "notes:no_such_tool", {})
            assert unknown.status_code == 404
            secret = await rest_call(gw, "notes:echo", {"text": f"token {GITHUB_TOKEN} here"})
            assert secret.status_code == 200
            async with Client(gw.mcp_url, mode="legacy") as client:
                result = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 2, "b": 2}})
                assert not result.is_error
            async with Client(gw.direct_url) as client:
                result = await client.call_tool("notes__add", {"a": 5, "b": 5})
                assert not result.is_error

            await flush_activity(gw)
            records = await activity(gw)
            samples = await scrape(gw.base_url)

            # What was done, call by call, in the activity log...
            expected = {
                ("notes", "add", "ok"): 5,
                ("notes", "fail", "error"): 1,
                ("notes", "delete_all_notes", "refused"): 1,
                ("-", "notes:no_such_tool", "refused"): 1,
                ("notes", "echo", "ok"): 1,
            }
            assert dict(call_counts(records)) == expected
            # ... and the same in the metrics (an unknown tool is counted without its name).
            from_metrics = dict(metric_call_counts(samples))
            assert from_metrics == {**{k: v for k, v in expected.items() if k[0] != "-"}, ("-", "-", "refused"): 1}
            assert metric(samples, "mcpproxy_tool_call_duration_seconds_count", server="notes") == 8
            assert metric(samples, "mcpproxy_upstream_duration_seconds_count", server="notes") == 7
            assert metric(samples, "mcpproxy_gateway_overhead_seconds_count") == 7
            assert metric(samples, "mcpproxy_policy_decisions_total", check="tier", action="deny") == 1
            assert metric(samples, "mcpproxy_upstream_state", server="notes", state="ready") == 1
            assert metric(samples, "mcpproxy_index_tools") == len(gw.gateway.index) > 0
            assert metric(samples, "mcpproxy_circuit_state", server="notes") == 0

            calls = [r for r in records if r["kind"] == "call"]
            by_via = {r["via"] for r in calls}
            assert by_via == {"rest", "mcp", "mcp-direct"}
            for r in calls:
                assert r["id"] and r["request_id"] and r["ts"] > 0 and r["duration_ms"] >= 0
            ok_rest = [r for r in calls if r["via"] == "rest" and r["tool"] == "add"]
            assert all(r["request_id"] == "req-notes:add-2" for r in ok_rest)
            assert all(r["upstream_ms"] is not None and r["result_size"] == 1 for r in ok_rest)
            assert ok_rest[0]["arguments"] in ({"a": 0, "b": 1}, {"a": 1, "b": 1}, {"a": 2, "b": 1})
            assert all(r["args_size"] == len(json.dumps(r["arguments"], separators=(",", ":"))) for r in ok_rest)
            refusal = next(r for r in calls if r["status"] == "refused" and r["tool"] == "delete_all_notes")
            assert refusal["error_kind"] == "tier_mismatch" and refusal["tier"] == "read"
            mcp_call = next(r for r in calls if r["via"] == "mcp")
            assert mcp_call["tier"] == "read" and mcp_call["client"]

            # Arguments are stored redacted; the secret is nowhere in the log.
            echo = next(r for r in calls if r["tool"] == "echo")
            assert GITHUB_TOKEN not in json.dumps(records)
            assert "[REDACTED:github_token]" in echo["arguments"]["text"]

            # A policy decision is a record of its own, tied to its call.
            policy = [r for r in records if r["kind"] == "policy" and r["status"] == "deny"]
            assert [(p["tool"], p["detail"]["check"], p["parent_id"]) for p in policy] == [
                ("delete_all_notes", "tier", refusal["id"])
            ]
            # Server state changes are records too: the notes server went connecting -> ready.
            states = [r["status"] for r in sorted(records, key=lambda r: r["seq"]) if r["kind"] == "state"]
            assert states[:2] == ["connecting", "ready"]

            # Filters.
            assert {r["tool"] for r in await activity(gw, server="notes", status="ok")} == {"add", "echo"}
            assert len(await activity(gw, kind="call", tool="add", since="1h")) == 5
            assert await activity(gw, kind="call", until="2000-01-01T00:00:00Z") == []

            # The CLI shows the same log.
            listed = json.loads(await cli(gw, "activity", "list", "--kind", "call", "--status", "refused", "--json"))
            assert {r["id"] for r in listed} == {r["id"] for r in calls if r["status"] == "refused"}
            shown = json.loads(await cli(gw, "activity", "show", refusal["id"][:20], "--json"))
            assert shown["id"] == refusal["id"] and shown["error_kind"] == "tier_mismatch"
            human = await cli(gw, "activity", "list", "--tool", "fail")
            assert "notes:fail" in human and "error" in human
            jsonl = tmp_path / "activity.jsonl"
            await cli(gw, "activity", "export", "--kind", "call", "-o", str(jsonl))
            exported = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
            assert sorted(r["id"] for r in exported) == sorted(r["id"] for r in calls)
            assert [r["seq"] for r in exported] == sorted(r["seq"] for r in exported)
            table = list(csv.DictReader(io.StringIO(await cli(gw, "activity", "export", "--format", "csv",
                                                                  "--server", "notes", "--kind", "call"))))
            assert len(table) == 8 and {row["server"] for row in table} == {"notes"}
            assert GITHUB_TOKEN not in jsonl.read_text(encoding="utf-8")
            watched = await cli(gw, "activity", "watch", "--max-seconds", "0.1")
            assert watched == ""


async def test_a_seq_outside_sqlites_integer_range_is_refused_naming_the_parameter(tmp_path: Path) -> None:
    # Such a seq used to reach SQLite: the list answered 500 (OverflowError) and the export cut its stream.
    too_big = str(2**63)
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}) as gw:
            assert (await rest_call(gw, "nowhere:nothing", {})).status_code == 404  # one record to find
            await flush_activity(gw)
            api = httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=30.0)
            async with api:
                for name in ("after", "before"):
                    for value in ("99999999999999999999", too_big, "-1", "-99999999999999999999"):
                        for path in ("/activity", "/activity/export", "/activity/export?format=csv"):
                            response = await api.get(path, params={name: value})
                            assert response.status_code == 400, (path, name, value, response.text)
                            assert response.json()["error"] == "invalid_arguments"
                            assert response.json()["message"].startswith(f"'{name}' must be a record's seq"), (
                                response.text
                            )
                # The ends of the range are still seqs.
                biggest = str(2**63 - 1)
                for params in ({"after": biggest}, {"before": biggest}, {"after": "0"}, {"before": "0"}):
                    listed = await api.get("/activity", params=params)
                    assert listed.status_code == 200, (params, listed.text)
                    exported = await api.get("/activity/export", params=params)
                    assert exported.status_code == 200, (params, exported.text)
                assert (await api.get("/activity", params={"after": biggest})).json()["records"] == []
                everything = (await api.get("/activity", params={"before": biggest})).json()["records"]
                assert everything and everything == (await activity(gw))
