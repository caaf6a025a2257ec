"""The ``mcpproxy`` command line against a real ``mcpproxy serve`` process.

One daemon (with the notes fixture server and server-everything over stdio, watching its
config file) serves the tests of this module; each test adds and removes its own servers, so
none depends on another having run. Every command runs as its own process, as a user would
run it, with ``--config`` naming the daemon's config file (the CLI finds the port and the
API key through it) and ``HOME`` pointing into the test's directory, so nothing real is read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.fixtures.broken_server import EXIT_MESSAGE
from tests.support import paths
from tests.support.gateway import (
    QUIET_FASTMCP,
    fixture_entry,
    mcpproxy_argv,
    mcpproxy_process,
    stdio_entry,
    write_config,
)
from tests.support.net import LOOPBACK
from tests.support.procs import ProcessHandle, child_env, run_process

from mcpproxy.cli.common import (
    API_KEY_FILE,
    EXIT_DENIED,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from mcpproxy.config.loader import load_settings

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 60.0
POLL = 0.3
NOTES_LOG_LINE = "Starting MCP server"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that one daemon serves every test here."""
    return "asyncio"


@dataclass
class Result:
    argv: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == EXIT_OK, self.describe()
        return json.loads(self.out)

    def describe(self) -> str:
        return f"{self.argv[3:]} exited {self.code}\nstdout: {self.out}\nstderr: {self.err}"


def user_env(home: Path) -> dict[str, str]:
    """This process's environment with HOME (and the XDG config dir) moved into the test's directory."""
    home.mkdir(parents=True, exist_ok=True)
    env = child_env({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "COLUMNS": "200"})
    for name in ("MCPPROXY_CONFIG", "MCPPROXY_DATA_DIR", "APPDATA"):
        env.pop(name, None)
    return env


