"""``mcpproxy security``: scan MCP tool definitions for poisoning, offline.

``security scan --tools-file FILE`` reads tools (JSON array, ``tools/list`` result, server
wrappers or JSONL; see ``mcpproxy.policy.scanner.loader``), scans them with the deterministic
scanner, and prints a table or, with ``--json``, one JSON object per tool in input order. The
exit status makes it usable in CI: 0 when every tool's risk is at or below the threshold, 1
when some tool is above it, 2 when the input cannot be read.

Scanning a live server's tools goes through the same two functions: fetch the tools, call
``scan_tools``, then ``render_reports`` for the output and ``exit_code`` for the status.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mcpproxy.cli.common import Api, print_json
from mcpproxy.errors import ConfigError
from mcpproxy.policy.scanner import DEFAULT_POLICY, Finding, Severity, ToolReport, Verdict, load_tools_file, scan_tools

EXIT_OK = 0
EXIT_RISKY = 1
EXIT_UNREADABLE = 5  # the CLI's documented code for invalid input

_VERDICT_STYLE = {Verdict.ALLOW: "green", Verdict.WARN: "yellow", Verdict.QUARANTINE: "bold red"}
_SEVERITY_STYLE = {"info": "dim", "low": "cyan", "medium": "yellow", "high": "red", "critical": "bold red"}


def exit_code(reports: Sequence[ToolReport], threshold: int) -> int:
    """1 when any tool's risk is above ``threshold``, else 0."""
    return EXIT_RISKY if any(r.risk > threshold for r in reports) else EXIT_OK


def render_reports(
    reports: Sequence[ToolReport], as_json: bool, *, color: bool = False, width: int | None = None
) -> str:
    """Format reports for the terminal.

    Args:
        reports: Scan reports, in the order to show them.
        as_json: A JSON array of ``{server, name, risk, verdict, findings}`` objects instead
            of a table.
        color: Emit ANSI colours (only for a terminal).
        width: Table width; the terminal's width by default.

    Returns:
        The text to print, without a trailing newline.
    """
    if as_json:
        return json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False)
    out = io.StringIO()
    console = Console(
        file=out,
        width=width or shutil.get_terminal_size((120, 24)).columns,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )
    table = Table(show_lines=True, expand=False)
    table.add_column("Server", no_wrap=True)
    table.add_column("Tool", overflow="fold")
    table.add_column("Risk", justify="right", no_wrap=True)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Findings", overflow="fold")
    for report in reports:
        findings = Text()
        for i, f in enumerate(report.findings):
            if i:
                findings.append("\n")
            findings.append(f"{f.severity.value:<8} ", style=_SEVERITY_STYLE[f.severity.value])
            findings.append(f"{f.rule} ", style="bold")
            findings.append(f"@ {f.location}: ", style="dim")
            findings.append(f.evidence)
        table.add_row(
            report.server or "-",
            report.name or "(no name)",
            str(report.risk),
            Text(report.verdict.value, style=_VERDICT_STYLE[report.verdict]),
            findings if report.findings else Text("-", style="dim"),
        )
    console.print(table)
    counts = {v: sum(r.verdict is v for r in reports) for v in Verdict}
    console.print(
        f"{len(reports)} tool(s): {counts[Verdict.ALLOW]} allow, {counts[Verdict.WARN]} warn, "
        f"{counts[Verdict.QUARANTINE]} quarantine"
    )
    return out.getvalue().rstrip("\n")


@click.group(name="security")
def security() -> None:
    """Check MCP tools for poisoning, shadowing and malicious capabilities."""


@security.command("scan")
@click.argument("server", required=False)
@click.option(
    "--tools-file",
    "tools_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tools to scan: a JSON array, a tools/list result, server wrappers, or JSONL.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per tool, in input order.")
@click.option(
    "--threshold",
    type=click.IntRange(0, 100),
    default=DEFAULT_POLICY.quarantine_above,
    show_default=True,
    help="Exit with status 1 when any tool's risk is above this.",
)
@click.pass_context
def scan(ctx: click.Context, server: str | None, tools_file: Path | None, as_json: bool, threshold: int) -> None:
    """Scan a configured SERVER's tools (through the running gateway) or a file of tool definitions.

    Exit 1 if any tool is riskier than the threshold.
    """
    if (server is None) == (tools_file is None):
        raise click.UsageError("give either SERVER or --tools-file FILE")
    if server is not None:

        body = Api(ctx.obj).get(f"/security/scan/{server}")
        reports = [_report(item) for item in body["reports"]]
    else:
        assert tools_file is not None
        try:
            loaded = load_tools_file(tools_file)
        except ConfigError as exc:
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(EXIT_UNREADABLE)
        reports = scan_tools(loaded)
    click.echo(render_reports(reports, as_json, color=not as_json and sys.stdout.isatty()))
    sys.exit(exit_code(reports, threshold))


def _report(item: dict[str, Any]) -> ToolReport:
    findings = tuple(
        Finding(rule=f["rule"], severity=Severity(f["severity"]), location=f["location"], evidence=f["evidence"])
        for f in item.get("findings", [])
    )
    return ToolReport(item.get("server"), item["name"], int(item["risk"]), Verdict(item["verdict"]), findings)


@security.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_held(ctx: click.Context, as_json: bool) -> None:
    """Servers in quarantine and tools held for review (new, changed, flagged, blocked)."""

    body = Api(ctx.obj).get("/security")
    if as_json:
        print_json(body)
        return
    for item in body["quarantined_servers"]:
        click.echo(f"server {item['server']}: {item['status']} ({item['reason'] or 'no reason given'})")
    for pin in body["held_tools"]:
        click.echo(f"tool {pin['name']}: {pin['status']} risk {pin['risk']} ({pin['reason'] or ''})")
    if not body["quarantined_servers"] and not body["held_tools"]:
        click.echo("nothing is held")
