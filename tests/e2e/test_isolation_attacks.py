"""A hostile stdio server configured in a real gateway, under each local sandbox.

Every attempt of ``tests/sandbox/attacker_server.py`` runs as a server of its own in one
gateway per backend, next to the real ``mcp-server-time``: reading ``~/.ssh``, the gateway's
config and database; writing outside the working directory; connecting to the gateway's own
port and to an outside address with ``network: none``; fetching a domain that is not on the
allow-list with ``network: allow``; a fork bomb; a 2 GB allocation; a busy loop past the CPU
limit. Each server must end up in backoff with the sandbox's reason as its error — in the
gateway's state and in ``mcpproxy upstream list --json`` — while the time server keeps
answering calls. The home directory is a fake one under ``tmp_path`` (``HOME`` points at it).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from tests.sandbox.support import FakeHost, make_host
from tests.support.gateway import GatewayHandle, mcpproxy_argv, running_gateway
from tests.support.net import LOOPBACK, free_port
from tests.support.paths import pyserver_bin

from mcpproxy.upstream.base import UpstreamState

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ATTACKER = str(Path(__file__).parents[1] / "sandbox" / "attacker_server.py")
BACKENDS = ("bwrap", "landlock")
LIMITS = {"cpu_seconds": 1, "memory_mb": 256, "max_processes": 32, "max_open_files": 256}
OUTSIDE_ADDRESS = "192.0.2.1:80"
"""TEST-NET-1 (RFC 5737): never routed, so even a sandbox that failed would reach nothing."""
HIDDEN_OR_DENIED = r"not found inside the sandbox|denied by sandbox: PermissionError"
WAIT = 90.0


@dataclass(frozen=True)
class Attempt:
    server: str
    label: str
    args: list[str]
    isolation: dict[str, Any]
    expect: str


def attempts(host: FakeHost, config: Path, gateway_port: int) -> list[Attempt]:
    allow = {"network": "allow", "allow_domains": ["allowed.example"]}
    return [
        Attempt("ssh", "read ~/.ssh/id_rsa", ["read_file", str(host.ssh_key)], {}, HIDDEN_OR_DENIED),
        Attempt("config", "read the gateway's config", ["read_file", f"path:{config}"], {}, HIDDEN_OR_DENIED),
        Attempt("db", "read the gateway's database", ["read_file", str(host.data / "mcpproxy.db")], {},
                HIDDEN_OR_DENIED),
        Attempt("write", "write outside the working dir", ["write_file", str(host.outside / "pwned.txt")], {},
                HIDDEN_OR_DENIED),
        Attempt("gwport", "connect to the gateway's port (none)", ["connect", str(gateway_port)], {},
                r"denied by sandbox: PermissionError: \[Errno 1\] Operation not permitted"),
        Attempt("outside", "connect to an outside address (none)", ["connect", OUTSIDE_ADDRESS], {},
                r"denied by sandbox: PermissionError: \[Errno 1\] Operation not permitted"),
        Attempt("egress", "fetch a domain not on the allow-list", ["fetch", "http://denied.example/"], allow,
                r"denied by sandbox: mcpproxy sandbox: egress denied: denied\.example:80 \(host is not in the "
                r"allow-list\) \(allowed: allowed\.example\)"),
        Attempt("forkbomb", "fork bomb", ["fork_bomb"], {}, r"denied by sandbox: process limit \(32\) reached"),
        Attempt("alloc", "allocate 2 GB", ["alloc"], {}, r"stopped: memory limit \(256 MiB\) exceeded: MemoryError"),
        Attempt("cpu", "busy loop past the CPU limit", ["cpu"], {}, r"killed: CPU time limit \(1 s\) exceeded"),
    ]  # fmt: skip


RESULTS: list[tuple[str, str, str]] = []


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    fake = make_host(tmp_path)
    monkeypatch.setenv("HOME", str(fake.home))
    yield fake


@pytest.fixture(scope="module", autouse=True)
def print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, print the attempts x backends table (docs/sandbox.md shows the same)."""
    yield
    if not RESULTS:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # shown even when the tests pass
        reporter.write_line("")
        reporter.write_line("gateway sandbox attempts (server state after each attempt):")
        for label, backend, error in RESULTS:
            reporter.write_line(f"  {label:<42} {backend:<9} {error}")


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def attacker_entry(attempt: Attempt, backend: str, host: FakeHost) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [ATTACKER, *attempt.args],
        "working_dir": str(host.work),
        "isolation": {"mode": backend, **LIMITS, **attempt.isolation},
    }


