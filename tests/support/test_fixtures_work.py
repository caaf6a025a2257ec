"""The test support works: real fixture servers, real installed upstream servers, real processes."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client

from tests.fixtures.broken_server import EXIT_MESSAGE, GARBAGE_LINES, HANG_MESSAGE
from tests.fixtures.notes_server import big_text_pattern
from tests.support import paths
from tests.support.net import LOOPBACK, free_port, port_is_open, wait_port
from tests.support.procs import ProcessStartError, run_process
from tests.support.servers import fixture_stdio, npm_stdio, pyserver_stdio, run_fixture

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
NOTES_TOOLS = {
    "add",
    "echo",
    "write_note",
    "delete_all_notes",
    "big_text",
    "slow",
    "crash",
    "env_var",
    "fail",
    "add_tool",
    "remove_tool",
}


async def all_tools(client: Client, page_cap: int = 20) -> tuple[list[types.Tool], int]:
    """Every tool, following ``next_cursor``; returns the tools and how many pages it took."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    for page_number in range(1, page_cap + 1):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools, page_number
    raise AssertionError(f"tools/list still had a next page after {page_cap} pages")


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


class Notifications:
    """A ``message_handler`` that keeps what arrives and lets a test wait for a kind of message."""

    def __init__(self) -> None:
        self.received: list[IncomingMessage] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        self.received.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, kind: type[BaseException] | type[types.ServerNotification], count: int = 1) -> None:
        while sum(isinstance(message, kind) for message in self.received) < count:
            await self._changed.wait()


# --- our fixture servers ------------------------------------------------------------------------


async def test_notes_server_over_http_answers_in_both_protocol_eras() -> None:
    with anyio.fail_after(30):
        async with run_fixture("notes_server", transport="http") as server:
            async with Client(server.url, mode="auto") as modern:
                assert modern.protocol_version == MODERN
                tools = {tool.name: tool for tool in (await modern.list_tools()).tools}
                assert set(tools) == NOTES_TOOLS
                assert (await modern.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}

            async with Client(server.url, mode="legacy") as legacy:
                assert legacy.protocol_version.startswith("2025-")
                assert legacy.instructions is not None and "note" in legacy.instructions
                assert text_of(await legacy.call_tool("echo", {"text": "héllo"})) == "héllo"


