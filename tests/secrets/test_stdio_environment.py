"""A stdio server started by mcpproxy's transport (no sandbox) sees the allowlist and its own resolved
``env``, never the rest of the gateway's environment; a real process reports what it got."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from mcpproxy.secrets.store import SecretStore
from mcpproxy.settings import ServerSpec
from mcpproxy.upstream.transports import ENV_ALLOWLIST, open_transport, resolve_references
from tests.support.gateway import QUIET_FASTMCP
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.anyio

ENV_SERVER = REPO_ROOT / "tests" / "secrets" / "env_server.py"
TOKEN = "stdio-env-secret-3f9a8b7c6d5e4f"


def result(answer: types.CallToolResult) -> Any:
    assert not answer.is_error, answer
    if answer.structured_content is not None:
        return answer.structured_content.get("result", answer.structured_content)
    first = answer.content[0]
    assert isinstance(first, types.TextContent)
    return json.loads(first.text)


async def test_the_server_gets_the_allowlist_and_its_resolved_env_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    SecretStore(data_dir).set("STDIO_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-of-the-gateway-not-for-children")
    monkeypatch.setenv("GATEWAY_ONLY", "canary")
    monkeypatch.setenv("FROM_GATEWAY", "passed-explicitly")
    monkeypatch.setenv("LANG", "C.UTF-8")
    own_env = {**QUIET_FASTMCP, "API_TOKEN": "${keyring:STDIO_TOKEN}", "PASSED": "${env:FROM_GATEWAY}"}
    spec = ServerSpec.model_validate(
        {"name": "envy", "command": sys.executable, "args": [str(ENV_SERVER)], "env": own_env}
    )
    with (tmp_path / "upstream-envy.log").open("w", encoding="utf-8") as errlog:
        transport = open_transport(resolve_references(spec, data_dir), connect_timeout=10, errlog=errlog)
        async with Client(transport) as client:
            names = set(result(await client.call_tool("variable_names", {})))
            token_digest = result(await client.call_tool("variable_digest", {"name": "API_TOKEN"}))
            passed_digest = result(await client.call_tool("variable_digest", {"name": "PASSED"}))

    assert set(own_env) <= names
    assert names - set(own_env) <= set(ENV_ALLOWLIST), names - set(own_env) - set(ENV_ALLOWLIST)
    assert {"LANG", "PATH"} <= names
    assert not names & {"OPENAI_API_KEY", "GATEWAY_ONLY", "FROM_GATEWAY", "PYTEST_CURRENT_TEST"}
    assert token_digest == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert passed_digest == hashlib.sha256(b"passed-explicitly").hexdigest()
    assert spec.env["API_TOKEN"] == "${keyring:STDIO_TOKEN}"
