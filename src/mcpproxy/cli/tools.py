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
@click.option("--explain", is_flag=True, help="Say why each tool matched (with --json: the full detail).")
@click.pass_obj
def search_cmd(env: Env, query: tuple[str, ...], limit: int, as_json: bool, explain: bool) -> None:
    """Search tools the way retrieve_tools does."""
    params: dict[str, Any] = {"q": " ".join(query), "limit": limit}
    if explain:
        params["explain"] = 1
    body = Api(env).get("/search", **params)
    if as_json:
        print_json(body["tools"])
        return
    Console().print(_table(body["tools"], with_score=True))
    for item in body["tools"] if explain else []:
        why = item.get("why") or {}
        found = ", ".join(f"{f['by']} #{f['rank']}" for f in why.get("found_by", []))
        matched = ", ".join(f"{term} ({'/'.join(fields)})" for term, fields in why.get("matched", {}).items())
        click.echo(f"{item['name']}: found by {found or '-'}; matched {matched or '-'}")


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


@tools.command("diff")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def diff_cmd(env: Env, name: str, as_json: bool) -> None:
    """What changed in a tool since it was approved (NAME is server:tool)."""
    body = Api(env).get(f"/security/tools/{name}/diff")
    if as_json:
        print_json(body)
        return
    click.echo(f"{body['tool']}: {body['status']}" + ("" if body["approved"] else " (never approved)"))
    if not body["changes"]:
        click.echo("no change since approval")
    for change in body["changes"]:
        click.echo(f"--- {change['field']}")
        if "text_diff" in change:
            click.echo(change["text_diff"].rstrip("\n"))
        else:
            click.echo(f"before: {json.dumps(change['before'], indent=1)}")
            click.echo(f"after:  {json.dumps(change['after'], indent=1)}")


def _decide(action: str, help_text: str) -> None:
    @tools.command(action, help=help_text)
    @click.argument("name")
    @click.pass_obj
    def cmd(env: Env, name: str) -> None:
        if ":" not in name:
            fail("NAME must be server:tool", EXIT_USAGE)
        body = Api(env).post(f"/security/tools/{name}/{action}")
        click.echo(f"{body['name']}: {body['status']}")


_decide("approve", "Approve a tool's current definition (NAME is server:tool).")
_decide("block", "Block a tool: hidden and uncallable until approved (NAME is server:tool).")
