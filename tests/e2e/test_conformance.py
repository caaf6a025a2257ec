"""The official MCP conformance suite, run directly against an upstream and through mcpproxy.

Through mcpproxy the suite talks to ``/mcp/s/<server>``: one upstream under its own names,
with every gateway policy on the way. mcpproxy must lose nothing: every check scores what it
scores directly (for our conformance fixture, every check passes in both protocol eras).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.support import conformance, paths
from tests.support.gateway import running_gateway, stdio_entry
from tests.support.net import LOOPBACK, free_port
from tests.support.procs import run_process
from tests.support.servers import run_fixture

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.timeout(600)]

SUITES = [
    pytest.param("0.1", (), 40, id="0.1.16-handshake"),
    pytest.param("0.2", ("--spec-version", "2026-07-28"), None, id="0.2.0-alpha.12-stateless"),
]


def _explain(direct: conformance.SuiteResult, proxied: conformance.SuiteResult) -> str:
    differ = {
        key: (direct.checks.get(key), proxied.checks.get(key))
        for key in direct.checks.keys() | proxied.checks.keys()
        if direct.checks.get(key) != proxied.checks.get(key)
    }
    return f"checks that differ (direct, proxied): {differ}\n--- proxied output tail:\n{proxied.output[-3000:]}"


@pytest.mark.parametrize(("version", "extra", "expected"), SUITES)
async def test_conformance_suite_scores_the_same_through_mcpproxy_as_directly_on_the_fixture(
    tmp_path: Path, version: str, extra: tuple[str, ...], expected: int | None
) -> None:
    async with run_fixture("conformance_server", timeout=60) as fixture:
        direct = await conformance.run_suite(version, fixture.url, tmp_path / "direct", *extra)
        servers: dict[str, Any] = {"fixture": {"url": fixture.url, "protocol": "legacy"}}
        (tmp_path / "gw").mkdir()
        async with running_gateway(tmp_path / "gw", servers) as gw:
            await gw.wait_ready("fixture")
            proxied_url = gw.base_url + "/mcp/s/fixture"
            proxied = await conformance.run_suite(version, proxied_url, tmp_path / "proxied", *extra)
    passed, failed = direct.counts()
    assert failed == 0, direct.failures()
    if expected is not None:
        assert passed == expected, direct.output[-3000:]
    assert proxied.checks == direct.checks, _explain(direct, proxied)
    print(f"conformance {version}: direct {passed}/{passed + failed}, through mcpproxy {proxied.counts()[0]}")


async def test_conformance_suite_scores_the_same_through_mcpproxy_as_directly_on_server_everything(
    tmp_path: Path,
) -> None:
    everything = paths.npm_bin("mcp-server-everything")
    port = free_port()
    argv = [everything[0], "-r", str(conformance.LOOPBACK_PRELOAD), everything[1], "streamableHttp"]
    async with run_process(argv, env={"PORT": str(port)}, ready_port=port, timeout=30):
        direct = await conformance.run_suite("0.1", f"http://{LOOPBACK}:{port}/mcp", tmp_path / "direct")
    servers = {"everything": stdio_entry([*everything, "stdio"])}
    (tmp_path / "gw").mkdir()
    async with running_gateway(tmp_path / "gw", servers) as gw:
        await gw.wait_ready("everything")
        proxied = await conformance.run_suite("0.1", gw.base_url + "/mcp/s/everything", tmp_path / "proxied")
    assert direct.checks, direct.output[-3000:]
    rebinding = {k for k in direct.checks if k[0] == "dns-rebinding-protection"}
    # server-everything has no DNS-rebinding protection of its own; mcpproxy adds it in front.
    assert all(proxied.checks[k] == "SUCCESS" for k in rebinding), _explain(direct, proxied)
    same = {k: v for k, v in direct.checks.items() if k not in rebinding}
    assert {k: proxied.checks.get(k) for k in same} == same, _explain(direct, proxied)
    print(f"server-everything: direct {direct.counts()}, through mcpproxy {proxied.counts()}")
    await anyio.lowlevel.checkpoint()
