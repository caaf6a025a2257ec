"""``mcpproxy doctor`` and ``mcpproxy status`` say what is wrong and what to do about it.

The commands run as real processes against a real gateway with one healthy server and one whose
command does not exist; then against a broken config file and a port held by another program.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpproxy.upstream.base import UpstreamState
from tests.support.gateway import fixture_entry, mcpproxy_argv, running_gateway, write_config

pytestmark = pytest.mark.anyio

WAIT = 90.0
MISSING = {"command": "no-such-mcp-server-binary", "args": []}


async def run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    wide = {**os.environ, "COLUMNS": "300"}  # tables are not cut to a terminal's width
    done = await anyio.run_process(mcpproxy_argv("--config", str(config), *args), check=False, env=wide)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def by_check(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in findings}


async def test_doctor_checks_a_running_gateway_and_names_each_problem_with_an_action(tmp_path: Path) -> None:
    servers = {"notes": fixture_entry("notes_server"), "missing": MISSING}
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, servers, backoff_initial=30.0) as gw:
            await gw.wait_ready("notes")
            await gw.wait_state("missing", UpstreamState.ERROR, UpstreamState.BACKOFF)
            code, out, err = await run_cli(gw.config_path, "doctor", "--json")
            status_code, status_out, _ = await run_cli(gw.config_path, "status")

    assert code == 1, err  # an error finding: the missing command
    findings = by_check(json.loads(out))
    assert findings["config"]["status"] == "ok"
    assert findings["database"]["status"] == "ok" and "intact" in findings["database"]["detail"]
    assert findings["port"]["status"] == "ok" and "is running" in findings["port"]["detail"]
    assert findings["gateway"]["status"] == "ok"
    assert findings["server:notes"]["status"] == "ok"
    assert findings["server:missing"]["status"] == "error"
    assert "install the command" in findings["server:missing"]["action"]
    assert findings["runtime:missing"]["status"] == "error"
    assert "command not found" in findings["runtime:missing"]["detail"]
    assert findings["runtime:notes"]["status"] == "ok"
    assert f"python ({Path(sys.executable).name}) {sys.version_info.major}.{sys.version_info.minor}" in findings[
        "runtime:notes"
    ]["detail"]
    assert any(check.startswith("sandbox:") for check in findings)

    assert status_code == 0
    assert "install the command" in status_out and "down" in status_out


async def test_doctor_reports_a_broken_config_and_a_port_taken_by_another_program(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"mcpServers": {"x": {"args": "not-a-list"}}}', encoding="utf-8")
    code, out, _ = await run_cli(broken, "doctor", "--json")
    assert code == 1
    config = by_check(json.loads(out))["config"]
    assert config["status"] == "error" and config["action"]

    (tmp_path / "other").mkdir()
    config_path = write_config(tmp_path / "other", {})
    port = json.loads(config_path.read_text(encoding="utf-8"))["listen"].rsplit(":", 1)[1]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(port)))
        squatter.listen(1)
        code, out, _ = await run_cli(config_path, "doctor", "--json")
    assert code == 1
    finding = by_check(json.loads(out))["port"]
    assert finding["status"] == "error" and "another program" in finding["detail"]
    assert "--listen" in finding["action"]
