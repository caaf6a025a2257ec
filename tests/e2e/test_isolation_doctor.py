"""``mcpproxy doctor`` as a real process: which sandboxes work here, and how each stdio server runs.

A config with a server on the default isolation, one that opts out and one that asks for a
backend this machine cannot run (docker pointed at an engine that does not exist) must list
every backend with its reason, say what ``auto`` picks, and exit 1 for the server that cannot
start, naming why.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.support.gateway import mcpproxy_argv, write_config

from mcpproxy.sandbox.auto import STRENGTH_ORDER, backend_report

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 90.0


async def doctor(config: Path, env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    with anyio.fail_after(WAIT):
        done = await anyio.run_process(mcpproxy_argv("--config", str(config), "doctor", "--json"), check=False,
                                       env=env)  # fmt: skip
    findings = json.loads(done.stdout)
    return done.returncode, {f["check"]: f for f in findings}


async def test_doctor_names_each_sandbox_and_each_servers_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_engine = f"unix://{tmp_path / 'no-engine.sock'}"
    monkeypatch.setenv("DOCKER_HOST", no_engine)
    servers: dict[str, dict[str, Any]] = {
        "plain": {"command": sys.executable, "args": ["-V"]},
        "raw": {"command": sys.executable, "args": ["-V"], "isolation": "none"},
        "boxed": {"command": "npx", "args": ["-y", "some-server"], "isolation": {"mode": "docker"}},
    }
    config = write_config(tmp_path, servers)
    code, findings = await doctor(config, {**os.environ, "DOCKER_HOST": no_engine})
    report = backend_report()
    auto = next(name for name in STRENGTH_ORDER if report[name].ok)

    assert code == 1  # the docker server cannot start here
    for name in ("bwrap", "landlock"):
        assert findings[f"sandbox:{name}"]["status"] == ("ok" if report[name].ok else "warn")
        assert findings[f"sandbox:{name}"]["detail"].endswith(report[name].reason)
    assert findings["sandbox:docker"]["status"] == "warn"
    assert findings["sandbox:docker"]["detail"].startswith("unavailable: ")
    assert findings["sandbox:auto"]["detail"] == f"picks {auto}"
    assert findings["isolation:plain"] == {
        "check": "isolation:plain", "status": "ok", "detail": f"runs under {auto} (auto)", "action": None,
    }  # fmt: skip
    assert findings["isolation:raw"]["status"] == "warn"
    assert findings["isolation:boxed"]["status"] == "error"
    assert findings["isolation:boxed"]["detail"].startswith("configured for docker, which cannot run here")
    assert findings["isolation:boxed"]["action"]