async def mcpproxy(config: Path, home: Path, *args: str) -> Result:
    """Run ``mcpproxy --config CONFIG ARGS...`` to completion."""
    argv = mcpproxy_argv("--config", str(config), *args)
    done = await anyio.run_process(argv, check=False, env=user_env(home), cwd=home)
    return Result(argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    """Re-run ``check`` (a real observation, e.g. one CLI command) until it holds."""
    try:
        with anyio.fail_after(within):
            while not await check():  # noqa: ASYNC110 - each check is a CLI run; there is no event to wait on
                await anyio.sleep(POLL)  # polling backoff between observations, not coordination
    except TimeoutError:
        raise AssertionError(f"timed out after {within} s waiting for {what}") from None


@dataclass
class Daemon:
    config: Path
    home: Path
    base_url: str
    data_dir: Path
    process: ProcessHandle

    async def run(self, *args: str) -> Result:
        return await mcpproxy(self.config, self.home, *args)

    async def rest(self, method: str, path: str) -> httpx2.Response:
        """A direct REST request, for observations around the commands under test (faster than a CLI run)."""
        key = (self.data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()
        async with httpx2.AsyncClient(base_url=self.base_url + "/api/v1", headers={"X-API-Key": key}) as client:
            return await client.request(method, path)

    async def servers(self) -> dict[str, dict[str, Any]]:
        response = await self.rest("GET", "/servers")
        assert response.status_code == 200, response.text
        return {s["name"]: s for s in response.json()["servers"]}

    async def wait_ready(self, *names: str) -> None:
        async def ready() -> bool:
            servers = await self.servers()
            return all(servers.get(name, {}).get("state") == "ready" for name in names)

        await eventually(ready, f"{names} ready")


@pytest.fixture(scope="module")
async def daemon(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    tmp = tmp_path_factory.mktemp("daemon")
    servers = {
        "notes": fixture_entry("notes_server"),
        "everything": stdio_entry(paths.npm_bin("mcp-server-everything")),
    }
    config = write_config(tmp, servers)
    home = tmp / "home"
    async with mcpproxy_process(config, watch=True, env=user_env(home)) as (proc, base_url):
        yield Daemon(config, home, base_url, load_settings(config, env={}).data_path, proc)


def notes_argv(name: str = "notes") -> list[str]:
    return paths.fixture_argv("notes_server", "--transport", "stdio", "--name", name)


async def test_status_shows_every_server_ready_and_upstream_list_describes_them(daemon: Daemon) -> None:
    async def both_ready() -> bool:
        states = {s["name"]: s["state"] for s in (await daemon.run("status", "--json")).json()["servers"]}
        return states.get("notes") == states.get("everything") == "ready"

    await eventually(both_ready, "notes and everything ready in `status --json`")

    status = (await daemon.run("status", "--json")).json()
    assert status["listen"] == daemon.base_url.removeprefix("http://")
    assert status["config_path"] == str(daemon.config)
    assert status["data_dir"] == str(daemon.data_dir)
    assert status["config_error"] is None
    assert status["tools_indexed"] >= 20

    servers = {s["name"]: s for s in (await daemon.run("upstream", "list", "--json")).json()}
    assert {"notes", "everything"} <= set(servers)
    for name in ("notes", "everything"):
        assert servers[name]["transport"] == "stdio"
        assert servers[name]["enabled"] is True
        assert servers[name]["tool_count"] > 5
    assert servers["notes"]["target"].endswith("notes_server.py --transport stdio")

    table = await daemon.run("status")
    assert table.code == EXIT_OK, table.describe()
    assert "notes" in table.out and "everything" in table.out and "ready" in table.out


async def test_tools_are_searched_and_called_with_documented_exit_codes(daemon: Daemon) -> None:
    await daemon.wait_ready("notes", "everything")

    hits = (await daemon.run("tools", "search", "add two numbers", "--json")).json()
    assert hits[0]["name"] == "notes:add"
    assert hits[0]["call_with"] == "call_tool_read"

    described = (await daemon.run("tools", "describe", "notes:add", "--json")).json()
    assert set(described["input_schema"]["properties"]) == {"a", "b"}

    results: dict[str, Result] = {}

    async def run(key: str, *args: str) -> None:
        results[key] = await daemon.run(*args)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "sum", "tools", "call", "notes:add", "--args", '{"a": 2, "b": 3}')
        tg.start_soon(run, "echo", "tools", "call", "everything:echo", "--args", '{"message": "hi from the CLI"}')
        tg.start_soon(run, "as_json", "tools", "call", "notes:add", "--args", '{"a": 1, "b": 1}', "--json")
        tg.start_soon(
            run, "tier", "tools", "call", "notes:delete_all_notes", "--args", '{"confirm": true}', "--tier", "read"
        )
        tg.start_soon(run, "unknown_tool", "tools", "call", "notes:no_such_tool")
        tg.start_soon(run, "unknown_server", "tools", "call", "nowhere:add")
        tg.start_soon(run, "bad_json", "tools", "call", "notes:add", "--args", '{"a": 2,')
        tg.start_soon(run, "bad_args", "tools", "call", "notes:add", "--args", '{"a": "two", "b": 3}')

    assert results["sum"].code == EXIT_OK, results["sum"].describe()
    assert results["sum"].out == "5\n"
    assert "hi from the CLI" in results["echo"].out
    assert results["as_json"].json()["content"][0]["text"] == "2"

    tier = results["tier"]
    assert tier.code == EXIT_DENIED, tier.describe()
    assert "call_tool_destructive" in tier.err
    assert tier.out == ""
    assert results["unknown_tool"].code == EXIT_NOT_FOUND, results["unknown_tool"].describe()
    assert "no tool 'no_such_tool'" in results["unknown_tool"].err
    assert results["unknown_server"].code == EXIT_NOT_FOUND, results["unknown_server"].describe()
    assert results["bad_json"].code == EXIT_USAGE, results["bad_json"].describe()
    assert "--args must be JSON" in results["bad_json"].err
    assert results["bad_args"].code == EXIT_INVALID, results["bad_args"].describe()

    # The destructive tool was refused before it ran: it works through its own tier.
    allowed = await daemon.run(
        "tools", "call", "notes:delete_all_notes", "--args", '{"confirm": false}', "--tier", "destructive"
    )
    assert allowed.code == EXIT_OK, allowed.describe()
    assert "nothing deleted" in allowed.out


async def test_a_server_added_from_the_command_line_connects_and_is_managed_to_its_removal(daemon: Daemon) -> None:
    env_flags = [arg for key, value in QUIET_FASTMCP.items() for arg in ("--env", f"{key}={value}")]
    added = await daemon.run("upstream", "add", "jotter", *env_flags, "--", *notes_argv("jotter"))
    assert added.code == EXIT_OK, added.describe()
    assert added.out == "added jotter\n"
    on_disk = json.loads(daemon.config.read_text(encoding="utf-8"))["mcpServers"]["jotter"]
    assert on_disk["args"] == notes_argv("jotter")[1:]

    async def jotter_tools() -> set[str]:
        return {tool["name"] for tool in (await daemon.run("tools", "list", "--server", "jotter", "--json")).json()}

    async def has_tools() -> bool:
        found.update(await jotter_tools())
        return "jotter:add" in found

    found: set[str] = set()
    await eventually(has_tools, "jotter's tools in `tools list --server jotter`")
    assert {"jotter:add", "jotter:write_note", "jotter:delete_all_notes"} <= found
    assert all(name.startswith("jotter:") for name in found)
    refused: dict[str, Result] = {}

    async def attempt(key: str, *args: str) -> None:
        refused[key] = await daemon.run(*args)

    async with anyio.create_task_group() as tg:
        tg.start_soon(attempt, "duplicate", "upstream", "add", "jotter", "--", *notes_argv("jotter"))
        tg.start_soon(attempt, "bad_value", "upstream", "update", "jotter", '{"args": "--verbose"}')
        tg.start_soon(attempt, "bad_json", "upstream", "update", "jotter", "{args")
    assert refused["duplicate"].code == EXIT_INVALID, refused["duplicate"].describe()
    assert "already exists" in refused["duplicate"].err
    assert refused["bad_value"].code == EXIT_INVALID, refused["bad_value"].describe()
    assert "mcpServers.jotter.args" in refused["bad_value"].err
    assert refused["bad_json"].code == EXIT_USAGE, refused["bad_json"].describe()
    assert json.loads(daemon.config.read_text(encoding="utf-8"))["mcpServers"]["jotter"] == on_disk

    disabled = await daemon.run("upstream", "disable", "jotter")
    assert (disabled.code, disabled.out) == (EXIT_OK, "disabled jotter\n"), disabled.describe()
    jotter = (await daemon.servers())["jotter"]
    assert jotter["enabled"] is False
    assert json.loads(daemon.config.read_text(encoding="utf-8"))["mcpServers"]["jotter"]["enabled"] is False
    unavailable = await daemon.run("tools", "call", "jotter:add", "--args", '{"a": 1, "b": 2}')
    assert unavailable.code == EXIT_NOT_FOUND, unavailable.describe()
    assert "server 'jotter' is disabled: it has no tools available right now" in unavailable.err

    enabled = await daemon.run("upstream", "enable", "jotter")
    assert enabled.code == EXIT_OK, enabled.describe()
    await daemon.wait_ready("jotter")
    first_connected = (await daemon.servers())["jotter"]["connected_at"]
    restarted = await daemon.run("upstream", "restart", "jotter")
    assert (restarted.code, restarted.out) == (EXIT_OK, "restarted jotter\n"), restarted.describe()

    async def reconnected() -> bool:
        jotter = (await daemon.servers())["jotter"]
        return bool(jotter["state"] == "ready" and jotter["connected_at"] != first_connected)

    await eventually(reconnected, "jotter reconnected after the restart")
    summed = await daemon.run("tools", "call", "jotter:add", "--args", '{"a": 40, "b": 2}')
    assert (summed.code, summed.out) == (EXIT_OK, "42\n"), summed.describe()

    removed = await daemon.run("upstream", "remove", "jotter")
    assert (removed.code, removed.out) == (EXIT_OK, "removed jotter\n"), removed.describe()
    assert "jotter" not in await daemon.servers()
    assert "jotter" not in json.loads(daemon.config.read_text(encoding="utf-8"))["mcpServers"]
    hits = (await daemon.run("tools", "search", "add two numbers", "-n", "20", "--json")).json()
    assert not [hit for hit in hits if hit["server"] == "jotter"]
    gone: list[Result] = []

    async def run(*args: str) -> None:
        gone.append(await daemon.run(*args))

    async with anyio.create_task_group() as tg:
        for action in ("remove", "enable", "logs"):
            tg.start_soon(run, "upstream", action, "jotter")
    for result in gone:
        assert result.code == EXIT_NOT_FOUND, result.describe()
        assert "no server named 'jotter'" in result.err


async def test_upstream_logs_show_a_servers_stderr_and_follow_streams_new_lines(daemon: Daemon) -> None:
    await daemon.wait_ready("notes")
    notes_log = await daemon.run("upstream", "logs", "notes")
    assert notes_log.code == EXIT_OK, notes_log.describe()
    assert NOTES_LOG_LINE in notes_log.out

    # A server that prints its reason on stderr and exits; the gateway retries it with backoff.
    quitter_argv = paths.fixture_argv("broken_server", "--mode", "exit-at-start")
    added = await daemon.run("upstream", "add", "quitter", "--", *quitter_argv)
    assert added.code == EXIT_OK, added.describe()
    try:

        async def logged() -> bool:
            return EXIT_MESSAGE in (await daemon.run("upstream", "logs", "quitter", "-n", "5")).out

        await eventually(logged, "quitter's stderr in its log")

        # Follow from the last line; a restart makes the server print its line again.
        follow_argv = mcpproxy_argv(
            "--config", str(daemon.config), "upstream", "logs", "quitter", "-n", "1", "--follow", "--max-seconds", "3"
        )
        async with run_process(follow_argv, env=user_env(daemon.home), ready_line=EXIT_MESSAGE) as follow:
            restarted = await daemon.rest("POST", "/servers/quitter/restart")
            assert restarted.status_code == 200, restarted.text
            with anyio.fail_after(WAIT):
                assert await follow.wait() == EXIT_OK, follow.output_tail()
        streamed = follow.lines("stdout")
        # First the tail of one line (whichever line was last: the server keeps being restarted with
        # backoff, so it may be mcpproxy's "starting" line), then the lines that came after it: the
        # server's own message, or mcpproxy's line saying why it stopped, which quotes it.
        assert len(streamed) >= 2, follow.output_tail()
        assert any(EXIT_MESSAGE in line for line in streamed[1:]), follow.output_tail()
    finally:
        removed = await daemon.run("upstream", "remove", "quitter")
        assert removed.code == EXIT_OK, removed.describe()


async def test_every_command_says_how_to_start_the_gateway_when_it_is_not_running(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    home = tmp_path / "home"
    assert load_settings(config, env={}).host == LOOPBACK
    commands = (
        ("status", "--json"),
        ("upstream", "add", "x", "--", "echo"),
        ("upstream", "logs", "x", "--follow"),
        ("tools", "call", "notes:add", "--args", "{}"),
    )
    results: list[Result] = []

    async def run(args: tuple[str, ...]) -> None:
        results.append(await mcpproxy(config, home, *args))

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            for args in commands:
                tg.start_soon(run, args)
    assert len(results) == len(commands)
    for result in results:
        assert result.code == EXIT_UNREACHABLE, result.describe()
        assert "mcpproxy is not running at http://127.0.0.1:" in result.err
        assert "hint: start it with `mcpproxy serve`" in result.err
        assert result.out == ""


# --- import ------------------------------------------------------------------------------------


def desktop_file(path: Path) -> Path:
    """A Claude Desktop config: two usable servers, one unusable one, and keys of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    servers = {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
        "docs": {"url": "https://docs.example.com/mcp", "headers": {"X-Key": "k"}},
        "broken": {"args": ["no command and no url"]},
    }
    path.write_text(json.dumps({"globalShortcut": "Ctrl+Space", "mcpServers": servers}, indent=2), encoding="utf-8")
    return path


async def test_import_of_a_claude_desktop_file_adds_its_servers_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"docs": {"url": "https://other.example.com/mcp", "enabled": False}})
    home = tmp_path / "home"
    source = desktop_file(tmp_path / "claude_desktop_config.json")
    before = config.read_bytes()

    with anyio.fail_after(WAIT):
        dry = (await mcpproxy(config, home, "import", str(source), "--dry-run", "--json")).json()
        assert config.read_bytes() == before
        assert dry["dry_run"] is True
        assert dry["added"] == ["time"]
        assert dry["skipped_existing"] == ["docs"]
        (invalid,) = dry["invalid"]
        assert invalid["name"] == "broken"
        assert invalid["line"] is not None

        text = await mcpproxy(config, home, "import", str(source), "--dry-run")
        assert text.code == EXIT_OK, text.describe()
        assert text.out.startswith("would import 1 servers")
        assert config.read_bytes() == before

        done = (await mcpproxy(config, home, "import", str(source), "--on-conflict", "rename", "--json")).json()
        assert done["added"] == ["time"]
        assert done["renamed"] == {"docs": "docs-2"}
        servers = json.loads(config.read_text(encoding="utf-8"))["mcpServers"]
        assert servers["time"] == {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}}
        assert servers["docs"] == {"url": "https://other.example.com/mcp", "enabled": False}
        assert servers["docs-2"]["url"] == "https://docs.example.com/mcp"
        assert "broken" not in servers
        assert set(load_settings(config, env={}).servers) == {"docs", "docs-2", "time"}

        # Without FILE, the client's file is found under HOME (and nothing outside it is read).
        (home / ".config" / "Claude").mkdir(parents=True)
        desktop_file(home / ".config" / "Claude" / "claude_desktop_config.json")
        again = (await mcpproxy(config, home, "import", "--from", "claude-desktop", "--json")).json()
        assert again["files"] == [str(home / ".config" / "Claude" / "claude_desktop_config.json")]
        assert again["added"] == [] and again["unchanged"] == ["time"]

        nothing = await mcpproxy(config, tmp_path / "empty-home", "import", "--from", "cursor")
        assert nothing.code == EXIT_NOT_FOUND, nothing.describe()
        assert "pass the file to import" in nothing.err


async def test_a_running_gateway_picks_up_servers_imported_from_claude_code(daemon: Daemon) -> None:
    project = daemon.home / "work" / "project"
    claude_json = {
        "numStartups": 3,
        "mcpServers": {},
        "projects": {
            str(project): {
                "allowedTools": [],
                "mcpServers": {"scribe": {"type": "stdio", **stdio_entry(notes_argv("scribe"))}},
            },
            str(daemon.home / "elsewhere"): {"mcpServers": {}},
        },
    }
    (daemon.home / ".claude.json").write_text(json.dumps(claude_json, indent=2), encoding="utf-8")
    before = daemon.config.read_bytes()

    dry = (await daemon.run("import", "--from", "claude-code", "--dry-run", "--json")).json()
    assert dry["added"] == ["scribe"]
    assert daemon.config.read_bytes() == before
    assert "scribe" not in await daemon.servers()

    done = (await daemon.run("import", "--from", "claude-code", "--json")).json()
    assert done["files"] == [str(daemon.home / ".claude.json")]
    assert done["added"] == ["scribe"]
    try:

        async def scribe_ready() -> bool:
            return (await daemon.servers()).get("scribe", {}).get("state") == "ready"

        await eventually(scribe_ready, "the imported server ready in the running gateway")
        summed = await daemon.run("tools", "call", "scribe:add", "--args", '{"a": 3, "b": 4}')
        assert (summed.code, summed.out) == (EXIT_OK, "7\n"), summed.describe()
        assert (await daemon.rest("GET", "/status")).json()["config_error"] is None
    finally:
        removed = await daemon.run("upstream", "remove", "scribe")
        assert removed.code == EXIT_OK, removed.describe()
