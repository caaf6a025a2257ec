"""The parts of code execution that need no engine: arguments, limits, output, admission and
the typed functions generated from tool schemas."""

from __future__ import annotations

import ast
import json
from typing import Any

import anyio
import mcp_types as types
import pytest

from mcpproxy.codemode.model import ExecError, ExecutionRequest, ExecutionResult, Limits, Output, ToolCallLog
from mcpproxy.codemode.pool import Admission
from mcpproxy.codemode.stubs import (
    ident,
    mentioned,
    namespaces,
    py_signature,
    python_prelude,
    ts_type,
    typescript_prelude,
)
from mcpproxy.errors import InvalidArguments, Overloaded
from mcpproxy.routing.catalog import Tier, ToolEntry
from mcpproxy.settings import Settings

HOSTILE = 'Adds.\n"""\nimport os; os.system("id")\n"""\n*/ Deno.exit(3) /* \\" \' \u2028 end'


def entry(server: str, name: str, description: str = "", schema: dict[str, Any] | None = None) -> ToolEntry:
    return ToolEntry(
        server,
        types.Tool(name=name, description=description, input_schema=schema or {"type": "object", "properties": {}}),
    )


# -- arguments and limits -------------------------------------------------------------------------


def test_a_request_takes_language_aliases_and_defaults_to_python() -> None:
    assert ExecutionRequest.from_args({"code": "1"}).language == "python"
    assert ExecutionRequest.from_args({"code": "1", "language": "ts"}).language == "typescript"
    request = ExecutionRequest.from_args(
        {"code": "1", "input": {"a": [1]}, "allowed_tools": ["a:*"], "tier": "read", "max_tool_calls": 3}
    )
    assert request.input == {"a": [1]} and request.allowed_tools == ("a:*",)
    assert request.tier is Tier.READ and request.max_tool_calls == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({}, "'code' is required"),
        ({"code": "  "}, "'code' is required"),
        ({"code": "1", "language": "cobol"}, "unknown language"),
        ({"code": "1", "allowed_tools": "a:b"}, "allowed_tools"),
        ({"code": "1", "input": float("nan")}, "JSON value"),
        ({"code": "1", "timeout_ms": 0}, "timeout_ms"),
        ({"code": "1", "max_tool_calls": True}, "max_tool_calls"),
        ({"code": "1", "tier": "root"}, "tier"),
    ],
)
def test_a_malformed_request_is_refused_with_what_to_send(args: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidArguments, match=says):
        ExecutionRequest.from_args(args)


def test_limits_grant_what_is_asked_up_to_the_settings() -> None:
    settings = Settings(code_timeout_ms=5000, code_max_timeout_ms=20_000, code_max_tool_calls=10, code_memory_mb=64)
    assert Limits.from_settings(settings).timeout_s == 5.0
    assert Limits.from_settings(settings, timeout_ms=60_000).timeout_s == 20.0
    assert Limits.from_settings(settings, max_tool_calls=50).max_tool_calls == 10
    assert Limits.from_settings(settings, max_tool_calls=2).max_tool_calls == 2
    assert Limits.from_settings(settings).memory_bytes == 64 * 1024 * 1024


def test_output_keeps_the_limit_exactly_and_hands_out_complete_lines() -> None:
    lines: list[tuple[str, str]] = []
    output = Output(20, lambda stream, line: lines.append((stream, line)))
    assert output.write("stdout", "hello\nwor")
    assert output.write("stderr", "oops\n")
    assert not output.write("stdout", "ld\n" + "x" * 50)
    assert output.exceeded and output.size == 20
    assert output.stdout == "hello\nworld\n" + "x" * 3
    assert not output.write("stdout", "more")
    output.flush_lines()
    assert lines == [("stdout", "hello"), ("stderr", "oops"), ("stdout", "world"), ("stdout", "xxx")]


