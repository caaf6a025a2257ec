"""``mcpproxy token``: agent tokens that limit what an MCP client may search and call."""

from __future__ import annotations

import re

import click

from mcpproxy.cli.common import EXIT_USAGE, Api, Env, fail, print_json

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w``; ``never`` for no expiry."""
    if text == "never":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if not match:
        fail(f"--expires must look like 30m, 12h, 7d or never, got {text!r}", EXIT_USAGE)
    return float(match.group(1)) * _UNITS[match.group(2)]


@click.group()
def token() -> None:
    """Create, list and revoke agent tokens."""


@token.command("create")
@click.argument("name", required=False)
@click.option("--tier", type=click.Choice(["read", "write", "destructive"]), default="read", show_default=True,
              help="The highest tool tier the token may call.")
@click.option("--servers", help="Comma-separated servers the token may use (default: all).")
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 30m, 12h, 7d, never.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def create_cmd(env: Env, name: str | None, tier: str, servers: str | None, expires: str, as_json: bool) -> None:
    """Create a token; its secret is shown once (only its hash is kept)."""
    body = {
        "name": name,
        "tier": tier,
        "servers": [s.strip() for s in servers.split(",") if s.strip()] if servers else None,
        "expires_in": parse_duration(expires),
    }
    created = Api(env).post("/tokens", body)
    if as_json:
        print_json(created)
        return
    click.echo(created["token"])
    click.echo(f"token '{created['name']}' (tier {created['tier']}); it will not be shown again", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(env: Env, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    tokens = Api(env).get("/tokens")["tokens"]
    if as_json:
        print_json(tokens)
        return
    for t in tokens:
        scope = ",".join(t["servers"]) if t["servers"] else "all servers"
        state = "active" if t["active"] else "inactive"
        click.echo(f"{t['id']}  {t['name']}  tier={t['tier']}  {scope}  {state}")


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def revoke_cmd(env: Env, token_id: str) -> None:
    """Revoke a token by id or name."""
    Api(env).request("DELETE", f"/tokens/{token_id}")
    click.echo(f"revoked {token_id}")
