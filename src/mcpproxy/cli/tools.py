"""``mcpproxy tools``: list, search, describe and call tools through a running gateway."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mcpproxy.cli.common import EXIT_FAILED, EXIT_USAGE, Api, Env, fail, print_json


@click.group()
def tools() -> None:
    """Find and call tools."""


def _table(items: list[dict[str, Any]], with_score: bool = False) -> Table:
    table = Table()
    table.add_column("tool")
    table.add_column("tier")
    if with_score:
        table.add_column("score")
    table.add_column("description")
    for t in items:
        row = [t["name"], t["tier"]]
        if with_score:
            row.append(f"{t['score']:.2f}")
        row.append((t.get("description") or "").split("\n")[0][:90])
        table.add_row(*row)
    return table


@tools.command("list")
@click.option("--server", help="Only this server's tools.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(env: Env, server: str | None, as_json: bool) -> None:
    """List every available tool."""
    body = Api(env).get("/tools", server=server)
    print_json(body["tools"]) if as_json else Console().print(_table(body["tools"]))


@tools.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "--limit", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def search_cmd(env: Env, query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Search tools the way retrieve_tools does."""
    body = Api(env).get("/search", q=" ".join(query), limit=limit)
    print_json(body["tools"]) if as_json else Console().print(_table(body["tools"], with_score=True))


@tools.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def describe_cmd(env: Env, name: str, as_json: bool) -> None:
    """Show a tool's full description and schema (NAME is server:tool)."""
    server, sep, tool = name.partition(":")
    if not sep:
        fail("NAME must be server:tool", EXIT_USAGE)
    body = Api(env).get(f"/tools/{server}/{tool}")
    if as_json:
        print_json(body)
        return
    click.echo(f"{body['name']}  (tier: {body['tier']}, call with {body['call_with']})\n")
    click.echo(body.get("description") or "(no description)")
    click.echo("\ninput schema:")
    click.echo(json.dumps(body["input_schema"], indent=2))


@tools.command("call")
@click.argument("name")
@click.option("--args", "args_json", default="{}", metavar="JSON", help="Arguments as a JSON object.")
@click.option("--tier", type=click.Choice(["read", "write", "destructive"]), help="Intent tier to check.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.pass_obj
def call_cmd(env: Env, name: str, args_json: str, tier: str | None, as_json: bool) -> None:
    """Call a tool (NAME is server:tool)."""
    try:
        args = json.loads(args_json)
    except ValueError as exc:
        fail(f"--args must be JSON: {exc}", EXIT_USAGE)
    body = Api(env).post("/call", {"name": name, "args": args, "tier": tier})
    if as_json:
        print_json(body)
    else:
        for block in body.get("content", []):
            if block.get("type") == "text":
                click.echo(block["text"])
            else:
                click.echo(f"[{block.get('type')} content]")
    if body.get("isError"):
        raise SystemExit(EXIT_FAILED)
