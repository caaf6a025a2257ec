"""``mcpproxy secrets``: the secrets that ``${keyring:NAME}`` references in server configs name.

    mcpproxy secrets set NAME [--value VALUE]   (the value from standard input, or a hidden prompt)
    mcpproxy secrets get NAME [--reveal]
    mcpproxy secrets list [--json]
    mcpproxy secrets delete NAME

The commands work on the secret store of the data dir directly (the OS keyring, or the
encrypted file on a machine without one; ``list`` says which and why), so they run whether or
not the gateway does. Values are shown masked unless ``get --reveal`` asks for one; ``--value``
puts the value in the shell history and the process list, so standard input is the default.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from mcpproxy.cli.common import EXIT_NOT_FOUND, EXIT_USAGE, Env, fail, fail_proxy, print_json
from mcpproxy.errors import ProxyError
from mcpproxy.filters.secrets import mask
from mcpproxy.secrets.store import SecretStore


def _data_dir(env: Env) -> Path:
    try:
        return env.settings().data_path
    except ProxyError as exc:
        fail_proxy(exc)


def _store(env: Env) -> SecretStore:
    store = SecretStore(_data_dir(env))
    try:
        store.choice  # noqa: B018 - choose the backend now, so that a failure is reported as such
    except ProxyError as exc:
        fail_proxy(exc)
    return store


def _not_found(store: SecretStore, name: str) -> NoReturn:
    fail(f"no secret named {name} in the {store.backend_label}", EXIT_NOT_FOUND, "`mcpproxy secrets list` shows them")


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
        return value
    value = sys.stdin.read()
    # One trailing newline is how `echo` and files end; it is not part of the secret.
    return value.removesuffix("\n").removesuffix("\r")


@click.group()
def secrets() -> None:
    """Store secrets for ${keyring:NAME} references in server configs."""


@secrets.command("set")
@click.argument("name")
@click.option(
    "--value",
    metavar="VALUE",
    help="The value (visible in shell history and the process list: prefer standard input).",
)
@click.pass_obj
def set_cmd(env: Env, name: str, value: str | None) -> None:
    """Store secret NAME (its value from standard input, or a hidden prompt)."""
    store = _store(env)
    if value is None:
        value = _read_value(name)
    if not value:
        fail(f"the value of secret {name} is empty", EXIT_USAGE, "pass it on standard input or with --value")
    try:
        store.set(name, value)
    except ProxyError as exc:
        fail_proxy(exc)
    click.echo(f"stored {name} in the {store.backend_label}")
    click.echo(
        f"hint: reference it as ${{keyring:{name}}} in a server's env, headers, args or url; "
        "connected servers use a new value when they reconnect (`mcpproxy upstream restart SERVER`)",
        err=True,
    )


@secrets.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print the value itself (otherwise it is masked).")
@click.pass_obj
def get_cmd(env: Env, name: str, reveal: bool) -> None:
    """Show secret NAME, masked unless --reveal."""
    store = _store(env)
    try:
        value = store.get(name)
    except ProxyError as exc:
        fail_proxy(exc)
    if value is None:
        _not_found(store, name)
    click.echo(value if reveal else mask(value))


@secrets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_cmd(env: Env, as_json: bool) -> None:
    """List the stored secrets (names and masked values) and the backend in use."""
    store = _store(env)
    try:
        items = [(name, store.get(name)) for name in store.list()]
    except ProxyError as exc:
        fail_proxy(exc)
    rows = [{"name": name, "value": mask(value)} for name, value in items if value is not None]
    if as_json:
        print_json({"backend": store.backend, "store": store.backend_label, "reason": store.reason, "secrets": rows})
        return
    click.echo(f"backend: {store.backend_label} ({store.reason})")
    if not rows:
        click.echo("no secrets stored; add one with `mcpproxy secrets set NAME`")
    width = max((len(r["name"]) for r in rows), default=0)
    for row in rows:
        click.echo(f"{row['name']:<{width}}  {row['value']}")


@secrets.command("delete")
@click.argument("name")
@click.pass_obj
def delete_cmd(env: Env, name: str) -> None:
    """Remove secret NAME."""
    store = _store(env)
    try:
        deleted = store.delete(name)
    except ProxyError as exc:
        fail_proxy(exc)
    if not deleted:
        _not_found(store, name)
    click.echo(f"deleted {name}")
