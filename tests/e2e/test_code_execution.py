"""Code execution end to end: a real gateway, real upstreams (server-memory, the notes fixture),
a real MCP client, and each engine (embedded Python, CPython in the sandbox, Deno).

One gateway serves the whole module; each test writes to its own entities or notes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.support import paths
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway, stdio_entry

from mcpproxy.gateway import CallContext
from mcpproxy.store.activity import ActivityStore

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LANGUAGES = ["python", "python-full", "typescript"]
RESPONSE_LIMIT = 1000


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that one gateway (and its warm workers) serves every test here."""
    return "asyncio"


@pytest.fixture(scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayHandle]:
    tmp = tmp_path_factory.mktemp("code")
    memory_file = tmp_path_factory.mktemp("memory") / "memory.jsonl"  # a directory of its own: sandbox-friendly
    servers = {
        "memory": stdio_entry(paths.npm_bin("mcp-server-memory"), {"MEMORY_FILE_PATH": str(memory_file)}),
        "notes": fixture_entry("notes_server"),
    }
    async with running_gateway(
        tmp, servers, tool_response_limit=RESPONSE_LIMIT, code_warm_workers=2, code_memory_mb=128
    ) as handle:
        await handle.wait_ready("memory", "notes")
        yield handle


def code_url(gw: GatewayHandle) -> str:
    return gw.base_url + "/mcp/code"


async def run(gw: GatewayHandle, code: str, language: str = "python", **args: Any) -> dict[str, Any]:
    """Run a program through ``/mcp/code``; the structured result."""
    async with Client(code_url(gw), mode="auto") as client:
        result = await client.call_tool("code_execution", {"code": code, "language": language, **args})
    assert isinstance(result.structured_content, dict), result.content
    assert result.is_error == (not result.structured_content.get("ok", False)), result.structured_content
    return dict(result.structured_content)


def program(language: str, python: str, typescript: str) -> str:
    return typescript if language == "typescript" else python


FIND_CALL_FILTER_PY = """
found = search_tools("create entities in a knowledge graph", limit=5)
assert any(t["name"] == "memory:create_entities" for t in found), [t["name"] for t in found]
people = [{"name": n + input["suffix"], "entityType": "person", "observations": ["tested"]} for n in ("Ada", "Alan")]
tools.memory.create_entities(entities=people + [{"name": "Box" + input["suffix"], "entityType": "thing",
                                                 "observations": []}])
graph = call_tool("memory:read_graph", {})
print("entities in the graph:", len(graph["entities"]))
sorted(e["name"] for e in graph["entities"] if e["entityType"] == "person" and e["name"].endswith(input["suffix"]))
"""

FIND_CALL_FILTER_TS = """
const found = await searchTools("create entities in a knowledge graph", 5);
if (!found.some((t: any) => t.name === "memory:create_entities")) throw new Error("not found");
const people = ["Ada", "Alan"].map((n) => ({ name: n + input.suffix, entityType: "person", observations: ["tested"] }));
await tools.memory.create_entities({ entities: [...people, { name: "Box" + input.suffix, entityType: "thing",
                                                             observations: [] }] });
const graph = await callTool("memory:read_graph", {});
console.log("entities in the graph:", graph.entities.length);
return graph.entities.filter((e: any) => e.entityType === "person" && e.name.endsWith(input.suffix))
  .map((e: any) => e.name).sort();
"""


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_program_finds_tools_calls_two_upstream_tools_filters_and_returns_a_small_value(
    gw: GatewayHandle, language: str
) -> None:
    suffix = f"-{language}"
    result = await run(
        gw, program(language, FIND_CALL_FILTER_PY, FIND_CALL_FILTER_TS), language, input={"suffix": suffix}
    )
    assert result["ok"], result["error"]
    assert result["value"] == [f"Ada{suffix}", f"Alan{suffix}"]
    assert "entities in the graph:" in result["stdout"]
    assert [c["name"] for c in result["tool_calls"]] == ["memory:create_entities", "memory:read_graph"]
    assert all(c["ok"] for c in result["tool_calls"])

    # The activity log shows both calls, made from code, with the execution as their parent.
    recorder = gw.gateway.ops.activity
    assert recorder is not None
    with anyio.fail_after(10):
        await recorder.flush()
    store = ActivityStore(gw.gateway.store)
    execution = await store.get(result["execution_id"])
    assert execution is not None and execution.tool == "code_execution" and execution.status == "ok"
    children = await store.children(result["execution_id"])
    calls = [(row.server, row.tool, row.via, row.status) for row in children if row.kind == "call"]
    assert calls == [("memory", "create_entities", "code", "ok"), ("memory", "read_graph", "code", "ok")]


