"""``mcpproxy code``: run programs that call tools against the running gateway, from a terminal.

    mcpproxy code run FILE [--language L] [--input JSON] [--timeout-ms N] [--allow TOOL]... [--json]
    mcpproxy code repl [--language L]

Both talk to the gateway's ``/mcp/code`` endpoint as an MCP client (with the API key from the
data dir), so a program runs exactly as it would for a model: same engines, same limits,
same pipeline for every tool call, same activity records. While it runs, its output lines
and tool calls arrive as progress notifications and are shown at once (program output on
stdout, tool calls on stderr); then the value is printed as JSON. ``--json`` prints only the
whole result (value, output, error, tool calls) as JSON.

``repl`` reads a program per entry (an entry ends with an empty line, or is one line) and
runs it; each entry is a program of its own (no variables carry over) and reads the previous
entry's value as ``input``. ``:lang NAME`` switches language, ``:search WORDS`` finds tools,
``:quit`` (or end of input) leaves.

Exit codes: 0 ok, 1 the program failed, 3 the gateway is not reachable, 5 bad input.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import click
import httpx2
from mcp.shared.exceptions import MCPError

from mcpproxy.cli.common import API_KEY_FILE, EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, Env, fail

EXTENSIONS = {".py": "python", ".ts": "typescript", ".js": "typescript", ".mjs": "typescript"}
CALL_TIMEOUT = 600.0


def _endpoint(env: Env) -> tuple[str, str]:
    settings = env.settings()
    host = settings.host
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - a wildcard listener is reached on loopback
        host = "127.0.0.1"
    key_file = settings.data_path / API_KEY_FILE
    key = key_file.read_text(encoding="utf-8").strip() if key_file.exists() else ""
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/mcp/code", key


def _show_progress(message: str) -> None:
    stream, _, text = message.partition(": ")
    if stream == "stdout":
        click.echo(text)
    elif stream == "stderr":
        click.echo(text, err=True)
    else:
        click.secho(f"· {message}", err=True, dim=True)


async def _run(url: str, key: str, arguments: dict[str, Any], *, live: bool) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message:
            _show_progress(message)

    headers = {"X-API-Key": key} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=CALL_TIMEOUT)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(
            "code_execution",
            arguments,
            read_timeout_seconds=CALL_TIMEOUT,
            progress_callback=on_progress if live else None,
        )
    if isinstance(result.structured_content, dict) and "ok" in result.structured_content:
        return dict(result.structured_content)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    return {"ok": False, "refused": True, "message": text}


def _call(url: str, key: str, arguments: dict[str, Any], *, live: bool) -> dict[str, Any]:
    try:
        return anyio.run(functools.partial(_run, url, key, arguments, live=live))
    except (OSError, httpx2.HTTPError, MCPError, ExceptionGroup) as exc:  # groups: the SDK's task groups
        text = str(exc)
        for inner in getattr(exc, "exceptions", ()) or ():
            text += f" {inner}"
        if "connect" in text.lower() or "ConnectError" in repr(exc):
            fail(f"mcpproxy is not reachable at {url}", EXIT_UNREACHABLE, "start it with `mcpproxy serve`")
        fail(f"the call failed: {text.strip()}", EXIT_FAILED)


def _report(result: dict[str, Any], *, live: bool) -> int:
    """Print the end of a run; the exit code."""
    if result.get("refused"):
        click.echo(result.get("message", "refused"), err=True)
        return EXIT_INVALID
    if not live:
        if result.get("stdout"):
            click.echo(result["stdout"], nl=False)
        if result.get("stderr"):
            click.echo(result["stderr"], nl=False, err=True)
    error = result.get("error")
    if result.get("ok"):
        click.echo(json.dumps(result.get("value"), indent=2, ensure_ascii=False))
        return EXIT_OK
    if isinstance(error, dict):
        where = f" (line {error['line']})" if error.get("line") else ""
        click.echo(f"error: {error.get('type')}: {error.get('message')}{where}", err=True)
    return EXIT_FAILED


@click.group()
def code() -> None:
    """Run programs that call tools (code mode) against the running gateway."""


@code.command("run")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--language", "-l", help="python, python-full or typescript (default: from the file's extension).")
@click.option("--input", "input_json", metavar="JSON", help="A JSON value the program reads as `input`.")
@click.option("--timeout-ms", type=int, help="Wall time of the program.")
@click.option("--allow", "allowed", multiple=True, metavar="TOOL", help="Only these tools ('server:tool', 'server:*').")
@click.option("--max-tool-calls", type=int, help="Tool calls the program may make.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON (no live output).")
@click.pass_obj
def run_cmd(
    env: Env,
    file: str,
    language: str | None,
    input_json: str | None,
    timeout_ms: int | None,
    allowed: tuple[str, ...],
    max_tool_calls: int | None,
    as_json: bool,
) -> None:
    """Run the program in FILE (``-`` reads it from stdin)."""
    try:
        source = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {file}: {exc}", EXIT_INVALID)
    arguments: dict[str, Any] = {"code": source, "language": language or EXTENSIONS.get(Path(file).suffix, "python")}
    if input_json is not None:
        try:
            arguments["input"] = json.loads(input_json)
        except ValueError as exc:
            fail(f"--input is not JSON: {exc}", EXIT_INVALID)
    if timeout_ms is not None:
        arguments["timeout_ms"] = timeout_ms
    if allowed:
        arguments["allowed_tools"] = list(allowed)
    if max_tool_calls is not None:
        arguments["max_tool_calls"] = max_tool_calls
    url, key = _endpoint(env)
    result = _call(url, key, arguments, live=not as_json)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        sys.exit(EXIT_OK if result.get("ok") else EXIT_FAILED)
    sys.exit(_report(result, live=True))


def _entries(prompt: bool) -> Any:
    """Programs typed at the prompt: one line, or several ended by an empty line."""
    lines: list[str] = []
    while True:
        if prompt:
            click.echo("... " if lines else ">>> ", nl=False, err=True)
        raw = sys.stdin.readline()
        if not raw:
            if lines:
                yield "\n".join(lines)
            return
        line = raw.rstrip("\n")
        if not lines and line.startswith(":"):
            yield line
            continue
        if line.strip() == "":
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        lines.append(line)
        opens_block = line.rstrip().endswith((":", "{", "(", "[", ",", "\\"))
        if len(lines) == 1 and not opens_block:
            yield line
            lines = []


@code.command("repl")
@click.option("--language", "-l", default="python", show_default=True, help="python, python-full or typescript.")
@click.pass_obj
def repl_cmd(env: Env, language: str) -> None:
    """An interactive session: each entry runs as a program with call_tool, search_tools, tools.*..."""
    url, key = _endpoint(env)
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(f"mcpproxy code repl ({language}); an empty line ends a block; :lang, :search, :quit", err=True)
    last: Any = None
    failures = 0
    for entry in _entries(interactive):
        if entry.startswith(":"):
            command, _, rest = entry[1:].partition(" ")
            if command in ("q", "quit", "exit"):
                break
            if command == "lang" and rest.strip():
                language = rest.strip()
                continue
            if command == "search" and rest.strip():
                query = json.dumps(rest.strip())
                typescript = language == "typescript"
                entry = f"return await searchTools({query}, 10)" if typescript else f"search_tools({query}, 10)"
            else:
                click.echo(f"unknown command {entry!r} (:lang NAME, :search WORDS, :quit)", err=True)
                continue
        result = _call(url, key, {"code": entry, "language": language, "input": last}, live=True)
        if _report(result, live=True) == EXIT_OK:
            last = result.get("value")
        else:
            failures += 1
    sys.exit(EXIT_OK if failures == 0 or interactive else EXIT_FAILED)
