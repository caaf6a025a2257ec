"""A secret set with ``mcpproxy secrets set`` and referenced in the config reaches its servers and
never appears in logs, REST or MCP output, CLI listings, error messages or files on disk.

One real ``mcpproxy serve`` process (log level debug, the most talkative) runs four upstreams
of the ``env_server`` fixture, which reports what it received only as SHA-256 digests:

- ``envy`` (stdio): ``${keyring:JOURNEY_TOKEN}`` in its env and its args, ``${env:JOURNEY_ENV}``
  (a variable of the gateway's own environment) in its env;
- ``remote`` (streamable HTTP): ``Authorization: Bearer ${keyring:JOURNEY_HEADER}`` and a literal
  ``X-Api-Key``; the server answers 401 to any request without the right header;
- ``leaky`` (HTTP): the secret in its URL's query and no header, so it fails with a 401 whose
  reason names the URL;
- ``late`` (stdio): ``${keyring:JOURNEY_LATE}``, not set yet, so it fails naming the reference,
  and connects once the secret is set and the server restarted.

The secrets are set through the CLI (from standard input and with ``--value``) before the gateway
starts. Every observation is then searched for every secret value: the REST bodies, the MCP
``upstream_servers`` listing, ``upstream list``/``status``/``upstream logs`` output, the gateway's
own output, every log file of the data dir, the config file and the database.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from tests.support import paths
from tests.support.gateway import mcpproxy_argv, mcpproxy_process, stdio_entry, write_config
from tests.support.net import LOOPBACK, free_port
from tests.support.procs import ProcessHandle, child_env, run_process

from mcpproxy.cli.common import API_KEY_FILE, EXIT_OK
from mcpproxy.config.loader import load_settings
from mcpproxy.filters.secrets import mask
from mcpproxy.secrets.store import BACKEND_ENV

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ENV_SERVER = paths.REPO_ROOT / "tests" / "secrets" / "env_server.py"
WAIT = 60.0


def sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def env_server(*args: str) -> list[str]:
    return [sys.executable, str(ENV_SERVER), *args]


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment with HOME in the test's directory and the file secret store."""
    home.mkdir(parents=True, exist_ok=True)
    env = child_env({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "COLUMNS": "200"})
    for name in ("MCPPROXY_CONFIG", "MCPPROXY_DATA_DIR", "PYTHON_KEYRING_BACKEND"):
        env.pop(name, None)
    # Never the user's keyring; a headless machine chooses the file by itself, this makes it sure.
    return {**env, BACKEND_ENV: "file", **extra}


class Values:
    """The secrets of the journey, unique to this run."""

    def __init__(self) -> None:
        self.token = f"sk-journey-{secrets.token_hex(16)}"
        self.header = f"hdr-journey-{secrets.token_hex(16)}"
        self.from_env = f"env-journey-{secrets.token_hex(16)}"
        self.literal = f"lit-journey-{secrets.token_hex(16)}"
        self.late = f"late-journey-{secrets.token_hex(16)}"
        self.canary = f"canary-{secrets.token_hex(16)}"

    @property
    def secret(self) -> dict[str, str]:
        return {"token": self.token, "header": self.header, "from_env": self.from_env, "literal": self.literal,
                "late": self.late}

    def assert_absent(self, where: str, text: str) -> None:
        for label, value in self.secret.items():
            assert value not in text, f"the {label} secret appears in {where}"