async def test_notes_server_tools_carry_their_annotations() -> None:
    with anyio.fail_after(30):
        async with Client(fixture_stdio("notes_server"), mode="legacy") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("add", "echo", "big_text", "env_var"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True, name
    write_note = tools["write_note"].annotations
    assert write_note is not None
    assert write_note.read_only_hint is False and write_note.destructive_hint is False
    delete_all = tools["delete_all_notes"].annotations
    assert delete_all is not None and delete_all.destructive_hint is True


async def test_notes_server_over_sse_answers_a_handshake_era_client() -> None:
    with anyio.fail_after(30):
        async with run_fixture("notes_server", transport="sse") as server:
            assert server.url.endswith("/sse")
            async with Client(sse_client(server.url), mode="legacy") as client:
                assert client.protocol_version.startswith("2025-")
                assert {tool.name for tool in (await client.list_tools()).tools} == NOTES_TOOLS
                assert text_of(await client.call_tool("echo", {"text": "over sse"})) == "over sse"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_notes_server_over_stdio_answers(mode: str) -> None:
    with anyio.fail_after(30):
        async with Client(fixture_stdio("notes_server"), mode=mode) as client:
            assert client.protocol_version == MODERN if mode == "auto" else client.protocol_version < MODERN
            assert {tool.name for tool in (await client.list_tools()).tools} == NOTES_TOOLS
            resources = {str(resource.uri) for resource in (await client.list_resources()).resources}
            assert "notes://readme" in resources
            assert "summarize" in {prompt.name for prompt in (await client.list_prompts()).prompts}


async def test_notes_server_big_text_is_exactly_the_asked_size() -> None:
    with anyio.fail_after(30):
        async with Client(fixture_stdio("notes_server"), mode="legacy") as client:
            for size in (0, 1, 7, 8, 9, 100_000):
                text = text_of(await client.call_tool("big_text", {"size": size}))
                assert len(text) == size
                assert text == big_text_pattern(size)
    assert big_text_pattern(20) == "0000000|0000001|0000"


async def test_notes_server_env_var_reads_the_server_environment() -> None:
    with anyio.fail_after(30):
        env = {"NOTES_FIXTURE_SECRET": "s3cret"}
        async with run_fixture("notes_server", env=env) as server, Client(server.url) as client:
            found = await client.call_tool("env_var", {"name": "NOTES_FIXTURE_SECRET"})
            assert found.structured_content == {"result": "s3cret"}
            missing = await client.call_tool("env_var", {"name": "NOTES_FIXTURE_UNSET"})
            assert missing.structured_content == {"result": None}


async def test_notes_server_crash_hard_exits_with_status_3() -> None:
    with anyio.fail_after(30):
        async with run_fixture("notes_server") as server:
            # The SDK client fails the call, then re-raises the transport error on leaving `Client`.
            with pytest.raises(ExceptionGroup) as caught:
                async with Client(server.url, mode="legacy") as client:
                    await client.call_tool("crash", {})
            assert caught.group_contains(MCPError, depth=None)
            assert await server.process.wait() == 3


async def test_add_tool_notifies_the_calling_handshake_era_client() -> None:
    notes = Notifications()
    with anyio.fail_after(30):
        async with run_fixture("notes_server") as server:
            async with Client(server.url, mode="legacy", message_handler=notes) as client:
                answer = text_of(await client.call_tool("add_tool", {"name": "late_tool"}))
                assert "added tool 'late_tool'" in answer
                await notes.wait_for(types.ToolListChangedNotification)
                assert "late_tool" in {tool.name for tool in (await client.list_tools()).tools}
                assert text_of(await client.call_tool("late_tool", {"text": "hi"})) == "late_tool: hi"

                notes.received.clear()
                await client.call_tool("remove_tool", {"name": "late_tool"})
                await notes.wait_for(types.ToolListChangedNotification)
                assert "late_tool" not in {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_add_tool_notifies_every_other_handshake_era_session(transport: str) -> None:
    watcher_notes = Notifications()
    with anyio.fail_after(30):
        async with run_fixture("notes_server", transport="http" if transport == "http" else "sse") as server:

            def connect(message_handler: Notifications | None = None) -> Client:
                target = server.url if transport == "http" else sse_client(server.url)
                return Client(target, mode="legacy", message_handler=message_handler)

            async with connect(message_handler=watcher_notes) as watcher:
                await watcher.list_tools()  # the server learns of a session when it makes a request
                async with connect() as changer:
                    answer = text_of(await changer.call_tool("add_tool", {"name": "shared_tool"}))
                    assert "notified 2 session(s)" in answer
                await watcher_notes.wait_for(types.ToolListChangedNotification)
                assert "shared_tool" in {tool.name for tool in (await watcher.list_tools()).tools}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_paged_server_lists_more_than_100_tools_across_pages(mode: str) -> None:
    with anyio.fail_after(30):
        async with Client(fixture_stdio("paged_server"), mode=mode) as client:
            first = await client.list_tools()
            assert len(first.tools) == 50 and first.next_cursor is not None
            tools, pages = await all_tools(client)
    assert pages == 3
    names = [tool.name for tool in tools]
    assert len(names) == 120 and len(set(names)) == 120
    assert names[0] == "tool_000" and names[-1] == "tool_119"


async def test_paged_server_pages_over_http_too() -> None:
    with anyio.fail_after(30):
        async with run_fixture("paged_server", "--tools", "101", "--page-size", "25") as server:
            async with Client(server.url) as client:
                tools, pages = await all_tools(client)
                assert (len(tools), pages) == (101, 5)
                assert text_of(await client.call_tool("tool_100", {"x": 7})) == "tool_100:7"


# --- installed upstream servers -----------------------------------------------------------------


ServerFactory = Callable[[Path], StdioServerParameters]

# name -> (how to start it given a scratch dir, how many tools it has, one of them)
INSTALLED_SERVERS: dict[str, tuple[ServerFactory, int, str]] = {
    "everything": (lambda tmp: npm_stdio("mcp-server-everything"), 13, "echo"),
    "filesystem": (lambda tmp: npm_stdio("mcp-server-filesystem", str(tmp)), 14, "read_text_file"),
    "memory": (
        lambda tmp: npm_stdio("mcp-server-memory", env={"MEMORY_FILE_PATH": str(tmp / "memory.jsonl")}),
        9,
        "create_entities",
    ),
    "time": (lambda tmp: pyserver_stdio("mcp-server-time"), 2, "get_current_time"),
}


@pytest.mark.parametrize("name", sorted(INSTALLED_SERVERS))
async def test_installed_server_lists_its_tools_over_stdio(name: str, tmp_path: Path) -> None:
    start, tool_count, some_tool = INSTALLED_SERVERS[name]
    with anyio.fail_after(60):
        async with Client(start(tmp_path)) as client:
            tools, _pages = await all_tools(client)
    names = {tool.name for tool in tools}
    assert len(names) == tool_count, sorted(names)
    assert some_tool in names


def test_missing_install_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "empty-cache"))
    with pytest.raises(paths.TestDepsMissingError, match=r"run scripts/install-test-deps\.sh"):
        paths.npm_bin("mcp-server-everything")
    with pytest.raises(paths.TestDepsMissingError, match=r"run scripts/install-test-deps\.sh"):
        paths.pyserver_bin("mcp-server-time")


async def test_inspector_cli_lists_notes_server_tools_over_http() -> None:
    with anyio.fail_after(60):
        async with run_fixture("notes_server") as server:
            argv = [*paths.inspector_cli(), server.url, "--transport", "http", "--method", "tools/list"]
            done = await anyio.run_process(argv, check=False, cwd=paths.npm_prefix())
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    listing = json.loads(done.stdout)
    assert {tool["name"] for tool in listing["tools"]} == NOTES_TOOLS


# --- broken servers -----------------------------------------------------------------------------