async def wait_stopped(gw: GatewayHandle, names: list[str]) -> dict[str, str]:
    for name in names:
        await gw.wait_state(name, UpstreamState.BACKOFF, UpstreamState.ERROR, within=WAIT)
    return {s.name: s.error or "" for s in gw.gateway.statuses()}


async def upstream_list(gw: GatewayHandle, home: Path) -> list[dict[str, Any]]:
    argv = mcpproxy_argv("--config", str(gw.config_path), "upstream", "list", "--json")
    with anyio.fail_after(WAIT):
        done = await anyio.run_process(argv, check=False, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    servers: list[dict[str, Any]] = json.loads(done.stdout)
    return servers


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_attempt_is_stopped_and_explained_while_the_gateway_keeps_serving(
    backend: str, host: FakeHost, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "mcp_config.json"
    tried = attempts(host, config, port)
    servers: dict[str, Any] = {f"atk-{a.server}": attacker_entry(a, backend, host) for a in tried}
    servers["time"] = {"command": pyserver_bin("mcp-server-time")[0], "isolation": {"mode": backend}}
    settings = {"listen": f"{LOOPBACK}:{port}", "backoff_initial": 600, "backoff_max": 600, "connect_timeout": 60}
    async with running_gateway(tmp_path, servers, watch=False, **settings) as gw:
        await gw.wait_state("time", UpstreamState.READY, UpstreamState.BACKOFF, within=WAIT)
        time_status = {s.name: s for s in gw.gateway.statuses()}["time"]
        assert time_status.state is UpstreamState.READY, (
            time_status.error,
            gw.gateway.server_log("time").read_text(encoding="utf-8"),
        )
        errors = await wait_stopped(gw, list(servers.keys() - {"time"}))
        listed = {item["name"]: item for item in await upstream_list(gw, host.home)}
        async with Client(gw.direct_url, mode="auto") as client:
            answer = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        for attempt in tried:
            name = f"atk-{attempt.server}"
            RESULTS.append((attempt.label, backend, errors[name]))
            assert re.search(attempt.expect, errors[name]), (name, errors[name])
            assert listed[name]["error"] == errors[name]
            assert listed[name]["state"] == "backoff"
            assert listed[name]["isolation"].startswith(f"{backend}, network ")
            log = gw.gateway.server_log(name).read_text(encoding="utf-8")
            assert not re.search(r"^ATTACK SUCCEEDED", log, re.MULTILINE), log
        assert not answer.is_error, text_of(answer)
        assert "UTC" in text_of(answer)
        assert listed["time"]["state"] == "ready"
    assert not (host.outside / "pwned.txt").exists()


async def test_a_server_killed_mid_call_by_its_cpu_limit_reports_why(host: FakeHost, tmp_path: Path) -> None:
    servers = {
        "spinner": {
            "command": sys.executable,
            "args": [ATTACKER],
            "working_dir": str(host.work),
            "isolation": {"cpu_seconds": 5},
        }
    }
    async with running_gateway(tmp_path, servers, watch=False, backoff_initial=600, backoff_max=600) as gw:
        await gw.wait_ready("spinner", within=WAIT)
        # The scanner holds a tool called "attack" for review; a human approves it here.
        await gw.gateway.decide_tool("spinner:attack", "approve", by="test")
        async with Client(gw.direct_url, mode="auto") as client:
            pong = await client.call_tool("spinner__ping", {})
            assert text_of(pong) == "pong"
            result = await client.call_tool("spinner__attack", {"name": "cpu", "args": ["60"]})
        assert result.is_error
        assert "killed: CPU time limit (5 s) exceeded" in text_of(result)
        await gw.wait_state("spinner", UpstreamState.BACKOFF, within=WAIT)
        status = {s.name: s for s in gw.gateway.statuses()}["spinner"]
        assert status.error == "killed: CPU time limit (5 s) exceeded"
        log = gw.gateway.server_log("spinner").read_text(encoding="utf-8")
        assert "mcpproxy: " in log
        assert "server stopped: killed: CPU time limit (5 s) exceeded" in log