class Journey:
    def __init__(self, tmp_path: Path, values: Values) -> None:
        self.tmp = tmp_path
        self.values = values
        self.home = tmp_path / "home"
        self.config: Path | None = None
        self.gateway: ProcessHandle | None = None
        self.base_url = ""

    @property
    def data_dir(self) -> Path:
        assert self.config is not None
        return load_settings(self.config, env={}).data_path

    async def cli(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        assert self.config is not None
        argv = mcpproxy_argv("--config", str(self.config), *args)
        done = await anyio.run_process(
            argv, env=user_env(self.home), check=False, input=stdin.encode() if stdin is not None else b""
        )
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    async def cli_ok(self, *args: str, stdin: str | None = None) -> str:
        code, out, err = await self.cli(*args, stdin=stdin)
        assert code == EXIT_OK, f"{args} exited {code}: {err}"
        self.values.assert_absent(f"`mcpproxy {' '.join(args[:2])}` output", out + err)
        return out

    async def rest(self, method: str, path: str, body: Any = None) -> Any:
        key = (self.data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()
        async with httpx2.AsyncClient(base_url=self.base_url + "/api/v1", headers={"X-API-Key": key}) as client:
            response = await client.request(method, path, json=body)
        if not path.startswith("/call"):
            self.values.assert_absent(f"REST {method} {path}", response.text)
        assert response.status_code < 400, response.text
        return response.json()

    async def call(self, tool: str, **args: Any) -> Any:
        """A tool's result through REST ``/call`` (digests only: no value crosses it)."""
        result = await self.rest("POST", "/call", {"name": tool, "args": args})
        assert not result.get("isError"), result
        structured = result.get("structuredContent")
        if structured is not None:
            return structured.get("result", structured)
        return json.loads(result["content"][0]["text"])

    async def wait_line(self, text: str) -> None:
        """Wait for the gateway to log ``text`` (its state changes are logged as they happen)."""
        assert self.gateway is not None
        with anyio.fail_after(WAIT):
            await self.gateway.wait_for_line(text)

    async def servers(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in (await self.rest("GET", "/servers"))["servers"]}


@pytest.fixture
async def remote_upstream() -> AsyncIterator[tuple[str, Values]]:
    """The HTTP upstream, which refuses requests without ``Authorization: Bearer <header secret>``."""
    values = Values()
    port = free_port()
    argv = env_server("--transport", "http", "--host", LOOPBACK, "--port", str(port))
    argv += ["--require-header", "Authorization"]
    env = child_env({"EXPECTED_HEADER_VALUE": f"Bearer {values.header}"})
    async with run_process(argv, env=env, ready_port=port, timeout=30.0, cwd=paths.REPO_ROOT):
        yield f"http://{LOOPBACK}:{port}/mcp", values


async def test_a_secret_reaches_its_servers_and_is_never_shown_logged_or_stored(
    tmp_path: Path, remote_upstream: tuple[str, Values]
) -> None:
    url, values = remote_upstream
    journey = Journey(tmp_path, values)
    servers = {
        "envy": stdio_entry(
            env_server("--transport", "stdio", "--label", "${keyring:JOURNEY_TOKEN}"),
            env={"API_TOKEN": "${keyring:JOURNEY_TOKEN}", "FROM_ENV": "${env:JOURNEY_ENV}", "PLAIN": "visible"},
        ),
        "remote": {
            "url": url,
            "headers": {"Authorization": "Bearer ${keyring:JOURNEY_HEADER}", "X-Api-Key": values.literal},
        },
        # Legacy SSE: a refused stream is an HTTP error whose reason names the URL.
        "leaky": {"url": url + "?api_key=${keyring:JOURNEY_TOKEN}", "type": "sse"},
        "late": stdio_entry(env_server("--transport", "stdio"), env={"API_TOKEN": "${keyring:JOURNEY_LATE}"}),
    }
    journey.config = write_config(tmp_path, servers)

    # Secrets go in through the CLI, before the gateway runs: from standard input and from --value.
    stored = await journey.cli_ok("secrets", "set", "JOURNEY_TOKEN", stdin=values.token + "\n")
    assert "stored JOURNEY_TOKEN in the encrypted file" in stored
    await journey.cli_ok("secrets", "set", "JOURNEY_HEADER", "--value", values.header)
    listed = await journey.cli_ok("secrets", "list")
    assert f"JOURNEY_HEADER  {mask(values.header)}" in listed
    assert f"JOURNEY_TOKEN   {mask(values.token)}" in listed

    gateway_env = user_env(
        journey.home,
        JOURNEY_ENV=values.from_env,
        JOURNEY_CANARY=values.canary,
        OPENAI_API_KEY=values.canary,
        MCPPROXY_LOG_LEVEL="debug",
    )
    async with mcpproxy_process(journey.config, env=gateway_env) as (gateway, base_url):
        journey.gateway, journey.base_url = gateway, base_url
        await journey.wait_line("upstream envy ready")
        await journey.wait_line("upstream remote ready")
        await journey.wait_line("upstream leaky: ")
        await journey.wait_line("upstream late: ${keyring:JOURNEY_LATE} in env.API_TOKEN cannot be resolved")

        # The stdio server got the keyring and env secrets in its env and args, and nothing else of
        # the gateway's environment than the allowlist.
        assert await journey.call("envy:variable_digest", name="API_TOKEN") == sha(values.token)
        assert await journey.call("envy:variable_digest", name="FROM_ENV") == sha(values.from_env)
        assert (await journey.call("envy:argument_digests"))[1] == sha(values.token)
        names = set(await journey.call("envy:variable_names"))
        configured = set(servers["envy"]["env"])
        assert configured <= names
        # Nothing else of the gateway's environment: not its own settings, not what pytest set, not
        # the canaries (besides the allowlist and its env, a server sees only what its sandbox sets).
        ambient = {n for n in gateway_env if n.startswith(("MCPPROXY_", "PYTEST_", "JOURNEY_"))} | {"OPENAI_API_KEY"}
        assert {"MCPPROXY_LOG_LEVEL", "PYTEST_CURRENT_TEST", "JOURNEY_CANARY"} <= ambient
        assert names & ambient == set()
        assert await journey.call("envy:variable_digest", name="OPENAI_API_KEY") is None
        # The HTTP server got the header (it refuses requests without it) and the literal one.
        assert await journey.call("remote:header_digest", name="Authorization") == sha(f"Bearer {values.header}")
        assert await journey.call("remote:header_digest", name="X-Api-Key") == sha(values.literal)

        # Failures say what is wrong: the missing reference by name; the 401 with the URL masked.
        listing = await journey.servers()
        late_error = listing["late"]["error"]
        assert late_error.startswith("${keyring:JOURNEY_LATE} in env.API_TOKEN cannot be resolved")
        assert "mcpproxy secrets set JOURNEY_LATE" in late_error
        leaky_error = listing["leaky"]["error"]
        assert leaky_error == f"HTTP 401 from {url}?api_key={mask(values.token)}"
        assert listing["leaky"]["target"] == url + "?api_key=${keyring:JOURNEY_TOKEN}"
        assert listing["envy"]["target"].endswith("--transport stdio --label ${keyring:JOURNEY_TOKEN}")

        # Config listings show references as written and literal secrets masked.
        envy = await journey.rest("GET", "/servers/envy")
        assert envy["config"]["env"]["API_TOKEN"] == "${keyring:JOURNEY_TOKEN}"
        assert envy["config"]["env"]["FROM_ENV"] == "${env:JOURNEY_ENV}"
        remote = await journey.rest("GET", "/servers/remote")
        assert remote["config"]["headers"] == {
            "Authorization": "Bearer ${keyring:JOURNEY_HEADER}",
            "X-Api-Key": mask(values.literal),
        }
        for name in ("leaky", "late"):
            await journey.rest("GET", f"/servers/{name}")
        await journey.rest("GET", "/status")
        await journey.rest("GET", "/servers/envy/logs?lines=500")
        async with Client(base_url + "/mcp") as client:
            result = await client.call_tool("upstream_servers", {"op": "list"})
            values.assert_absent("MCP upstream_servers list", result.model_dump_json())
        outputs: dict[str, str] = {}

        async def cli_output(*args: str) -> None:
            outputs[" ".join(args)] = await journey.cli_ok(*args)  # each output is searched for values

        async with anyio.create_task_group() as tg:
            for args in (
                ("upstream", "list", "--json"),
                ("upstream", "list"),
                ("status", "--json"),
                ("upstream", "logs", "envy", "-n", "500"),
                ("secrets", "get", "JOURNEY_TOKEN"),
            ):
                tg.start_soon(cli_output, *args)
        assert {s["name"] for s in json.loads(outputs["upstream list --json"])} == set(servers)
        assert "leaky" in outputs["upstream list"]
        assert outputs["secrets get JOURNEY_TOKEN"] == mask(values.token) + "\n"

        # The missing secret set, the server restarted: it connects with the new value.
        await journey.cli_ok("secrets", "set", "JOURNEY_LATE", stdin=values.late)
        await journey.cli_ok("upstream", "restart", "late")
        await journey.wait_line("upstream late ready")
        assert await journey.call("late:variable_digest", name="API_TOKEN") == sha(values.late)
        await journey.servers()

        values.assert_absent("the gateway's output", "\n".join(gateway.lines()))
    values.assert_absent("the gateway's output", "\n".join(gateway.lines()))

    # Nothing on disk holds a value: no log, not the config file, not the database.
    logs = sorted((journey.data_dir / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"main.log", "upstream-envy.log", "upstream-late.log"}
    main_log = (journey.data_dir / "logs" / "main.log").read_text(encoding="utf-8")
    assert f"upstream leaky: HTTP 401 from {url}?api_key=" in main_log  # its URL was logged (masked)
    for log in logs:
        values.assert_absent(f"log {log.name}", log.read_text(encoding="utf-8", errors="replace"))
    # (The literal header is in the config file as the user wrote it; resolved values are nowhere.)
    for stored_file in [journey.config, *journey.data_dir.glob("mcpproxy.db*")]:
        data = stored_file.read_bytes()
        for label, value in values.secret.items():
            if label != "literal":
                assert value.encode() not in data, f"the {label} secret is stored in {stored_file.name}"
