"""A stdio server gets only an allowlisted environment plus its own ``env``; transports get the spec."""

from __future__ import annotations

import io
from typing import Any, cast

import httpx2
import pytest
from mcp.client.stdio import StdioServerParameters

from mcpproxy.settings import ServerSpec
from mcpproxy.upstream import transports
from mcpproxy.upstream.transports import ENV_ALLOWLIST, SSE_READ_TIMEOUT, new_http_client, stdio_environment

AMBIENT = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "OPENAI_API_KEY": "sk-not-for-the-child",
    "GITHUB_TOKEN": "ghp_secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "MCPPROXY_API_KEY": "proxy-secret",
    "LD_PRELOAD": "/tmp/evil.so",
    "PYTHONPATH": "/somewhere",
}


def stdio_spec(**extra: Any) -> ServerSpec:
    return ServerSpec.model_validate({"name": "git", "command": "uvx", "args": ["mcp-server-git"], **extra})


def test_only_allowlisted_variables_are_inherited() -> None:
    env = stdio_environment(stdio_spec(), AMBIENT)
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "TZ": "UTC"}


def test_secrets_of_the_proxy_environment_never_reach_the_server() -> None:
    env = stdio_environment(stdio_spec(env={"GIT_AUTHOR_NAME": "me"}), AMBIENT)
    for secret in ("OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MCPPROXY_API_KEY"):
        assert secret not in env
    assert not any("secret" in value or value.startswith(("sk-", "ghp_")) for value in env.values())


def test_variables_that_change_how_programs_load_are_not_inherited() -> None:
    env = stdio_environment(stdio_spec(), AMBIENT)
    assert "LD_PRELOAD" not in env
    assert "PYTHONPATH" not in env


def test_the_servers_own_env_is_added_and_wins_over_the_allowlist() -> None:
    spec = stdio_spec(env={"GITHUB_TOKEN": "ghp_for_this_server", "PATH": "/opt/bin"})
    env = stdio_environment(spec, AMBIENT)
    assert env["GITHUB_TOKEN"] == "ghp_for_this_server"
    assert env["PATH"] == "/opt/bin"
    assert env["HOME"] == "/home/me"


def test_exported_shell_functions_are_not_inherited() -> None:
    env = stdio_environment(stdio_spec(), {"PATH": "/bin", "SHELL": "() {  echo pwned; }", "TERM": "xterm"})
    assert env == {"PATH": "/bin", "TERM": "xterm"}


def test_every_allowlisted_variable_is_passed_when_present() -> None:
    ambient = {key: f"value-of-{key}" for key in ENV_ALLOWLIST}
    assert stdio_environment(stdio_spec(), {**ambient, "OTHER": "x"}) == ambient


def test_the_process_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPPROXY_TEST_FAKE_SECRET", "do-not-leak")
    monkeypatch.setenv("PATH", "/fake/bin")
    env = stdio_environment(stdio_spec())
    assert "MCPPROXY_TEST_FAKE_SECRET" not in env
    assert "do-not-leak" not in env.values()
    assert env["PATH"] == "/fake/bin"


def test_a_stdio_transport_is_started_with_the_filtered_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[StdioServerParameters, object]] = []

    def fake_stdio_client(params: StdioServerParameters, errlog: object) -> str:
        seen.append((params, errlog))
        return "transport"

    monkeypatch.setattr(transports, "stdio_client", fake_stdio_client)
    monkeypatch.setenv("MCPPROXY_TEST_FAKE_SECRET", "do-not-leak")
    errlog = io.StringIO()
    spec = stdio_spec(env={"GIT_DIR": "/repo/.git"}, cwd="/repo")
    result: object = transports.open_transport(spec, connect_timeout=5, errlog=errlog)
    assert result == "transport"
    [(params, log)] = seen
    assert log is errlog
    assert (params.command, params.args, params.cwd) == ("uvx", ["mcp-server-git"], "/repo")
    assert params.env is not None
    assert params.env["GIT_DIR"] == "/repo/.git"
    assert "MCPPROXY_TEST_FAKE_SECRET" not in params.env


def test_an_sse_transport_gets_the_headers_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_sse_client(url: str, **kwargs: Any) -> str:
        seen.append({"url": url, **kwargs})
        return "sse"

    monkeypatch.setattr(transports, "sse_client", fake_sse_client)
    spec = ServerSpec.model_validate({"name": "ev", "url": "https://e.com/sse", "headers": {"X-Key": "k"}})
    result: object = transports.open_transport(spec, connect_timeout=4, errlog=io.StringIO())
    assert result == "sse"
    assert seen == [
        {"url": "https://e.com/sse", "headers": {"X-Key": "k"}, "timeout": 4, "sse_read_timeout": SSE_READ_TIMEOUT}
    ]


def test_an_http_transport_reuses_the_given_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, object]] = []

    def fake_http_client(url: str, *, http_client: object) -> str:
        seen.append((url, http_client))
        return "http"

    monkeypatch.setattr(transports, "streamable_http_client", fake_http_client)
    spec = ServerSpec.model_validate({"name": "docs", "url": "https://e.com/mcp"})
    client = cast(httpx2.AsyncClient, object())
    result: object = transports.open_transport(spec, connect_timeout=4, errlog=io.StringIO(), http_client=client)
    assert result == "http"
    assert seen == [("https://e.com/mcp", client)]


@pytest.mark.anyio
async def test_the_http_client_sends_the_configured_headers_with_the_timeouts() -> None:
    spec = ServerSpec.model_validate({"name": "docs", "url": "https://e.com/mcp", "headers": {"X-Key": "k"}})
    async with new_http_client(spec, connect_timeout=3) as client:
        assert isinstance(client, httpx2.AsyncClient)
        assert client.headers["X-Key"] == "k"
        assert client.timeout.connect == 3
        assert client.timeout.read == SSE_READ_TIMEOUT
