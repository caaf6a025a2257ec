"""Import MCP server definitions from other clients' config files.

Claude Desktop, Claude Code and Cursor all keep servers under ``mcpServers`` (VS Code uses
``servers``); Claude Code's ``~/.claude.json`` also keeps per-project servers under
``projects.<path>.mcpServers``. :func:`read_servers` detects the shape, validates each
entry on its own and reports the ones it cannot use instead of failing, so one odd entry
never blocks an import. :func:`merge_servers` adds the result to existing settings under
an explicit conflict policy and reports what it did; nothing here writes files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from mcpproxy.config.jsonfile import JsonDocument, read_json_file
from mcpproxy.config.validation import format_key, validation_message
from mcpproxy.errors import ConfigError
from mcpproxy.settings import SERVER_NAME_RE, ServerSpec, Settings

ClientName = Literal["claude-desktop", "claude-code", "cursor"]
ConflictPolicy = Literal["skip", "rename", "replace"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """A place where a known client keeps MCP servers.

    Attributes:
        client: ``claude-desktop``, ``claude-code`` or ``cursor``.
        path: The file.
        exists: Whether the file exists now.
        scope: ``user`` (the user's own config) or ``project`` (inside a project).
    """

    client: ClientName
    path: Path
    exists: bool
    scope: Literal["user", "project"] = "user"


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A server entry that could not be imported.

    Attributes:
        name: The entry's name in the source file.
        key: Its key path in the file (``projects./repo.mcpServers.x``).
        reason: Why it was skipped.
        line: Its line in the file, when known.
    """

    name: str
    key: str
    reason: str
    line: int | None = None


class ReadResult(NamedTuple):
    """What :func:`read_servers` found: usable servers, and entries it skipped."""

    servers: dict[str, ServerSpec]
    skipped: list[SkippedEntry]


@dataclass
class MergeReport:
    """What :func:`merge_servers` did with each incoming server.

    Attributes:
        added: Names added as they were.
        replaced: Existing names whose definition was replaced.
        renamed: Incoming name -> the new name it was added under.
        skipped: Incoming names left out because the name was taken.
        unchanged: Incoming names already present with the same definition.
    """

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def known_client_configs(
    home: Path,
    project: Path | None = None,
    *,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ClientConfig]:
    """The config files of known clients on this machine, existing or not.

    Args:
        home: The user's home directory.
        project: A project directory whose ``.mcp.json`` and ``.cursor/mcp.json`` to list.
        platform: ``sys.platform`` value to assume (for tests); the current one by default.
        env: The environment, for ``APPDATA`` / ``XDG_CONFIG_HOME`` (``os.environ`` default).
    """
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform == "darwin":
        desktop_dir = home / "Library" / "Application Support" / "Claude"
    elif platform.startswith("win"):
        desktop_dir = Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
    else:
        desktop_dir = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"
    found: list[tuple[ClientName, Path, Literal["user", "project"]]] = [
        ("claude-desktop", desktop_dir / "claude_desktop_config.json", "user"),
        ("claude-code", home / ".claude.json", "user"),
        ("cursor", home / ".cursor" / "mcp.json", "user"),
    ]
    if project is not None:
        found += [
            ("claude-code", project / ".mcp.json", "project"),
            ("cursor", project / ".cursor" / "mcp.json", "project"),
        ]
    return [ClientConfig(client, path, path.is_file(), scope) for client, path, scope in found]


def read_servers(path: Path, client: str | None = None, *, project: Path | str | None = None) -> ReadResult:
    """Read the MCP servers defined in another client's config file.

    The shape is detected from the content: ``mcpServers`` (or ``servers``) at the top,
    plus, for Claude Code's ``~/.claude.json``, ``projects.<path>.mcpServers``. A project
    server whose name is already taken by a different definition is skipped with a reason.

    Args:
        path: The file to read.
        client: The client it belongs to; only used in messages.
        project: Only take project servers of this project path (all projects otherwise).

    Returns:
        The valid servers by name, and the skipped entries with reasons.

    Raises:
        ConfigError: The file is missing, unreadable or not a JSON object.
    """
    doc = read_json_file(path)
    if doc is None:
        label = f"{client} config" if client else "config file"
        raise ConfigError(f"{label} {path} does not exist")
    servers: dict[str, ServerSpec] = {}
    origin: dict[str, str] = {}
    skipped: list[SkippedEntry] = []
    for prefix, entries in _server_tables(doc.data, project):
        for name, entry in entries.items():
            loc = (*prefix, name)
            spec = _validate(doc, loc, name, entry, skipped)
            if spec is None:
                continue
            if name in servers:
                if servers[name].to_config() != spec.to_config():
                    skipped.append(
                        SkippedEntry(
                            name,
                            format_key(loc),
                            f"a different server named {name!r} is already defined at {origin[name]}",
                            doc.line_of(loc),
                        )
                    )
                continue
            servers[name] = spec
            origin[name] = format_key(loc)
    return ReadResult(servers, skipped)


def _server_tables(
    data: Mapping[str, Any], project: Path | str | None
) -> list[tuple[tuple[str, ...], Mapping[str, Any]]]:
    tables: list[tuple[tuple[str, ...], Mapping[str, Any]]] = []
    for key in ("mcpServers", "servers"):
        if isinstance(data.get(key), Mapping):
            tables.append(((key,), data[key]))
            break
    projects = data.get("projects")
    if isinstance(projects, Mapping):
        wanted = None if project is None else os.path.normpath(str(project))
        for project_path, settings in projects.items():
            if wanted is not None and os.path.normpath(project_path) != wanted:
                continue
            if isinstance(settings, Mapping) and isinstance(settings.get("mcpServers"), Mapping):
                tables.append((("projects", project_path, "mcpServers"), settings["mcpServers"]))
    return tables


def _validate(
    doc: JsonDocument, loc: tuple[str, ...], name: str, entry: Any, skipped: list[SkippedEntry]
) -> ServerSpec | None:
    key = format_key(loc)
    if not SERVER_NAME_RE.match(name) or "__" in name:
        reason = "the name is not usable as a tool prefix (letters, digits, '_', '-', '.'; no '__')"
        skipped.append(SkippedEntry(name, key, reason, doc.line_of(loc)))
        return None
    if not isinstance(entry, Mapping):
        skipped.append(SkippedEntry(name, key, "the entry is not a JSON object", doc.line_of(loc)))
        return None
    try:
        return ServerSpec.model_validate({**entry, "name": name})
    except ValidationError as exc:
        # pydantic's location is relative to the entry (the name was checked above).
        error = exc.errors()[0]
        inner = tuple(error["loc"])
        detail = validation_message(error)
        if inner:
            detail = f"{format_key(inner)}: {detail}"
        skipped.append(SkippedEntry(name, key, detail, doc.line_of((*loc, *inner))))
        return None


def merge_servers(
    existing: Settings, incoming: Mapping[str, ServerSpec], on_conflict: ConflictPolicy
) -> tuple[Settings, MergeReport]:
    """Add ``incoming`` servers to ``existing`` settings.

    A server already present with the same definition is left as it is, whatever the
    policy. Otherwise a taken name is handled by ``on_conflict``: ``skip`` keeps the
    existing server, ``replace`` takes the incoming one, ``rename`` adds the incoming one
    as ``name-2`` (``-3``, ...).

    Returns:
        The new settings (``existing`` is not modified) and a report.
    """
    servers = dict(existing.servers)
    report = MergeReport()
    for name, spec in incoming.items():
        current = servers.get(name)
        if current is None:
            servers[name] = spec
            report.added.append(name)
        elif current.to_config() == spec.to_config():
            report.unchanged.append(name)
        elif on_conflict == "replace":
            servers[name] = spec
            report.replaced.append(name)
        elif on_conflict == "rename":
            new_name = _free_name(name, servers, incoming)
            servers[new_name] = spec.model_copy(update={"name": new_name})
            report.renamed[name] = new_name
        else:
            report.skipped.append(name)
    return existing.with_servers(servers), report


def _free_name(name: str, *taken: Mapping[str, Any]) -> str:
    counter = 2
    while True:
        suffix = f"-{counter}"
        candidate = name[: 64 - len(suffix)] + suffix
        if not any(candidate in names for names in taken):
            return candidate
        counter += 1
