"""``mcpproxy upstream``: list and manage the upstream servers of a running gateway."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console

from mcpproxy.cli.common import EXIT_USAGE, Api, Env, fail, print_json
from mcpproxy.cli.status import server_table

FOLLOW_POLL_SECONDS = 0.5


@click.group()
def upstream() -> None:
    """Manage upstream MCP servers."""


@upstream.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_cmd(env: Env, as_json: bool) -> None:
    """List servers with their state."""
    servers = Api(env).get("/servers")["servers"]
    if as_json:
        print_json(servers)
    else:
        Console().print(server_table(servers))


def _pairs(values: tuple[str, ...], sep: str, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, found, val = value.partition(sep)
        if not found or not key:
            fail(f"{what} must look like KEY{sep}VALUE, got {value!r}", EXIT_USAGE)
        out[key.strip()] = val.strip() if sep == ":" else val
    return out


@upstream.command("add")
@click.argument("name")
@click.argument("command_and_args", nargs=-1, metavar="[-- COMMAND ARGS...]")
@click.option("--url", help="URL of a streamable HTTP or SSE server.")
@click.option("--transport", type=click.Choice(["stdio", "http", "sse"]), help="Override detection.")
@click.option("--env", "envs", multiple=True, metavar="KEY=VALUE", help="Environment variable (stdio).")
@click.option("--header", "headers", multiple=True, metavar="NAME:VALUE", help="HTTP header.")
@click.option("--cwd", "working_dir", help="Working directory (stdio).")
@click.option("--disabled", is_flag=True, help="Add it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def add_cmd(
    env: Env,
    name: str,
    command_and_args: tuple[str, ...],
    url: str | None,
    transport: str | None,
    envs: tuple[str, ...],
    headers: tuple[str, ...],
    working_dir: str | None,
    disabled: bool,
    as_json: bool,
) -> None:
    """Add a server: `add NAME -- COMMAND ARGS...` (stdio) or `add NAME --url URL`."""
    body: dict[str, Any] = {"name": name}
    if command_and_args:
        body["command"], body["args"] = command_and_args[0], list(command_and_args[1:])
    if url:
        body["url"] = url
    if transport:
        body["transport"] = transport
    if envs:
        body["env"] = _pairs(envs, "=", "--env")
    if headers:
        body["headers"] = _pairs(headers, ":", "--header")
    if working_dir:
        body["working_dir"] = working_dir
    if disabled:
        body["enabled"] = False
    result = Api(env).post("/servers", body)
    print_json(result) if as_json else click.echo(f"added {name}")


def _simple(action: str, help_text: str) -> None:
    @upstream.command(action, help=help_text)
    @click.argument("name")
    @click.pass_obj
    def cmd(env: Env, name: str) -> None:
        api = Api(env)
        if action == "remove":
            api.request("DELETE", f"/servers/{name}")
        else:
            api.post(f"/servers/{name}/{action}")
        click.echo(f"{action}{'d' if action.endswith('e') else 'ed'} {name}")


_simple("remove", "Remove a server.")
_simple("enable", "Enable a server.")
_simple("disable", "Disable a server (it is disconnected).")
_simple("restart", "Reconnect a server now.")


@upstream.command("update")
@click.argument("name")
@click.argument("changes", metavar="JSON")
@click.pass_obj
def update_cmd(env: Env, name: str, changes: str) -> None:
    """Update a server with config keys, e.g. '{"args": ["--verbose"]}'."""
    try:
        body = json.loads(changes)
    except ValueError as exc:
        fail(f"JSON expected: {exc}", EXIT_USAGE)
    Api(env).request("PATCH", f"/servers/{name}", json=body)
    click.echo(f"updated {name}")


@upstream.command("logs")
@click.argument("name")
@click.option("-n", "--lines", default=50, show_default=True, help="Lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--max-seconds", type=float, default=None, hidden=True, help="Stop following after this long.")
@click.pass_obj
def logs_cmd(env: Env, name: str, lines: int, follow: bool, max_seconds: float | None) -> None:
    """Show a server's log (its stderr for stdio servers)."""
    api = Api(env)
    body = api.get(f"/servers/{name}/logs", lines=lines)
    for line in body["lines"]:
        click.echo(line)
    if not follow:
        return
    offset = body["offset"]
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            chunk = api.get(f"/servers/{name}/logs", offset=offset)
            if chunk["text"]:
                click.echo(chunk["text"], nl=False)
            offset = chunk["offset"]
            time.sleep(FOLLOW_POLL_SECONDS)
    except KeyboardInterrupt:
        pass


@upstream.command("approve")
@click.argument("name")
@click.pass_obj
def approve_cmd(env: Env, name: str) -> None:
    """Release a quarantined server (and its tools waiting for review)."""
    body = Api(env).post(f"/servers/{name}/approve")
    released = body.get("released_tools", [])
    click.echo(f"approved {name}" + (f"; released {len(released)} tools" if released else ""))


@upstream.command("quarantine")
@click.argument("name")
@click.pass_obj
def quarantine_cmd(env: Env, name: str) -> None:
    """Put a server back in quarantine: its tools are hidden and uncallable."""
    Api(env).post(f"/servers/{name}/quarantine")
    click.echo(f"quarantined {name}")


@upstream.command("inspect")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def inspect_cmd(env: Env, name: str, as_json: bool) -> None:
    """Show a server's approval and each tool's status, risk and scanner findings."""
    body = Api(env).get(f"/security/servers/{name}")
    if as_json:
        print_json(body)
        return
    click.echo(f"{name}: {body['approval']}" + (f" ({body['reason']})" if body.get("reason") else ""))
    for tool in body["tools"]:
        click.echo(f"  {tool['name']}  [{tool['status']}] risk {tool.get('risk', 0)}")
        click.echo(f"      {(tool.get('description') or '').splitlines()[0] if tool.get('description') else ''}")
        for finding in tool.get("findings", []):
            where = f"{finding['rule']} ({finding['severity']}) at {finding['location']}"
            click.echo(f"      ! {where}: {finding['evidence']}")