DENIED_PY = """
try:
    call_tool("notes:delete_all_notes", {"confirm": True})
    outcome = "called"
except ToolError as exc:
    outcome = str(exc)
outcome
"""

DENIED_TS = """
try {
  await callTool("notes:delete_all_notes", { confirm: true });
  return "called";
} catch (e) {
  return e instanceof ToolError ? `${e.kind}|${e.message}` : "other";
}
"""


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_call_the_pipeline_refuses_raises_an_error_the_program_catches(
    gw: GatewayHandle, language: str
) -> None:
    result = await run(gw, program(language, DENIED_PY, DENIED_TS), language, tier="read")
    assert result["ok"], result["error"]
    assert "tier_mismatch" in result["value"] and "delete_all_notes" in result["value"]
    assert result["tool_calls"] == [
        {"name": "notes:delete_all_notes", "duration_ms": result["tool_calls"][0]["duration_ms"], "ok": False,
         "error": "tier_mismatch"}
    ]  # fmt: skip


async def test_allowed_tools_refuse_other_tools_and_unknown_entries_are_reported_before_anything_runs(
    gw: GatewayHandle,
) -> None:
    code = """
out = [call_tool("notes:add", {"a": 2, "b": 3})]
try:
    call_tool("memory:read_graph", {})
except ToolError as exc:
    out.append(str(exc))
out
"""
    result = await run(gw, code, allowed_tools=["notes:*"])
    assert result["ok"], result["error"]
    assert result["value"][0] == 5
    assert "policy_denied" in result["value"][1] and "allowed_tools" in result["value"][1]

    # Entries that match no tool are reported at once: the program never starts.
    async with Client(code_url(gw), mode="auto") as client:
        refused = await client.call_tool(
            "code_execution", {"code": "print('ran')", "allowed_tools": ["notes:add", "nope:*", "memory:no_such"]}
        )
    assert refused.is_error
    assert isinstance(refused.structured_content, dict)
    assert refused.structured_content["data"]["unknown"] == ["nope:*", "memory:no_such"]


async def test_a_result_truncated_for_the_model_reaches_the_program_whole(gw: GatewayHandle) -> None:
    size = RESPONSE_LIMIT * 30
    code = f"""
text = call_tool("notes:big_text", {{"size": {size}}})
[len(text), text[-8:]]
"""
    result = await run(gw, code)
    assert result["ok"], result["error"]
    assert result["value"][0] == size


@pytest.mark.parametrize("language", LANGUAGES)
async def test_call_tools_returns_every_value_in_order(gw: GatewayHandle, language: str) -> None:
    code = program(
        language,
        'call_tools([["notes:add", {"a": i, "b": 100}] for i in range(6)])',
        "return await callTools([0, 1, 2, 3, 4, 5].map((i) => ['notes:add', { a: i, b: 100 }]));",
    )
    result = await run(gw, code, language)
    assert result["ok"], result["error"]
    assert result["value"] == [100, 101, 102, 103, 104, 105]
    assert len(result["tool_calls"]) == 6


@pytest.mark.parametrize(
    ("language", "code", "kind", "line"),
    [
        ("python", "x = 1\ny = x +\n", "SyntaxError", 2),
        ("python", "x = 1\ny = x / 0\n", "ZeroDivisionError", 2),
        ("python-full", "import json\n\njson.loads('{')\n", "JSONDecodeError", 3),
        ("typescript", "const a = 1;\nthrow new RangeError('bad ' + a);\n", "RangeError", 2),
    ],
)
async def test_an_error_names_its_type_and_the_line_of_the_program(
    gw: GatewayHandle, language: str, code: str, kind: str, line: int
) -> None:
    result = await run(gw, code, language)
    assert not result["ok"]
    assert result["error"]["type"] == kind
    assert result["error"]["line"] == line


async def test_the_code_endpoint_lists_three_tools_and_calls_nothing_else(gw: GatewayHandle) -> None:
    async with Client(code_url(gw), mode="auto") as client:
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["code_execution", "retrieve_tools", "describe_tool"]
        found = await client.call_tool("retrieve_tools", {"query": "add two numbers"})
        assert not found.is_error
        direct = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 1, "b": 2}})
        assert direct.is_error
        assert "code_execution" in direct.content[0].text  # type: ignore[union-attr]


