"""``mcpproxy import``: bring servers over from Claude Desktop, Claude Code and Cursor.

The servers found are merged into mcpproxy's config file through the state service (the
same validation and atomic write as every other change); a running gateway picks the edit
up by its hot reload.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import click

from mcpproxy.cli.common import EXIT_NOT_FOUND, Env, fail, fail_proxy, print_json
from mcpproxy.config.importer import known_client_configs, merge_servers, read_servers
from mcpproxy.errors import ProxyError
from mcpproxy.settings import ServerSpec
from mcpproxy.state import StateService


async def _no_op(old: dict[str, ServerSpec], new: dict[str, ServerSpec]) -> None:
    return None


@click.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "client",
    type=click.Choice(["claude-desktop", "claude-code", "cursor", "all"]),
    default="all",
    show_default=True,
    help="Which client's config files to read (without FILE).",
)
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), help="Also read this project's files.")
@click.option("--on-conflict", type=click.Choice(["skip", "rename", "replace"]), default="skip", show_default=True)
@click.option("--dry-run", is_flag=True, help="Show what would be imported; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_cmd(
    env: Env, file: Path | None, client: str, project: Path | None, on_conflict: str, dry_run: bool, as_json: bool
) -> None:
    """Import MCP servers from another client's config (or FILE)."""
    sources: list[tuple[str | None, Path]]
    if file is not None:
        sources = [(None, file)]
    else:
        sources = [
            (c.client, c.path)
            for c in known_client_configs(Path.home(), project)
            if c.exists and client in ("all", c.client)
        ]
        if not sources:
            fail(
                "no Claude Desktop, Claude Code or Cursor config file found",
                EXIT_NOT_FOUND,
                "pass the file to import as an argument",
            )
    try:
        settings = env.settings()
        incoming: dict[str, ServerSpec] = {}
        skipped: list[dict[str, object]] = []
        for who, path in sources:
            result = read_servers(path, who)
            for name, spec in result.servers.items():
                incoming.setdefault(name, spec)
            skipped += [{"file": str(path), "name": s.name, "reason": s.reason, "line": s.line} for s in result.skipped]
        merged, report = merge_servers(settings, incoming, on_conflict)  # type: ignore[arg-type]
        if not dry_run:
            service = StateService(settings, env.config_path, on_change=_no_op)
            anyio.run(_commit, service, merged.servers)
    except ProxyError as exc:
        fail_proxy(exc)
    summary = {
        "files": [str(p) for _, p in sources],
        "added": report.added,
        "replaced": report.replaced,
        "renamed": report.renamed,
        "skipped_existing": report.skipped,
        "unchanged": report.unchanged,
        "invalid": skipped,
        "dry_run": dry_run,
        "config": str(env.config_path),
    }
    if as_json:
        print_json(summary)
        return
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{verb} {len(report.added) + len(report.replaced) + len(report.renamed)} servers into {env.config_path}"
    )
    for key in ("added", "replaced", "renamed", "skipped_existing", "unchanged"):
        if summary[key]:
            click.echo(f"  {key}: {summary[key]}")
    for item in skipped:
        click.echo(f"  invalid: {item['name']} in {item['file']}: {item['reason']}")


async def _commit(service: StateService, servers: dict[str, ServerSpec]) -> None:
    for name, spec in servers.items():
        current = service.settings.servers.get(name)
        if current is None:
            await service.add(spec)
        elif current != spec:
            await service.update(name, {**spec.to_config(), "enabled": spec.enabled})
