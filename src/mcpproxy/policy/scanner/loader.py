"""Read tool definitions from a file, in the layouts people actually have lying around.

Accepted layouts (the first that fits wins):

* a JSON array of MCP tools: ``[{"name": ..., "description": ..., "inputSchema": ...}, ...]``;
* a ``tools/list`` result ``{"tools": [...]}`` (optionally with ``"server"``), or a whole
  JSON-RPC response ``{"result": {"tools": [...]}}``;
* server wrappers: ``{"servers": {"github": {"tools": [...]}}}``, ``{"servers": [{"name":
  "github", "tools": [...]}]}``, ``{"github": [...], "slack": {"tools": [...]}}``, or an array
  of ``{"server": "github", "tools": [...]}`` objects;
* JSONL: one tool (or one wrapper) per line; blank lines are skipped.

A tool object that carries a string ``"server"`` field (as exported catalogues do) keeps it.
Malformed input raises ``ConfigError`` naming the file and the offending line numbers, all of
them (up to a few), so a user can fix the file in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from mcpproxy.errors import ConfigError

MAX_REPORTED = 5


class LoadedTool(NamedTuple):
    """A tool definition and the server it came from (None when the file does not say)."""

    server: str | None
    tool: dict[str, Any]


class _Bad(ValueError):
    """One entry of the file is not a tool or a wrapper of tools."""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _wrapped(server: str | None, tools: Any) -> Iterator[LoadedTool]:
    if not isinstance(tools, list):
        raise _Bad(f"'tools' of server {server!r} is not a list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _Bad(f"tool #{i} of server {server!r} is not an object")
        yield LoadedTool(_str(tool.get("server")) or server, tool)


def _entry(item: Any, server: str | None = None) -> Iterator[LoadedTool]:
    """One array element or JSONL line: a tool or a server wrapper."""
    if not isinstance(item, dict):
        raise _Bad(f"expected a JSON object, got {type(item).__name__}")
    if "tools" in item and isinstance(item["tools"], list | dict):
        tools = item["tools"]
        name = _str(item.get("server")) or _str(item.get("name")) or server
        if isinstance(tools, dict):  # {"tools": {"<key>": {"tools": [...]}}}
            for key, inner in tools.items():
                yield from _entry(inner if isinstance(inner, dict) else {"tools": inner}, name or str(key))
        else:
            yield from _wrapped(name, tools)
    else:
        yield LoadedTool(_str(item.get("server")) or server, item)


def load_tools(data: Any) -> list[LoadedTool]:
    """Tools from already-parsed JSON in any of the accepted layouts.

    Raises:
        ValueError: The data fits none of the layouts.
    """
    if isinstance(data, list):
        return [t for item in data for t in _entry(item)]
    if not isinstance(data, dict):
        raise _Bad(f"expected a JSON array or object, got {type(data).__name__}")
    if isinstance(data.get("result"), dict) and "tools" in data["result"]:
        return list(_entry(data["result"], _str(data.get("server"))))
    if "tools" in data:
        return list(_entry(data))
    if "servers" in data:
        servers = data["servers"]
        if isinstance(servers, list):
            return [t for item in servers for t in _entry(item)]
        if isinstance(servers, dict):
            return [t for name, v in servers.items() for t in _entry(_as_wrapper(str(name), v), str(name))]
        raise _Bad("'servers' is neither an array nor an object")
    if "name" in data and ("inputSchema" in data or "description" in data):
        return list(_entry(data))
    if data and all(isinstance(v, list | dict) for v in data.values()):
        return [t for name, v in data.items() for t in _entry(_as_wrapper(str(name), v), str(name))]
    raise _Bad("no tools found: expected an array of tools, {'tools': [...]}, or server wrappers")


def _as_wrapper(server: str, value: Any) -> Any:
    """A server's entry as ``{"tools": [...]}``; a server config without tools is an error."""
    if isinstance(value, list):
        return {"tools": value}
    if isinstance(value, dict) and "tools" not in value:
        raise _Bad(f"server {server!r} has no 'tools' (is this a server config rather than a tools file?)")
    return value


def _looks_like_jsonl(text: str) -> bool:
    """Several non-blank lines, at least one of which is a JSON object on its own."""
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    if len(lines) < 2:
        return False
    for line in lines:
        try:
            if isinstance(json.loads(line), dict):
                return True
        except json.JSONDecodeError:
            continue
    return False


def _jsonl(path: Path, text: str) -> list[LoadedTool]:
    tools: list[LoadedTool] = []
    bad: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tools.extend(_entry(json.loads(line)))
        except json.JSONDecodeError as exc:
            bad.append((lineno, f"{exc.msg} (column {exc.colno})"))
        except _Bad as exc:
            bad.append((lineno, str(exc)))
    if bad:
        shown = "; ".join(f"line {n}: {msg}" for n, msg in bad[:MAX_REPORTED])
        more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
        raise ConfigError(
            f"{path}: {len(bad)} malformed line(s): {shown}{more}",
            key=str(path),
            line=bad[0][0],
            hint="each line must be one JSON object: a tool, or {'server': ..., 'tools': [...]}",
        )
    return tools


def load_tools_file(path: str | Path) -> list[LoadedTool]:
    """Read a tools file (JSON or JSONL, layouts above) into ``(server, tool)`` pairs.

    Raises:
        ConfigError: The file cannot be read, is not valid JSON/JSONL, or holds no tools
            in a known layout; the message names the file and the offending line(s).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read tools file {path}: {exc}", key=str(path)) from exc
    if not text.strip():
        return []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl(path, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if _looks_like_jsonl(text):
            return _jsonl(path, text)
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            key=str(path),
            line=exc.lineno,
        ) from exc
    try:
        return load_tools(data)
    except _Bad as exc:
        raise ConfigError(f"{path}: {exc}", key=str(path)) from exc
