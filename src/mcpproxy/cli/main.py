"""The ``mcpproxy`` command: ``serve`` runs the gateway; every other command drives a
running gateway through its REST API (see ``common.py`` for exit codes)."""

from __future__ import annotations

import click

from mcpproxy import __version__
from mcpproxy.cli.common import make_env
from mcpproxy.cli.importer import import_cmd
from mcpproxy.cli.serve import serve
from mcpproxy.cli.status import status
from mcpproxy.cli.tools import tools
from mcpproxy.cli.upstream import upstream


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcpproxy")
@click.option(
    "--config",
    "config",
    envvar="MCPPROXY_CONFIG",
    metavar="FILE",
    help="Config file (default: DATA_DIR/mcp_config.json).",
)
@click.option(
    "--data-dir", "data_dir", envvar="MCPPROXY_DATA_DIR", metavar="DIR", help="Data directory (default: ~/.mcpproxy)."
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, data_dir: str | None) -> None:
    """mcpproxy: one MCP endpoint in front of many MCP servers."""
    ctx.obj = make_env(config, data_dir)


cli.add_command(serve)
cli.add_command(status)
cli.add_command(upstream)
cli.add_command(tools)
cli.add_command(import_cmd)


def _register_optional() -> None:
    try:
        from mcpproxy.cli.security import security
    except ImportError:  # pragma: no cover - the scanner ships with the package
        return
    cli.add_command(security)


_register_optional()


def main() -> None:
    cli(prog_name="mcpproxy")
