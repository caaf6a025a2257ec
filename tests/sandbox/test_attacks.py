"""Real attacks, real processes: each attempt under each backend this machine has.

``none`` is the control that shows the attack works without a sandbox (never for the fork
bomb or the 2 GB allocation). Under ``bwrap`` and ``landlock`` every attempt must fail or
be stopped, and ``explain_exit`` must say why. Limits are kept small (1 s CPU, 256 MiB,
32 processes) so even a broken sandbox could not hurt the machine, and every network
destination is a server this test runs on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mcpproxy.sandbox.auto import make_sandbox
from mcpproxy.sandbox.base import SandboxPolicy
from mcpproxy.sandbox.defaults import default_policy_for
from mcpproxy.sandbox.session import sandboxed_command
from tests.sandbox.support import ATTEMPTS, Attempt, FakeHost, Result, run_prepared

ATTACKER = str(Path(__file__).with_name("attacker.py"))
BACKENDS = ("bwrap", "landlock")
SMALL = {"cpu_seconds": 1, "memory_bytes": 256 * 1024 * 1024, "max_processes": 32, "max_open_files": 256}
HIDDEN_OR_DENIED = re.compile(r"denied by sandbox|not found inside the sandbox")

pytestmark = pytest.mark.anyio


async def loopback_resolver(host: str, port: int) -> list[str]:
    """Test-only resolver: every ``*.test`` name is this machine; nothing else resolves."""
    if host.endswith(".test"):
        return ["127.0.0.1"]
    raise OSError(f"{host} does not resolve in tests")


def policy_for(host: FakeHost, args: Sequence[str], **changes: object) -> SandboxPolicy:
    base = default_policy_for(
        sys.executable, [ATTACKER, *args], {}, str(host.work), host.data, name="attacker", home=str(host.home)
    )
    return dataclasses.replace(base, **{**SMALL, **changes})  # type: ignore[arg-type]


async def attack(backend: str, host: FakeHost, args: Sequence[str], **changes: object) -> tuple[Result, str | None]:
    policy = policy_for(host, args, **changes)
    sandbox = make_sandbox(backend)
    async with sandboxed_command(
        sandbox,
        [sys.executable, ATTACKER, *args],
        {"LANG": "C.UTF-8"},
        policy,
        egress_ports=None,
        resolver=loopback_resolver,
        allow_private=True,
    ) as prepared:
        result = await run_prepared(prepared)
    why = prepared.explain_exit(result.returncode, result.stderr)
    outcome = "succeeded" if "ATTACK SUCCEEDED" in result.stdout else "stopped"
    label = " ".join(Path(a).name if a.startswith("/") else a for a in args)[:28]
    ATTEMPTS.append(Attempt(label, backend, outcome, why))
    return result, why


def assert_stopped(result: Result, explanation: str | None, pattern: str | re.Pattern[str]) -> None:
    assert not result.timed_out, result
    assert "ATTACK SUCCEEDED" not in result.stdout, result
    assert result.returncode != 0, result
    assert explanation is not None, result.stderr
    assert re.search(pattern, explanation), (explanation, result.stderr)


def assert_succeeded(result: Result) -> None:
    assert "ATTACK SUCCEEDED" in result.stdout, result
    assert result.returncode == 0, result


# -- local destinations -------------------------------------------------------------------


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[1]}".encode()  # type: ignore[index]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def web() -> Iterator[tuple[int, int]]:
    """Two HTTP servers on 127.0.0.1: (the allowed destination's port, the denied one's)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Hello) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield servers[0].server_address[1], servers[1].server_address[1]
    for s in servers:
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(timeout=5)