async def test_broken_server_that_exits_at_start_fails_the_connect() -> None:
    with anyio.fail_after(30):
        with pytest.raises(ExceptionGroup) as caught:
            async with Client(fixture_stdio("broken_server", "--mode", "exit-at-start"), mode="legacy"):
                pass
    assert caught.group_contains(MCPError, match="Connection closed", depth=None)


async def test_broken_server_that_hangs_never_completes_the_handshake() -> None:
    with anyio.fail_after(30):
        with anyio.move_on_after(1.5) as waited:
            async with Client(fixture_stdio("broken_server", "--mode", "hang-at-start"), mode="legacy"):
                raise AssertionError("the handshake completed")
    assert waited.cancelled_caught


async def test_broken_server_garbage_reaches_the_client_as_errors() -> None:
    errors = Notifications()
    params = fixture_stdio("broken_server", "--mode", "garbage")

    async def connect() -> None:
        async with Client(params, mode="legacy", message_handler=errors):
            raise AssertionError("the handshake completed")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(connect)
            # Each non-JSON line reaches the handler as an exception; initialize is never answered.
            await errors.wait_for(Exception, count=len(GARBAGE_LINES))
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("mode", ["hang-at-start", "garbage"])
async def test_broken_server_over_http_listens_but_never_serves_mcp(mode: str) -> None:
    port = free_port()
    argv = paths.fixture_argv("broken_server", "--mode", mode, "--transport", "http", "--port", str(port))
    with anyio.fail_after(30):
        async with run_process(argv, ready_port=port) as proc:
            with anyio.move_on_after(2) as waited:
                try:
                    async with Client(f"http://{LOOPBACK}:{port}/mcp", mode="legacy"):
                        raise AssertionError("the handshake completed")
                except ExceptionGroup as failed:
                    assert mode == "garbage", failed
                    waited.cancel()
            assert proc.running
    if mode == "hang-at-start":
        assert waited.cancelled_caught
        assert HANG_MESSAGE in proc.lines("stderr")


# --- processes and ports ------------------------------------------------------------------------


async def test_run_process_reports_an_early_exit_with_its_output() -> None:
    argv = paths.fixture_argv("broken_server", "--mode", "exit-at-start")
    with anyio.fail_after(30):
        with pytest.raises(ProcessStartError, match="exit status 1") as caught:
            async with run_process(argv, ready_port=free_port()):
                raise AssertionError("not ready, so never here")
    assert EXIT_MESSAGE in str(caught.value)


async def test_run_process_gives_up_when_never_ready() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with anyio.fail_after(30):
        with pytest.raises(ProcessStartError, match=r"not ready after 0\.5s"):
            async with run_process(argv, ready_port=free_port(), timeout=0.5):
                raise AssertionError("not ready, so never here")


async def test_run_process_waits_for_a_ready_line_and_keeps_output() -> None:
    script = "import sys; print('warming up'); print('READY on stderr', file=sys.stderr); input()"
    with anyio.fail_after(30):
        async with run_process([sys.executable, "-c", script], ready_line="READY", stdin=True) as proc:
            assert "warming up" in proc.lines("stdout")
            assert proc.lines("stderr") == ["READY on stderr"]
            assert proc.running
        assert proc.returncode == -signal.SIGTERM


async def test_run_process_passes_errors_through_and_still_tears_down() -> None:
    with anyio.fail_after(30):
        with pytest.raises(KeyError, match="from the test body"):
            async with run_process([sys.executable, "-c", "input()"], stdin=True) as proc:
                raise KeyError("from the test body")
        assert not proc.running


async def test_run_process_tears_down_the_whole_process_group() -> None:
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    with anyio.fail_after(30):
        async with run_process([sys.executable, "-c", script], ready_line="child ") as proc:
            child_pid = int((await proc.wait_for_line("child ")).split()[1])
            # A pidfd names this very process and turns readable when it dies (zombie or reaped).
            child = os.pidfd_open(child_pid)
        try:
            assert not proc.running
            await anyio.wait_readable(child)
        finally:
            os.close(child)


async def test_run_process_tears_down_on_cancellation() -> None:
    with anyio.fail_after(30):
        with anyio.CancelScope() as scope:
            async with run_process([sys.executable, "-c", "input()"], stdin=True) as proc:
                scope.cancel()
                await anyio.sleep_forever()
        assert not proc.running


async def test_wait_port_sees_a_listener_and_times_out_without_one() -> None:
    port = free_port()
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host=LOOPBACK, local_port=port)
        async with listener:
            await wait_port(LOOPBACK, port, timeout=5)
            assert await port_is_open(LOOPBACK, port)
        with pytest.raises(TimeoutError, match=f"{LOOPBACK}:{port}"):
            await wait_port(LOOPBACK, port, timeout=0.3)


def test_npm_bins_resolve_to_javascript_files_run_by_node() -> None:
    argv: Sequence[str] = paths.npm_bin("mcp-server-everything")
    assert Path(argv[0]).name == "node" and os.access(argv[0], os.X_OK)
    assert argv[1].endswith(".js") and Path(argv[1]).is_file()
    assert paths.inspector_cli()[1].endswith(".js")
