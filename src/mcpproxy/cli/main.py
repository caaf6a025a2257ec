"""The ``mcpproxy`` command: ``serve`` runs the gateway; every other command drives a
running gateway through its REST API (see ``common.py`` for exit codes)."""

from __future__ import annotations

import importlib

import click

from mcpproxy import __version__
from mcpproxy.cli.common import make_env
from mcpproxy.cli.importer import import_cmd
from mcpproxy.cli.status import status
from mcpproxy.cli.tools import tools
from mcpproxy.cli.upstream import upstream

# Commands whose module imports the gateway (and the MCP SDK, seconds on a busy machine): they
# are loaded only when run, so that client commands such as `status` start fast.
_LAZY_COMMANDS = {
    "serve": "mcpproxy.cli.serve",
    "security": "mcpproxy.cli.security",
    "token": "mcpproxy.cli.token",
    "secrets": "mcpproxy.cli.secrets",
    "activity": "mcpproxy.cli.activity",
    "doctor": "mcpproxy.cli.doctor",
    "code": "mcpproxy.cli.code",
}


class _Cli(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY_COMMANDS and cmd_name not in self.commands:
            command: click.Command = getattr(importlib.import_module(_LAZY_COMMANDS[cmd_name]), cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(status)
cli.add_command(upstream)
cli.add_command(tools)
cli.add_command(import_cmd)


def main() -> None:
    cli(prog_name="mcpproxy")
