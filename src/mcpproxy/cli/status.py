"""``mcpproxy status``: is the gateway up, and how is each server."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from mcpproxy.cli.common import Api, Env, print_json


def server_table(servers: list[dict[str, object]], title: str | None = None) -> Table:
    table = Table(title=title)
    health = any("health" in s for s in servers)  # the status endpoint adds a verdict and an action
    for col in ("server", "enabled", "transport", "state", "tools", "protocol", "detail"):
        table.add_column(col)
    if health:
        table.add_column("health / what to do")
    for s in servers:
        cells = [
            str(s["name"]),
            "yes" if s.get("enabled") else "no",
            str(s.get("transport", "")),
            str(s["state"]),
            str(s.get("tool_count", "")),
            str(s.get("protocol_version") or ""),
            str(s.get("error") or "")[:100],
        ]
        if health:
            cells.append(str(s.get("health", "")) + (f": {s['action']}" if s.get("action") else ""))
        table.add_row(*cells)
    return table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(env: Env, as_json: bool) -> None:
    """Show the gateway's status and every server's state."""
    body = Api(env).get("/status")
    if as_json:
        print_json(body)
        return
    console = Console()
    console.print(
        f"mcpproxy {body['version']} at http://{body['listen']}/mcp, up {body['uptime_s']} s, "
        f"{body['tools_indexed']} tools indexed"
    )
    if body.get("config_error"):
        console.print(f"[red]config file refused:[/] {body['config_error']['message']}")
    console.print(server_table(body["servers"]))