@pytest.fixture
def proxy_port() -> Iterator[int]:
    """A TCP service on 127.0.0.1 standing for the gateway's own port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(100)
                conn.sendall(b"pong from the gateway\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


# -- files --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cannot_read_ssh_key(backend: str, host: FakeHost) -> None:
    result, why = await attack(backend, host, ["read_file", str(host.ssh_key)])
    assert_stopped(result, why, HIDDEN_OR_DENIED)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cannot_read_gateway_config_or_database(backend: str, host: FakeHost) -> None:
    for target in (host.config, host.database):
        result, why = await attack(backend, host, ["read_file", str(target)])
        assert_stopped(result, why, HIDDEN_OR_DENIED)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cannot_write_outside_working_dir(backend: str, host: FakeHost) -> None:
    target = host.outside / "pwned.txt"
    result, why = await attack(backend, host, ["write_file", str(target)])
    assert_stopped(result, why, HIDDEN_OR_DENIED)
    assert not target.exists()


async def test_under_bwrap_a_write_beside_the_binds_fails_instead_of_vanishing(host: FakeHost) -> None:
    """Bubblewrap's empty root holds the mount points it made (``/run/mcpproxy`` for the launcher):
    remounted read-only, a write there fails with EROFS instead of landing in a tmpfs that vanishes."""
    result, why = await attack("bwrap", host, ["write_file", "/run/mcpproxy/planted.txt"])
    assert_stopped(result, why, r"denied by sandbox: .*Read-only file system")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_can_write_inside_working_dir(backend: str, host: FakeHost) -> None:
    target = host.work / "notes.txt"
    result, _ = await attack(backend, host, ["write_file", str(target)])
    assert_succeeded(result)
    assert target.read_text() == "pwned\n"


async def test_control_file_attacks_work_unsandboxed(host: FakeHost) -> None:
    for args in (
        ["read_file", str(host.ssh_key)],
        ["read_file", str(host.config), str(host.database)],
        ["write_file", str(host.outside / "pwned.txt")],
    ):
        result, why = await attack("none", host, args)
        assert_succeeded(result)
        assert why is None


# -- network ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_network_none_cannot_reach_loopback_port(backend: str, host: FakeHost, proxy_port: int) -> None:
    result, why = await attack(backend, host, ["connect", str(proxy_port)], network="none")
    assert_stopped(result, why, r"denied by sandbox")


async def test_control_loopback_port_reachable_unsandboxed(host: FakeHost, proxy_port: int) -> None:
    result, _ = await attack("none", host, ["connect", str(proxy_port)], network="none")
    assert_succeeded(result)
    assert "pong from the gateway" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
async def test_egress_allows_listed_domain(backend: str, host: FakeHost, web: tuple[int, int]) -> None:
    allowed, _ = web
    changes = {"network": "allow", "allowed_domains": ("allowed.test",)}
    result, _ = await attack(backend, host, ["fetch", f"http://allowed.test:{allowed}/"], **changes)
    assert_succeeded(result)
    assert f"hello from {allowed}" in result.stdout
    result, _ = await attack(backend, host, ["tunnel", f"allowed.test:{allowed}"], **changes)
    assert_succeeded(result)
    assert f"hello from {allowed}" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
async def test_egress_refuses_unlisted_domain(backend: str, host: FakeHost, web: tuple[int, int]) -> None:
    _, denied = web
    changes = {"network": "allow", "allowed_domains": ("allowed.test",)}
    for args in (["fetch", f"http://denied.test:{denied}/"], ["tunnel", f"denied.test:{denied}"]):
        result, why = await attack(backend, host, args, **changes)
        assert_stopped(result, why, r"denied by sandbox: mcpproxy sandbox: egress denied: denied\.test")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_egress_refuses_ip_literal_and_direct_connect(backend: str, host: FakeHost, web: tuple[int, int]) -> None:
    allowed, denied = web
    changes = {"network": "allow", "allowed_domains": ("allowed.test",)}
    result, why = await attack(backend, host, ["fetch", f"http://127.0.0.1:{allowed}/"], **changes)
    assert_stopped(result, why, r"egress denied: 127\.0\.0\.1")
    # Going around the proxy: straight to the port.
    result, why = await attack(backend, host, ["connect", str(denied)], **changes)
    assert_stopped(result, why, r"denied by sandbox")


async def test_control_denied_destination_reachable_unsandboxed(host: FakeHost, web: tuple[int, int]) -> None:
    _, denied = web
    result, _ = await attack("none", host, ["connect", str(denied)], network="host")
    assert_succeeded(result)


# -- resources ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_fork_bomb_is_bounded(backend: str, host: FakeHost) -> None:
    result, why = await attack(backend, host, ["fork_bomb"])
    assert_stopped(result, why, r"denied by sandbox: process limit \(32\) reached")
    failed_at = int(re.search(r"fork #(\d+) failed", result.stderr).group(1))  # type: ignore[union-attr]
    # The launcher's own PID namespace is capped exactly. Bubblewrap's (owned by the host's
    # user namespace when the gateway is root) cannot have its last PID moved, so the kernel's
    # 300 reserved PIDs come on top there; a non-root gateway gets RLIMIT_NPROC on top of that.
    assert failed_at <= (32 if backend == "landlock" or os.getuid() != 0 else 32 + 300)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_gigabyte_allocation_fails(backend: str, host: FakeHost) -> None:
    result, why = await attack(backend, host, ["alloc"])
    assert_stopped(result, why, r"stopped: memory limit \(256 MiB\) exceeded")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_busy_loop_killed_by_cpu_limit(backend: str, host: FakeHost) -> None:
    result, why = await attack(backend, host, ["cpu"])
    assert_stopped(result, why, r"killed: CPU time limit \(1 s\) exceeded")


async def test_control_busy_loop_runs_unsandboxed(host: FakeHost) -> None:
    result, why = await attack("none", host, ["cpu"])
    assert_succeeded(result)
    assert why is None
