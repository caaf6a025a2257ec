"""``mcpproxy activity``: the activity log of a running gateway (tool calls, policy decisions,
server state changes), through its REST API.

    mcpproxy activity list [filters] [-n N] [--json]
    mcpproxy activity show ID [--json]
    mcpproxy activity watch [filters] [--json]
    mcpproxy activity export [filters] [--format jsonl|csv] [-o FILE] [--limit N]

Filters: ``--server``, ``--tool``, ``--status`` (ok, error, refused, failed, cancelled, or a
decision such as deny), ``--kind`` (call, policy, state, auth), ``--client``, ``--request-id``,
``--since`` / ``--until`` (``15m``, ``2h``, ``1d``, an ISO date or a Unix time).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import httpx2
from rich.console import Console
from rich.table import Table

from mcpproxy.cli.common import EXIT_UNREACHABLE, EXIT_USAGE, Api, Env, fail, print_json
from mcpproxy.observe.when import iso, parse_when

WATCH_POLL_SECONDS = 0.5


def _filters(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--server", help="Only this server."),
        click.option("--tool", help="Only this tool (its name on its server)."),
        click.option("--status", help="ok, error, refused, failed, cancelled, or a decision (deny, redact...)."),
        click.option("--kind", help="call, policy, state or auth."),
        click.option("--client", help="Only this client (name or address)."),
        click.option("--request-id", "request_id", help="Only this request."),
        click.option("--since", help="From: 15m, 2h, 1d, an ISO date or a Unix time."),
        click.option("--until", help="Until: same forms as --since."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _params(**given: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key in ("since", "until"):
            try:
                value = f"{parse_when(value):.3f}"
            except ValueError as exc:
                fail(str(exc), EXIT_USAGE)
        params[key] = value
    return params


def _duration(record: dict[str, Any]) -> str:
    ms = record.get("duration_ms")
    return "" if ms is None else f"{ms:.1f} ms"


def _what(record: dict[str, Any]) -> str:
    server, tool = record.get("server"), record.get("tool")
    if server and tool:
        return f"{server}:{tool}"
    return str(server or tool or "")


def _table(records: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("time", "id", "kind", "what", "status", "duration", "client", "error"):
        table.add_column(column)
    for r in records:
        table.add_row(
            iso(r.get("ts")),
            str(r.get("id", ""))[:16],
            str(r.get("kind", "")),
            _what(r),
            str(r.get("status", "")),
            _duration(r),
            str(r.get("client") or ""),
            str(r.get("error") or "")[:80],
        )
    return table


def _line(r: dict[str, Any]) -> str:
    error = f"  {r['error']}" if r.get("error") else ""
    return f"{iso(r.get('ts'))}  {str(r.get('id', ''))[:16]}  {r.get('kind')}  {_what(r)}  {r.get('status')}" \
           f"  {_duration(r)}{error}"


@click.group()
def activity() -> None:
    """The activity log: tool calls, policy decisions and server state changes."""


@activity.command("list")
@_filters
@click.option("-n", "--limit", default=50, show_default=True, help="Records to show (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_cmd(env: Env, /, limit: int, as_json: bool, **filters: Any) -> None:
    """List recent records, newest first."""
    body = Api(env).get("/activity", limit=limit, **_params(**filters))
    records = body["records"]
    if as_json:
        print_json(records)
    else:
        Console(width=200).print(_table(records))


@activity.command("show")
@click.argument("record_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_cmd(env: Env, record_id: str, as_json: bool) -> None:
    """Show one record in full (an id prefix of 8+ characters works), with the calls made from it."""
    record = Api(env).get(f"/activity/{record_id}")
    if as_json:
        print_json(record)
        return
    for key, value in record.items():
        if key == "children":
            continue
        if key == "ts":
            value = iso(value)
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        click.echo(f"{key:>12}: {'' if value is None else value}")
    for child in record.get("children", []):
        click.echo("       child: " + _line(child))


@activity.command("watch")
@_filters
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--max-seconds", type=float, default=None, hidden=True, help="Stop after this long.")
@click.pass_obj
def watch_cmd(env: Env, /, as_json: bool, max_seconds: float | None, **filters: Any) -> None:
    """Print new records as they happen (Ctrl-C stops)."""
    api = Api(env)
    params = _params(**filters)
    latest = api.get("/activity", limit=1, **params)
    after = latest["records"][0]["seq"] if latest["records"] else 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            body = api.get("/activity", after=after, limit=500, **params)
            for record in body["records"]:
                click.echo(json.dumps(record, ensure_ascii=False) if as_json else _line(record))
            if body["records"]:
                after = body["records"][-1]["seq"]
            else:
                time.sleep(WATCH_POLL_SECONDS)
    except KeyboardInterrupt:
        pass


@activity.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout).")
@click.option("--limit", type=int, default=None, help="Records at most (default: all, up to 1,000,000).")
@click.pass_obj
def export_cmd(env: Env, /, fmt: str, output: str | None, limit: int | None, **filters: Any) -> None:
    """Export records, oldest first, as JSON lines or CSV."""
    api = Api(env)
    params = {"format": fmt, **_params(**filters), **({"limit": limit} if limit else {})}
    out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below when a file
    try:
        with api.client.stream("GET", api.base + "/activity/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                api.request("GET", "/activity/export", params=params)  # reports the error and exits
            for chunk in response.iter_bytes():
                out.write(chunk)
    except httpx2.TransportError:
        fail("mcpproxy stopped answering during the export", EXIT_UNREACHABLE)
    finally:
        if output:
            out.close()
        else:
            out.flush()