def test_a_result_reads_as_text_and_carries_everything_as_structured_content() -> None:
    result = ExecutionResult(
        execution_id="e1",
        language="python",
        ok=False,
        stdout="hi\n",
        error=ExecError("ToolError", "policy_denied: no", 3),
        tool_calls=[ToolCallLog("a:b", 1.5, False, "policy_denied")],
        duration_ms=12.0,
    )
    call = result.to_call_result()
    assert call.is_error
    text = call.content[0].text  # type: ignore[union-attr]
    assert "error: ToolError: policy_denied: no (line 3)" in text and "stdout:\nhi" in text
    assert "failed tool calls: a:b (policy_denied)" in text
    assert call.structured_content is not None
    assert call.structured_content["tool_calls"] == [
        {"name": "a:b", "duration_ms": 1.5, "ok": False, "error": "policy_denied"}
    ]


# -- admission ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_admission_runs_the_limit_queues_the_rest_in_order_and_refuses_past_the_queue_at_once() -> None:
    admission = Admission(limit=2, queue=2)
    order: list[int] = []
    release = anyio.Event()

    async def one(index: int) -> None:
        async with admission.slot(30):
            order.append(index)
            await release.wait()

    async with anyio.create_task_group() as tg:
        for index in range(4):
            tg.start_soon(one, index)
        with anyio.fail_after(5):
            while admission.waiting < 2:
                await anyio.lowlevel.checkpoint()
        assert order == [0, 1] and admission.running == 2
        with pytest.raises(Overloaded, match="2 programs running and 2 waiting"):
            await admission.acquire(30)
        release.set()
    assert order == [0, 1, 2, 3]
    assert admission.running == 0 and admission.refused == 1


@pytest.mark.anyio
async def test_a_program_that_waits_past_its_time_for_a_slot_is_refused() -> None:
    admission = Admission(limit=1, queue=5)
    async with admission.slot(1):
        with pytest.raises(Overloaded, match="no slot came free"):
            await admission.acquire(0.01)
    assert admission.waiting == 0 and admission.running == 0


# -- typed functions ----------------------------------------------------------------------------


def test_names_become_identifiers_in_both_languages() -> None:
    assert ident("my-server.v2") == "my_server_v2"
    assert ident("class") == "class_"
    assert ident("delete") == "delete_"
    assert ident("3d") == "_3d"


def test_only_the_servers_a_program_names_get_functions() -> None:
    spaces = namespaces([entry("memory", "read_graph"), entry("my-files", "read"), entry("notes", "add")])
    assert [n.server for n in mentioned("tools.memory.read_graph()", spaces)] == ["memory"]
    assert [n.server for n in mentioned('tools["my-files"].read()', spaces)] == ["my-files"]
    assert [n.server for n in mentioned("print(dir(tools))", spaces)] == ["memory", "my-files", "notes"]
    assert mentioned("call_tool('notes:add', {})", spaces) == []


def test_a_python_signature_shows_required_optional_and_other_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "limit": {"type": "integer"},
            "x-flag": {"type": "boolean"},
            "from": {"type": "string"},
        },
        "required": ["path"],
    }
    fn = namespaces([entry("files", "list", "Lists.", schema)])["files"].functions[0]
    assert py_signature(fn) == "list(path: str, *, limit: int | None = None, **extra)"
    assert ts_type(schema) == '{ path: string; limit?: number; "x-flag"?: boolean; from?: string }'


def test_a_hostile_description_stays_text_in_generated_python() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer", "description": HOSTILE}}}
    spaces = namespaces([entry("evil", "add", HOSTILE, schema), entry("evil", 'x"); import os; ("', HOSTILE)])
    tree = ast.parse(python_prelude(spaces.values()))
    calls = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id != "_call_typed"
    ]  # fmt: skip
    # The only calls: the helper's call_tool, and one _call_typed per tool with the exact key.
    assert sorted(c.func.id for c in calls if isinstance(c.func, ast.Name)) == ["_Tools", "_Tools_evil", "call_tool"]
    keys = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_call_typed"
        and isinstance(node.args[0], ast.Constant)
    ]  # fmt: skip
    assert keys == ["evil:add", 'evil:x"); import os; ("']
    assert not any(isinstance(node, ast.Import) for node in ast.walk(tree))


def test_a_hostile_description_cannot_close_the_typescript_comment() -> None:
    spaces = namespaces([entry("evil", "add", HOSTILE)])
    source = typescript_prelude(spaces.values())
    assert "*/ Deno.exit" not in source
    assert source.count("*/") == 1  # only the comment's own end
    assert 'callTool("evil:add", args)' in source
    assert json.dumps("evil:add") in source
