"""A call holding what no record can store does not stop the activity log, nor the gateway.

The activity writer runs in the gateway's task group: before it made every value storable, one
call whose arguments held an unpaired surrogate (``"\\ud800"`` in the JSON text) or nested 600
levels deep made it raise, which stopped the whole gateway. Such calls are now refused at the door
with an error saying where, their records are written with the values made storable, and the
gateway keeps serving. Over MCP, the door where the SDK parses the request (the REST API refuses
these bodies before any call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.observe.support import activity, flush_activity
from tests.support.gateway import fixture_entry, running_gateway
from tests.support.mcp_raw import raw_tools_call

pytestmark = pytest.mark.anyio

WAIT = 90.0


def said(result: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in result["content"])


async def test_calls_holding_unstorable_values_are_refused_recorded_and_the_gateway_keeps_serving(
    tmp_path: Path,
) -> None:
    deep = "[" * 600 + "]" * 600
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            echo = r'{"name": "notes:echo", "args": {"text": "\ud800"}}'
            surrogate = await raw_tools_call(gw.mcp_url, "call_tool_read", echo)
            assert surrogate["isError"]
            assert "argument 'text': holds an unpaired surrogate" in said(surrogate)
            nested = await raw_tools_call(
                gw.mcp_url, "call_tool_read", '{"name": "notes:echo", "args": {"text": "a", "d": ' + deep + "}}"
            )
            assert nested["isError"] and "nested more than 64 levels deep" in said(nested)
            unknown = await raw_tools_call(gw.mcp_url, "call_tool_read", r'{"name": "\ud800", "args": {}}')
            assert unknown["isError"] and "\\ud800" in said(unknown)
            direct = await raw_tools_call(gw.direct_url, "notes__echo", r'{"text": "\udc00x"}')
            assert direct["isError"] and "unpaired surrogate" in said(direct)

            # The gateway still serves, and the server's session survived: nothing reached its pipe.
            fine = '{"name": "notes:echo", "args": {"text": "still here"}}'
            ok = await raw_tools_call(gw.mcp_url, "call_tool_read", fine)
            assert not ok.get("isError") and said(ok) == "still here"
            await flush_activity(gw)
            assert gw.gateway.fatal is None
            assert gw.gateway.ops.activity is not None and gw.gateway.ops.activity.dropped == 0

            records = [r for r in await activity(gw, kind="call") if r["via"] != "rest"]
            by_text = {json.dumps(r.get("arguments"), ensure_ascii=True): r for r in records}
            assert any("\\\\ud800" in text for text in by_text), by_text.keys()
            assert any("[nested too deep]" in text for text in by_text)
            assert {r["status"] for r in records} >= {"refused", "ok"}
            assert any(r["tool"] == "\\ud800" for r in records)
