"""The state service: the one owner of server definitions.

Every change to the set of servers, whoever asks for it (CLI and REST through the API, the
model through ``upstream_servers``, a human editing the config file), goes through this
service, in this order, under one lock:

1. validate the new definition (``ServerSpec``);
2. write the config file atomically (only the changed ``mcpServers`` entries are
   re-rendered, keeping the keys other clients add; other entries keep their exact text);
3. tell the file watcher to expect that content, so our own write is not "an edit";
4. apply the change to the running pool (connect, reconnect, disconnect) and the index.

A file edit skips steps 2-3: the watcher hands the parsed settings to ``apply_file``,
which diffs them against the running definitions and applies only what changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from mcpproxy.config.writer import render_config, write_config_atomic_async
from mcpproxy.errors import ConfigError, Conflict, UnknownServer, quoted, unknown_keys
from mcpproxy.settings import SERVER_KEYS, ServerSpec, Settings

logger = logging.getLogger(__name__)

ServersChanged = Callable[[dict[str, ServerSpec], dict[str, ServerSpec]], Awaitable[None]]
"""``(old, new)`` server maps; the gateway applies the difference to pool and index."""


def spec_from_entry(name: str, entry: Mapping[str, Any]) -> ServerSpec:
    """Validate one server entry, with errors naming the key."""
    try:
        return ServerSpec.model_validate({**entry, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"] if p != "name" or len(first["loc"]) == 1)
        key = f"mcpServers.{name}" + (f".{loc}" if loc else "")
        raise ConfigError(f"invalid server '{name}' at {key}: {first['msg']}", key=key) from exc


def refuse_unknown_keys(name: str, entry: Mapping[str, Any]) -> None:
    """Refuse an entry sent to the API that holds a key mcpproxy does not know.

    A config file may carry other clients' keys: they are kept as written, never rejected. A
    request to the API is an instruction to mcpproxy alone, and a key it does not know (a typo
    such as ``call_timout``) would be dropped unseen while the change went ahead.
    """
    found = unknown_keys(entry, SERVER_KEYS)
    if found is not None:
        keys, hint = found
        raise ConfigError(
            f"unknown key{'s' if len(keys) > 1 else ''} {quoted(keys)} for server '{name}'; nothing was changed",
            key=f"mcpServers.{name}.{keys[0]}",
            hint=hint,
        )


class StateService:
    """Owns the server definitions and persists every change.

    Args:
        settings: The running settings.
        config_path: The config file, or ``None`` for a gateway that does not persist.
        on_change: Applies a change of server definitions to the running gateway.
        expect_write: Tells the file watcher which bytes we are about to write.
    """

    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        *,
        on_change: ServersChanged,
        expect_write: Callable[[bytes], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self._on_change = on_change
        self._expect_write = expect_write
        self._lock = anyio.Lock()

    @property
    def servers(self) -> dict[str, ServerSpec]:
        return dict(self.settings.servers)

    def get(self, name: str) -> ServerSpec:
        spec = self.settings.servers.get(name)
        if spec is None:
            raise UnknownServer(
                f"no server named '{name}'",
                hint="`mcpproxy upstream list` shows the configured servers",
                data={"server": name},
            )
        return spec

    async def add(self, spec: ServerSpec) -> ServerSpec:
        async with self._lock:
            if spec.name in self.settings.servers:
                raise Conflict(
                    f"a server named '{spec.name}' already exists",
                    hint="pick another name, or update/remove the existing one",
                    data={"server": spec.name},
                )
            await self._commit({**self.settings.servers, spec.name: spec}, changed={spec.name})
            return spec

    async def remove(self, name: str) -> None:
        async with self._lock:
            self.get(name)
            servers = {k: v for k, v in self.settings.servers.items() if k != name}
            await self._commit(servers, changed={name})

    async def update(self, name: str, changes: Mapping[str, Any]) -> ServerSpec:
        """Merge ``changes`` (config-file keys) into the entry and apply it."""
        async with self._lock:
            current = self.get(name)
            if "name" in changes and changes["name"] != name:
                raise ConfigError("a server cannot be renamed; remove it and add it under the new name", key="name")
            entry = {**current.to_config(), **{k: v for k, v in changes.items() if k != "name"}}
            if "cwd" in changes:
                entry.pop("working_dir", None)
            if "disabled" in changes:
                entry.pop("enabled", None)
            spec = spec_from_entry(name, entry)
            await self._commit({**self.settings.servers, name: spec}, changed={name})
            return spec

    async def set_enabled(self, name: str, enabled: bool) -> ServerSpec:
        async with self._lock:
            spec = self.get(name).model_copy(update={"enabled": enabled})
            await self._commit({**self.settings.servers, name: spec}, changed={name})
            return spec

    async def apply_file(self, settings: Settings) -> None:
        """Adopt settings read from an edited config file (already validated)."""
        async with self._lock:
            old = dict(self.settings.servers)
            self.settings = self.settings.model_copy(update={"servers": dict(settings.servers)})
            await self._on_change(old, dict(settings.servers))

    async def _commit(self, servers: dict[str, ServerSpec], *, changed: set[str]) -> None:
        old = dict(self.settings.servers)
        if self.config_path is not None:
            await self._write(servers, changed)
        self.settings = self.settings.model_copy(update={"servers": servers})
        await self._on_change(old, servers)

    async def _write(self, servers: dict[str, ServerSpec], changed: set[str]) -> None:
        assert self.config_path is not None
        raw: dict[str, Any] = {}
        if self.config_path.exists():
            try:
                loaded = json.loads(await anyio.Path(self.config_path).read_text(encoding="utf-8") or "{}")
                raw = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                logger.warning("config file %s unreadable; rewriting it from the running config", self.config_path)
                raw = {}
        # The file may spell the key "servers" (settings accept both); it is rewritten as "mcpServers".
        file_key = "mcpServers" if "mcpServers" in raw else "servers"
        old_entries = raw.get(file_key) if isinstance(raw.get(file_key), dict) else {}
        assert isinstance(old_entries, dict)
        entries: dict[str, Any] = {}
        for name, spec in servers.items():
            old = old_entries.get(name)
            if not isinstance(old, dict):
                entries[name] = spec.to_config()
            elif name not in changed:
                entries[name] = old
            else:
                # A changed entry is rendered again; other clients' keys in it stay (their order too).
                entries[name] = {**spec.to_config(), **{k: v for k, v in old.items() if k not in SERVER_KEYS}}
        raw["mcpServers"] = entries
        raw.pop("servers", None)
        if self._expect_write is not None:
            self._expect_write(render_config(raw))
        await write_config_atomic_async(self.config_path, raw)
