"""``mcpproxy doctor``: check everything a gateway needs, and say what to do about each problem.

Checks, in order: the config file (parses and validates), the data dir (exists, writable,
private), the database (opens read-only, passes ``PRAGMA quick_check``, a schema this mcpproxy
knows), the listen port (free, or held by a running mcpproxy), the running gateway's servers
(health and a suggested action each), the sandbox backends (which work here, and why not), and
the runtimes stdio servers use (each command found; the versions of Node and Python behind them).

Each finding is ``ok``, ``warn`` or ``error`` with a detail and, when not ok, an action. The exit
code is 1 when any finding is an error. ``docs/troubleshooting.md`` is keyed by the finding names.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import httpx2
from rich.console import Console
from rich.table import Table

from mcpproxy.cli.common import API_KEY_FILE, EXIT_FAILED, Env, print_json
from mcpproxy.errors import ProxyError
from mcpproxy.settings import Settings

DB_FILE_NAME = "mcpproxy.db"
VERSION_TIMEOUT = 5.0
"""Seconds a ``--version`` probe of a runtime may take."""
MIN_NODE = (18, 0)
MIN_PYTHON = (3, 10)
_NODE = {"node", "npx", "npm"}
_PYTHON = {"python", "python3", "uv", "uvx", "pipx"}
_STYLE = {"ok": "green", "warn": "yellow", "error": "red"}


@dataclass
class Finding:
    """One check's result.

    Attributes:
        check: What was checked (``config``, ``data_dir``, ``database``, ``port``, ``server:NAME``,
            ``sandbox:NAME``, ``runtime:NAME``).
        status: ``ok``, ``warn`` or ``error``.
        detail: What was found.
        action: What to do (``None`` when ok).
    """

    check: str
    status: str
    detail: str
    action: str | None = None


def check_config(env: Env) -> tuple[Finding, Settings | None]:
    if not env.config_path.exists():
        return Finding("config", "ok", f"{env.config_path} does not exist yet: built-in defaults apply"), env.settings()
    try:
        settings = env.settings()
    except ProxyError as exc:
        return Finding("config", "error", exc.message, exc.hint or "fix the file, then run doctor again"), None
    return Finding("config", "ok", f"{env.config_path}: {len(settings.servers)} servers"), settings


def check_data_dir(path: Path) -> list[Finding]:
    if not path.exists():
        return [Finding("data_dir", "ok", f"{path} does not exist yet: mcpproxy creates it on first start")]
    out: list[Finding] = []
    if not os.access(path, os.W_OK | os.X_OK):
        out.append(Finding("data_dir", "error", f"{path} is not writable", f"chown/chmod {path} for this user"))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        out.append(Finding("data_dir", "warn", f"{path} is readable by others (mode {mode:o})", f"chmod 700 {path}"))
    key = path / API_KEY_FILE
    if key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o077:
        out.append(Finding("data_dir", "warn", f"{key} is readable by others", f"chmod 600 {key}"))
    usage = shutil.disk_usage(path)
    if usage.free < 100 * 1024 * 1024:
        out.append(Finding("data_dir", "warn", f"only {usage.free // (1024 * 1024)} MiB free", "free disk space"))
    return out or [Finding("data_dir", "ok", f"{path} writable and private")]


def check_database(path: Path) -> Finding:
    from mcpproxy.store.migrations import SCHEMA_VERSION

    db = path / DB_FILE_NAME
    if not db.exists():
        return Finding("database", "ok", "no database yet: created on first start")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            check = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Finding("database", "error", f"{db}: {exc}", "restore it from a backup, or move it away and restart")
    if check != [("ok",)]:
        return Finding("database", "error", f"{db} fails its integrity check: {check[0][0]}",
                       "stop mcpproxy and restore the data dir from a backup (docs/operations.md)")
    if version > SCHEMA_VERSION:
        return Finding("database", "error", f"schema {version} is newer than this mcpproxy knows ({SCHEMA_VERSION})",
                       "upgrade mcpproxy, or use another data dir")
    return Finding("database", "ok", f"{db} intact, schema {version}")


def check_port(settings: Settings) -> tuple[Finding, bool]:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host  # noqa: S104 - compared
    try:
        with socket.create_connection((host, settings.port), timeout=1.0):
            taken = True
    except OSError:
        taken = False
    if not taken:
        return Finding("port", "ok", f"{settings.listen} is free (mcpproxy is not running)"), False
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/healthz"
    try:
        body = httpx2.get(url, timeout=3.0).json()
    except (httpx2.HTTPError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("status") == "ok" and "version" in body:
        return Finding("port", "ok", f"mcpproxy {body['version']} is running on {settings.listen}"), True
    return Finding("port", "error", f"{settings.listen} is taken by another program",
                   "stop it, or give mcpproxy another port with --listen HOST:PORT"), False


def check_servers(settings: Settings) -> list[Finding]:
    key_file = settings.data_path / API_KEY_FILE
    key = key_file.read_text(encoding="utf-8").strip() if key_file.exists() else ""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host  # noqa: S104 - compared
    base = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"
    try:
        status = httpx2.get(base + "/api/v1/status", headers={"X-API-Key": key}, timeout=10.0).json()
        ready = httpx2.get(base + "/readyz", timeout=10.0).json()
    except (httpx2.HTTPError, ValueError) as exc:
        return [Finding("gateway", "error", f"the running gateway did not answer: {exc}",
                        "see logs/main.log in the data dir")]
    out = [Finding("gateway", "ok" if ready.get("ready") else "warn",
                   "ready" if ready.get("ready") else f"not ready: {ready.get('checks')}",
                   None if ready.get("ready") else "wait for the servers to be attempted; see `mcpproxy status`")]
    for server in status.get("servers", []):
        health = server.get("health", "ok")
        level = "ok" if health in ("ok", "disabled") else "warn" if health in ("busy", "starting") else "error"
        detail = f"{server.get('state')}" + (f": {server['error']}" if server.get("error") else "")
        out.append(Finding(f"server:{server['name']}", level, detail, server.get("action")))
    return out


def check_sandboxes(settings: Settings | None) -> list[Finding]:
    """Sandboxes (``mcpproxy.sandbox.report``): each backend, what ``auto`` picks, each stdio server."""
    from mcpproxy.sandbox.report import sandbox_rows

    return [Finding(row.check, row.status, row.detail, row.action) for row in sandbox_rows(settings)]


def _version(argv: list[str]) -> tuple[int, ...] | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", done.stdout + done.stderr)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def check_runtimes(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    probed: dict[str, tuple[int, ...] | None] = {}
    for name, spec in sorted(settings.servers.items()):
        if spec.transport != "stdio" or not spec.command or not spec.enabled:
            continue
        command = spec.command
        found = command if os.path.isabs(command) and os.access(command, os.X_OK) else shutil.which(command)
        if found is None:
            out.append(Finding(f"runtime:{name}", "error", f"command not found: {command}",
                               f"install it, or put its absolute path in mcpServers.{name}.command"))
            continue
        base = Path(command).name
        if base in _NODE or base.startswith("node"):
            runtime, argv, minimum = "node", [shutil.which("node") or "node", "--version"], MIN_NODE
        elif base in _PYTHON or base.startswith("python"):
            target = found if base.startswith("python") else shutil.which("python3") or "python3"
            runtime, argv, minimum = f"python ({Path(target).name})", [target, "--version"], MIN_PYTHON
        else:
            out.append(Finding(f"runtime:{name}", "ok", f"{found}"))
            continue
        key = " ".join(argv)
        if key not in probed:
            probed[key] = _version(argv)
        version = probed[key]
        if version is None:
            out.append(Finding(f"runtime:{name}", "error", f"{runtime} does not report a version",
                               f"install {runtime.split()[0]}"))
        elif version[:2] < minimum:
            out.append(Finding(f"runtime:{name}", "warn",
                               f"{runtime} {'.'.join(map(str, version))} is older than {'.'.join(map(str, minimum))}",
                               f"upgrade {runtime.split()[0]}"))
        else:
            out.append(Finding(f"runtime:{name}", "ok", f"{found} ({runtime} {'.'.join(map(str, version))})"))
    return out


def run_checks(env: Env) -> list[Finding]:
    """Every check of ``doctor``, in order."""
    config, settings = check_config(env)
    findings = [config]
    data_dir = settings.data_path if settings is not None else env.data_dir
    findings += check_data_dir(data_dir)
    findings.append(check_database(data_dir))
    if settings is None:
        return findings
    port, running = check_port(settings)
    findings.append(port)
    if running:
        findings += check_servers(settings)
    findings += check_sandboxes(settings)
    findings += check_runtimes(settings)
    return findings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def doctor(env: Env, as_json: bool) -> None:
    """Check the config, data dir, database, port, servers, sandboxes and runtimes."""
    findings = run_checks(env)
    if as_json:
        print_json([asdict(f) for f in findings])
    else:
        table = Table(title="mcpproxy doctor")
        for column in ("check", "status", "detail", "action"):
            table.add_column(column, overflow="fold")
        for f in findings:
            style = _STYLE[f.status]
            table.add_row(f.check, f"[{style}]{f.status}[/]", f.detail, f.action or "")
        Console(width=160).print(table)
    if any(f.status == "error" for f in findings):
        raise SystemExit(EXIT_FAILED)


def summary(findings: list[Finding]) -> dict[str, Any]:
    """Counts of findings by status."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    return counts
