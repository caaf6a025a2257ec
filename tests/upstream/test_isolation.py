"""From a server entry to a sandboxed process, and from its death to a sentence.

``plan_isolation`` is checked against real backend probes of this machine; the stdio transport
is checked with real processes: a real MCP server answers through it, a dying one is explained
before its stream ends, a leftover child cannot keep a dead server's stream open, and shutdown
stops even a server that ignores its stdin and SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from mcpproxy.config.loader import load_settings
from mcpproxy.sandbox.auto import select_sandbox
from mcpproxy.sandbox.base import PreparedCommand, SandboxPolicy, SandboxPolicyError, SandboxUnavailable
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.upstream.isolation import (
    IsolationPlan,
    describe_exit,
    forget_backends,
    isolated_stdio_client,
    plan_isolation,
)
from mcpproxy.upstream.stdio_process import process_stdio_client
from mcpproxy.upstream.transports import stdio_environment

pytestmark = pytest.mark.anyio

ATTACKER_SERVER = str(Path(__file__).parents[1] / "sandbox" / "attacker_server.py")
WAIT = 60.0


@pytest.fixture(autouse=True)
def fresh_backends() -> Iterator[None]:
    forget_backends()
    yield
    forget_backends()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "home"
    (fake / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(fake))
    return fake


def settings_for(tmp_path: Path, **servers: dict[str, Any]) -> Settings:
    return Settings.model_validate({"data_dir": str(tmp_path / "data"), "mcpServers": servers})


def spec_of(settings: Settings, name: str) -> ServerSpec:
    return settings.servers[name]


def plan(settings: Settings, name: str) -> IsolationPlan:
    spec = spec_of(settings, name)
    return plan_isolation(spec, settings, stdio_environment(spec))


# -- planning -------------------------------------------------------------------------------


def test_a_server_that_opts_out_runs_exactly_as_configured(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    settings = settings_for(
        tmp_path, raw={"command": "python3", "args": ["-V"], "working_dir": str(work), "isolation": "none"}
    )
    result = plan(settings, "raw")
    assert result.backend == "none"
    assert result.policy is None
    assert result.argv == ("python3", "-V")
    assert result.cwd == str(work)
    assert dict(result.env) == stdio_environment(spec_of(settings, "raw"))
    assert result.summary == "none (opted out)"


def test_auto_picks_the_strongest_sandbox_that_works_here(tmp_path: Path, home: Path) -> None:
    settings = settings_for(tmp_path, py={"command": sys.executable, "args": ["-V"]})
    result = plan(settings, "py")
    expected = select_sandbox("auto").sandbox.name
    assert result.backend == expected
    if expected == "none":
        pytest.fail("no sandbox works on this machine: run scripts/install-sandbox-deps.sh")
    assert result.policy is not None
    assert result.policy.network == "none"
    assert result.policy.home_dir is not None
    assert Path(result.policy.home_dir).is_relative_to(tmp_path / "data" / "sandbox" / "py")
    assert result.summary == f"{expected}, network none"


def test_isolation_settings_reach_the_policy(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra_rw, extra_ro = tmp_path / "scratch", home / "docs"
    extra_rw.mkdir()
    extra_ro.mkdir()
    monkeypatch.setenv("MY_REGION", "eu-west-1")
    monkeypatch.setenv("MY_SECRET", "never")
    isolation = {
        "mode": "landlock",
        "allow_domains": ["api.example.com", "*.cdn.example.com"],
        "writable": [str(extra_rw)],
        "readonly": ["~/docs"],
        "memory_mb": 512,
        "cpu_seconds": 30,
        "max_processes": 16,
        "max_open_files": None,
        "env_allowlist": ["MY_REGION"],
    }
    settings = settings_for(tmp_path, api={"command": sys.executable, "args": ["-V"], "isolation": isolation})
    result = plan(settings, "api")
    policy = result.policy
    assert policy is not None
    assert result.backend == "landlock"
    assert policy.network == "allow"
    assert policy.allowed_domains == ("api.example.com", "*.cdn.example.com")
    assert str(extra_rw) in policy.writable_paths
    assert str(extra_ro) in policy.readonly_paths
    assert (policy.memory_bytes, policy.cpu_seconds, policy.max_processes, policy.max_open_files) == (
        512 * 1024 * 1024,
        30,
        16,
        None,
    )
    final = policy.final_env(result.env)
    assert final["MY_REGION"] == "eu-west-1"
    assert "MY_SECRET" not in final
    assert result.summary == "landlock, network allow api.example.com, *.cdn.example.com"


def test_defaults_keep_common_limits_and_no_cpu_limit(tmp_path: Path, home: Path) -> None:
    settings = settings_for(tmp_path, py={"command": sys.executable, "args": ["-V"], "isolation": "bwrap"})
    policy = plan(settings, "py").policy
    assert policy is not None
    assert (policy.memory_bytes, policy.cpu_seconds, policy.max_processes, policy.max_open_files) == (
        2048 * 1024 * 1024,
        None,
        256,
        4096,
    )


@pytest.mark.parametrize("key", ["writable", "readonly"])
def test_a_listed_path_that_would_expose_the_data_dir_is_refused(tmp_path: Path, key: str) -> None:
    for path in (str(tmp_path), str(tmp_path / "data" / "logs")):
        (tmp_path / "data" / "logs").mkdir(parents=True, exist_ok=True)
        settings = settings_for(
            tmp_path, py={"command": sys.executable, "isolation": {"mode": "bwrap", key: [path]}}
        )
        with pytest.raises(SandboxPolicyError, match="would expose mcpproxy's data directory"):
            plan(settings, "py")


def test_a_named_backend_that_cannot_run_here_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    settings = settings_for(tmp_path, boxed={"command": "npx", "isolation": "docker"})
    with pytest.raises(SandboxUnavailable, match="sandbox 'docker' is unavailable: no docker engine"):
        plan(settings, "boxed")


def test_a_missing_command_is_reported_as_not_found_before_any_sandbox_starts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ghost={"command": str(tmp_path / "no-such-program")})
    with pytest.raises(FileNotFoundError) as caught:
        plan(settings, "ghost")
    assert caught.value.filename == str(tmp_path / "no-such-program")


def test_isolation_accepts_a_mode_name_or_a_boolean_as_shorthand() -> None:
    for shorthand, mode in (("none", "none"), ("landlock", "landlock"), (False, "none"), (True, "auto")):
        spec = ServerSpec.model_validate({"name": "s", "command": "x", "isolation": shorthand})
        assert spec.isolation.mode == mode
    spec = ServerSpec.model_validate({"name": "s", "command": "x", "isolation": {"cpu_seconds": 5}})
    assert spec.to_config() == {"command": "x", "isolation": {"cpu_seconds": 5}}


@pytest.mark.parametrize(
    ("isolation", "message"),
    [
        ({"allow_domains": ["Not A Domain"]}, "is not a host name"),
        ({"network": "none", "allow_domains": ["example.com"]}, "allow_domains needs network 'allow'"),
        ({"writable": ["relative/dir"]}, "must be absolute"),
        ({"memory_mb": 0}, "greater than 0"),
        ({"env_allowlist": ["BAD-NAME"]}, "not an environment variable name"),
        ({"mode": "chroot"}, "Input should be"),
        ({"sandbox": "bwrap"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_isolation_settings_are_refused_with_the_reason(isolation: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerSpec.model_validate({"name": "s", "command": "x", "isolation": isolation})


# -- explaining deaths ------------------------------------------------------------------------


def prepared(backend: str = "bwrap", **limits: Any) -> PreparedCommand:
    policy = SandboxPolicy(**limits)
    return PreparedCommand(argv=("x",), env={}, cwd=None, backend=backend, policy=policy)


def test_a_death_is_explained_by_the_sandbox_when_it_can() -> None:
    assert describe_exit(prepared(cpu_seconds=5), 128 + 24, "") == "killed: CPU time limit (5 s) exceeded"
    assert describe_exit(prepared(), 1, "Traceback...\nPermissionError: [Errno 13] Permission denied: '/x'\n") == (
        "denied by sandbox: PermissionError: [Errno 13] Permission denied: '/x'"
    )


def test_any_other_death_says_its_status_and_last_stderr_line() -> None:
    tail = "starting\nmcpproxy: 2026-01-01T00:00:00 starting x\nError: config missing\n"
    assert describe_exit(prepared("none"), 2, tail) == "exited with status 2: Error: config missing"
    assert describe_exit(prepared("none"), -9, "") == "killed by SIGKILL"
    assert describe_exit(prepared("none"), 0, "") == "exited with status 0"


# -- the process transport ------------------------------------------------------------------


def python_argv(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_a_real_mcp_server_answers_through_the_process_transport(tmp_path: Path) -> None:
    exits: list[int | None] = []

    async def on_exit(code: int | None) -> None:
        exits.append(code)

    with (tmp_path / "server.log").open("a") as errlog:
        transport = process_stdio_client(
            [sys.executable, ATTACKER_SERVER], env=dict(os.environ), cwd=None, errlog=errlog, on_exit=on_exit
        )
        with anyio.fail_after(WAIT):
            async with Client(transport, mode="auto") as client:
                result = await client.call_tool("ping", {})
    assert isinstance(result.content[0], types.TextContent)
    assert result.content[0].text == "pong"
    assert exits == []  # our own shutdown is not a death to explain


async def test_an_exit_is_reported_before_the_stream_ends(tmp_path: Path) -> None:
    events: list[str] = []

    async def on_exit(code: int | None) -> None:
        events.append(f"exit {code}")

    code = "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"
    with (tmp_path / "server.log").open("a") as errlog:
        async with process_stdio_client(python_argv(code), env={}, cwd=None, errlog=errlog, on_exit=on_exit) as (
            read,
            _,
        ):
            with anyio.fail_after(WAIT), pytest.raises(anyio.EndOfStream):
                await read.receive()
            events.append("end of stream")
    assert events == ["exit 3", "end of stream"]
    assert (tmp_path / "server.log").read_text() == "boom\n"


async def test_a_child_holding_stdout_cannot_keep_a_dead_servers_stream_open(tmp_path: Path) -> None:
    exits: list[int | None] = []

    async def on_exit(code: int | None) -> None:
        exits.append(code)

    pid_file = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 300 & echo $! > {pid_file}; exit 4"]
    with (tmp_path / "server.log").open("a") as errlog:
        async with process_stdio_client(argv, env={"PATH": "/usr/bin:/bin"}, cwd=None, errlog=errlog,
                                        on_exit=on_exit) as (read, _):  # fmt: skip
            with anyio.fail_after(WAIT), pytest.raises(anyio.EndOfStream):
                await read.receive()
            child = os.pidfd_open(int(pid_file.read_text()))
    assert exits == [4]
    try:
        with anyio.fail_after(WAIT):
            await anyio.wait_readable(child)  # readable once the leftover child has died
    finally:
        os.close(child)


async def test_shutdown_stops_a_server_that_ignores_stdin_and_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "while True: time.sleep(1)\n"
    )
    pid_file = tmp_path / "pid"
    argv = python_argv(f"import os; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n" + code)

    async def on_exit(code: int | None) -> None:
        raise AssertionError("our own shutdown must not be reported as a death")

    with (tmp_path / "server.log").open("a") as errlog:
        with anyio.fail_after(WAIT):
            async with process_stdio_client(argv, env={}, cwd=None, errlog=errlog, on_exit=on_exit) as (read, _):
                first = await read.receive()  # "ready" is not JSON-RPC: the parse error comes as a value
                assert isinstance(first, Exception)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_the_sandboxed_transport_logs_how_the_server_runs(tmp_path: Path, home: Path) -> None:
    settings = settings_for(tmp_path, pinger={"command": sys.executable, "args": [ATTACKER_SERVER]})
    spec = spec_of(settings, "pinger")
    plans: list[IsolationPlan] = []
    with (tmp_path / "server.log").open("a") as errlog:
        transport = isolated_stdio_client(
            spec, settings, env=stdio_environment(spec), errlog=errlog, on_plan=plans.append, on_exit=lambda r: None
        )
        with anyio.fail_after(WAIT):
            async with Client(transport, mode="auto") as client:
                result = await client.call_tool("ping", {})
    assert not result.is_error
    (only,) = plans
    text = (tmp_path / "server.log").read_text()
    assert f"(sandbox: {only.summary})" in text
    assert only.backend != "none"


def test_the_global_isolation_comes_from_the_file_the_environment_or_a_flag(tmp_path: Path) -> None:
    config = tmp_path / "mcp_config.json"
    entry = {"command": "x", "isolation": {"cpu_seconds": 9}}
    config.write_text(json.dumps({"isolation": "landlock", "mcpServers": {"s": entry}}))
    assert load_settings(config, env={}).isolation == "landlock"
    assert load_settings(config, env={"MCPPROXY_ISOLATION": "none"}).isolation == "none"
    from_flag = load_settings(config, env={"MCPPROXY_ISOLATION": "none"}, overrides={"isolation": "bwrap"})
    assert from_flag.isolation == "bwrap"
    assert load_settings(config, env={"MCPPROXY_REQUIRE_ISOLATION": "true"}).require_isolation is True
    spec = from_flag.servers["s"]
    assert from_flag.isolation_for(spec) == "bwrap"
    assert spec.to_config() == {"command": "x", "isolation": {"cpu_seconds": 9}}
