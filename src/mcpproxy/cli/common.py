"""What every CLI command shares: finding the config and data dir, talking to the daemon,
printing results, and the documented exit codes.

Exit codes (also in the README):

====  ===========================================================
0     success
1     the operation failed (a tool returned an error, an upstream failed)
2     usage error (bad flags or arguments)
3     the gateway is not running or not reachable
4     not found (unknown server or tool)
5     invalid input (bad config, bad tool arguments)
6     refused by policy (tier, quarantine)
====  ===========================================================
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx2

from mcpproxy.config.loader import load_settings, resolve_paths
from mcpproxy.errors import ProxyError
from mcpproxy.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_INVALID = 5
EXIT_DENIED = 6

API_KEY_FILE = "api_key"
"""The API key's file in the data dir; the same name as ``mcpproxy.endpoints.rest.API_KEY_FILE``, repeated
here so that client commands do not import the whole gateway (and the MCP SDK) just to find it."""

_STATUS_EXIT = {400: EXIT_INVALID, 401: EXIT_DENIED, 403: EXIT_DENIED, 404: EXIT_NOT_FOUND, 409: EXIT_INVALID}


@dataclass
class Env:
    """Resolved locations for one CLI invocation."""

    config_path: Path
    data_dir: Path
    overrides: dict[str, Any]

    def settings(self) -> Settings:
        return load_settings(self.config_path, overrides=self.overrides, env=os.environ)


def make_env(config: str | None, data_dir: str | None, listen: str | None = None) -> Env:
    config_path, data_path = resolve_paths(config, data_dir, os.environ)
    # Only an explicit --data-dir (or MCPPROXY_DATA_DIR) overrides the config file's data_dir.
    overrides: dict[str, Any] = {"data_dir": str(data_path)} if data_dir else {}
    if listen:
        overrides["listen"] = listen
    return Env(config_path=config_path, data_dir=data_path, overrides=overrides)


def fail(message: str, code: int, hint: str | None = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def fail_proxy(exc: ProxyError) -> NoReturn:
    fail(exc.message, _STATUS_EXIT.get(exc.http_status, EXIT_FAILED), exc.hint)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


class Api:
    """A small client of the daemon's REST API."""

    def __init__(self, env: Env) -> None:
        try:
            settings = env.settings()
        except ProxyError as exc:
            fail_proxy(exc)
        host = settings.host
        if host in ("0.0.0.0", "", "::"):  # noqa: S104 - a wildcard listener is reached on loopback
            host = "127.0.0.1"
        self.base = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/api/v1"
        key_file = settings.data_path / API_KEY_FILE
        key = key_file.read_text(encoding="utf-8").strip() if key_file.exists() else ""
        self.client = httpx2.Client(headers={"X-API-Key": key}, timeout=httpx2.Timeout(10.0, read=180.0))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, self.base + path, **kwargs)
        except httpx2.TransportError:
            fail(
                f"mcpproxy is not running at {self.base.removesuffix('/api/v1')}",
                EXIT_UNREACHABLE,
                "start it with `mcpproxy serve` (or pass --config/--data-dir of the running one)",
            )
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            message = body.get("message", response.text) if isinstance(body, dict) else response.text
            hint = body.get("hint") if isinstance(body, dict) else None
            fail(str(message), _STATUS_EXIT.get(response.status_code, EXIT_FAILED), hint)
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body or {})