async def test_code_execution_is_a_proxy_tool_of_the_retrieve_endpoint(gw: GatewayHandle) -> None:
    async with Client(gw.mcp_url, mode="auto") as client:
        assert "code_execution" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("code_execution", {"code": "call_tool('notes:add', {'a': 20, 'b': 22})"})
    assert not result.is_error
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["value"] == 42
    assert "ok (python" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_output_lines_and_tool_calls_stream_as_progress_while_the_program_runs(
    gw: GatewayHandle, language: str
) -> None:
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    code = program(
        language,
        'print("first")\ncall_tool("notes:add", {"a": 1, "b": 1})\nprint("second")\n"done"',
        'console.log("first");\nawait callTool("notes:add", { a: 1, b: 1 });\nconsole.log("second");\nreturn "done";',
    )
    async with Client(code_url(gw), mode="legacy") as client:
        result = await client.call_tool(
            "code_execution", {"code": code, "language": language}, progress_callback=on_progress
        )
    assert not result.is_error
    assert messages[0] == "stdout: first"
    assert messages[1].startswith("tool notes:add ok in ")
    assert messages[2] == "stdout: second"


async def test_an_agent_token_bounds_what_a_program_can_find_and_call(gw: GatewayHandle) -> None:
    secret, _ = await gw.gateway.create_token("code-reader", "read", ["notes"], None)
    code = """
found = [t["name"] for t in search_tools("knowledge graph entities", limit=20)]
try:
    call_tool("memory:read_graph", {})
    memory = "called"
except ToolError as exc:
    memory = str(exc)
[found, call_tool("notes:add", {"a": 1, "b": 2}), memory]
"""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http,
        Client(streamable_http_client(code_url(gw), http_client=http)) as client,
    ):
        result = await client.call_tool("code_execution", {"code": code})
        assert isinstance(result.structured_content, dict)
        found, added, memory = result.structured_content["value"]
        assert not any(name.startswith("memory:") for name in found)
        assert added == 3
        assert "policy_denied" in memory and "memory" in memory
        # Naming a tool the token cannot use in allowed_tools is reported as unknown.
        refused = await client.call_tool("code_execution", {"code": "1", "allowed_tools": ["memory:*"]})
        assert refused.is_error


async def test_the_command_line_runs_a_file_against_the_running_gateway(gw: GatewayHandle, tmp_path: Path) -> None:
    source = tmp_path / "program.py"
    source.write_text('print("hello", input["who"])\ncall_tool("notes:add", {"a": 40, "b": 2})\n', encoding="utf-8")
    done = await anyio.run_process(
        [*_cli(gw), "code", "run", str(source), "--input", json.dumps({"who": "world"})], check=False
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert out.splitlines() == ["hello world", "42"]
    assert "tool notes:add ok" in done.stderr.decode()

    failing = tmp_path / "failing.ts"
    failing.write_text("const x = 1;\nthrow new Error('nope');\n", encoding="utf-8")
    done = await anyio.run_process([*_cli(gw), "code", "run", str(failing), "--json"], check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"] == {"type": "Error", "message": "nope", "line": 2}


async def test_the_repl_runs_each_entry_and_passes_the_last_value_on(gw: GatewayHandle) -> None:
    entries = 'call_tool("notes:add", {"a": 1, "b": 2})\ninput * 10\n:search add numbers\n:quit\n'
    done = await anyio.run_process([*_cli(gw), "code", "repl"], input=entries.encode(), check=False)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert out.startswith("3\n30\n")
    assert '"notes:add"' in out


def _cli(gw: GatewayHandle) -> list[str]:
    from tests.support.gateway import mcpproxy_argv

    return mcpproxy_argv("--config", str(gw.config_path))


HOSTILE = 'Echoes its text.\n"""\nraise SystemExit(7)\n"""\n*/ throw new Error("injected"); /*'


async def test_typed_functions_carry_the_tool_description_and_a_hostile_one_stays_text(gw: GatewayHandle) -> None:
    added = await gw.gateway.call_tool(
        "notes:add_tool", {"name": "echo_evil", "description": HOSTILE}, CallContext(via="test")
    )
    assert not added.is_error
    await gw.wait_for(
        lambda: any(e.key == "notes:echo_evil" for e in gw.gateway.visible_tools()), what="the new tool listed"
    )
    python = await run(gw, 'tools.notes.echo_evil(text="hi")', "python")
    assert python["value"] == "echo_evil: hi", python["error"]
    full = await run(gw, '[tools.notes.echo_evil(text="hi"), tools.notes.echo_evil.__doc__]', "python-full")
    assert full["value"][0] == "echo_evil: hi", full["error"]
    assert full["value"][1].startswith("Tool notes:echo_evil. Echoes its text.") and "SystemExit(7)" in full["value"][1]
    typescript = await run(gw, 'return await tools.notes.echo_evil({ text: "hi" });', "typescript")
    assert typescript["value"] == "echo_evil: hi", typescript["error"]
    described = await run(gw, 'describe_tool("notes:add")["signature"]', "python")
    assert described["value"] == "add(a: int, b: int, **extra)"
