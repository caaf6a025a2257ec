"""Settings: the global configuration and one ``ServerSpec`` per upstream.

These frozen pydantic models are the single table that drives the config file, the
environment overrides (``MCPPROXY_<FIELD>``), the CLI flags and the configuration reference
in the README. The config file is in the shape users already have (Claude Desktop, Claude
Code, Cursor)::

    {"listen": "127.0.0.1:8080",
     "mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]},
                    "docs": {"url": "https://example.com/mcp", "headers": {"X-Key": "..."}}}}

Server entries are paste-compatible: ``cwd`` and ``working_dir`` are the same field,
``disabled: true`` is the same as ``enabled: false``, the transport is detected from the
entry (``command`` -> stdio, ``url`` -> streamable HTTP, ``type: "sse"`` or a URL ending in
``/sse`` -> legacy SSE), and keys other clients add (``autoApprove``, ...) are kept aside
as ``extra_keys`` so a listing can report them, never rejected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Transport = Literal["stdio", "http", "sse"]
Trust = Literal["manual", "scan", "auto"]
ProtocolMode = Literal["auto", "legacy", "modern"]

SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Server names become tool prefixes (``name:tool``, ``name__tool``), so they stay simple."""

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DATA_DIR = "~/.mcpproxy"
CONFIG_FILE_NAME = "mcp_config.json"

# Known keys of a server entry; anything else is another client's extension.
_SERVER_KEYS = frozenset(
    {
        "name",
        "command",
        "args",
        "env",
        "cwd",
        "working_dir",
        "url",
        "headers",
        "type",
        "transport",
        "enabled",
        "disabled",
        "trust",
        "call_timeout",
        "connect_timeout",
        "protocol",
        "description",
    }
)


class ServerSpec(BaseModel):
    """One upstream MCP server, as the user configured it.

    Attributes:
        name: Unique name, used as the tool prefix (``name:tool``).
        transport: ``stdio``, ``http`` (streamable HTTP) or ``sse`` (legacy SSE).
        command: Program to start (stdio).
        args: Its arguments (stdio).
        env: Extra environment variables for the process (stdio).
        working_dir: Working directory of the process (stdio); ``cwd`` is accepted too.
        url: Endpoint URL (http, sse).
        headers: HTTP headers sent on every request (http, sse).
        enabled: Whether mcpproxy connects to it.
        trust: ``manual`` (a human approves), ``scan`` (released when the scanner is clean)
            or ``auto``; used by the security layer.
        call_timeout: Seconds a tool call may take; ``None`` uses the global setting.
        connect_timeout: Seconds a connection attempt may take; ``None`` uses the global one.
        protocol: ``auto`` (newest era the server supports), ``legacy`` (force the
            handshake era) or ``modern`` (force 2026-07-28).
        description: A note for humans and for search (optional).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    trust: Trust = "manual"
    call_timeout: float | None = Field(default=None, gt=0)
    connect_timeout: float | None = Field(default=None, gt=0)
    protocol: ProtocolMode = "auto"
    description: str | None = None
    extra_keys: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not SERVER_NAME_RE.fullmatch(value):
            raise ValueError(
                "server names use letters, digits, '_', '-' and '.', start with a letter or digit, "
                "and are at most 64 characters"
            )
        if "__" in value:
            raise ValueError("server names may not contain '__' (it separates server and tool in direct mode)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw: dict[str, Any] = dict(data)
        extras = tuple(sorted(k for k in raw if k not in _SERVER_KEYS and k != "extra_keys"))
        for key in extras:
            raw.pop(key)
        if extras:
            raw["extra_keys"] = extras
        if "cwd" in raw:
            cwd = raw.pop("cwd")
            if raw.get("working_dir") not in (None, cwd):
                raise ValueError("give either 'cwd' or 'working_dir', not both with different values")
            raw["working_dir"] = cwd
        if "disabled" in raw:
            disabled = raw.pop("disabled")
            if not isinstance(disabled, bool):
                raise ValueError("'disabled' must be true or false")
            raw.setdefault("enabled", not disabled)
        declared = raw.pop("type", None)
        if declared is not None and "transport" not in raw:
            raw["transport"] = declared
        if raw.get("transport") in ("streamable-http", "streamable_http", "streamableHttp", "http"):
            raw["transport"] = "http"
        if raw.get("transport") is None:
            if raw.get("command"):
                raw["transport"] = "stdio"
            elif isinstance(raw.get("url"), str):
                raw["transport"] = "sse" if _url_means_sse(raw["url"]) else "http"
            else:
                raise ValueError("a server needs either 'command' (stdio) or 'url' (HTTP or SSE)")
        if isinstance(raw.get("args"), list):
            raw["args"] = tuple(raw["args"])
        return raw

    @model_validator(mode="after")
    def _check_transport_fields(self) -> ServerSpec:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs 'command'")
            if self.url:
                raise ValueError("a stdio server takes 'command', not 'url'")
        else:
            if not self.url:
                raise ValueError(f"a {self.transport} server needs 'url'")
            if self.command:
                raise ValueError(f"a {self.transport} server takes 'url', not 'command'")
            if not re.match(r"^https?://", self.url):
                raise ValueError("'url' must start with http:// or https://")
        return self

    def to_config(self) -> dict[str, Any]:
        """The entry as it is written back to the config file (defaults left out)."""
        out: dict[str, Any] = {}
        if self.transport == "stdio":
            out["command"] = self.command
            if self.args:
                out["args"] = list(self.args)
            if self.env:
                out["env"] = dict(self.env)
            if self.working_dir:
                out["working_dir"] = self.working_dir
        else:
            out["url"] = self.url
            if self.transport != ("sse" if _url_means_sse(self.url or "") else "http"):
                out["type"] = self.transport
            if self.headers:
                out["headers"] = dict(self.headers)
        if not self.enabled:
            out["enabled"] = False
        if self.trust != "manual":
            out["trust"] = self.trust
        if self.call_timeout is not None:
            out["call_timeout"] = self.call_timeout
        if self.connect_timeout is not None:
            out["connect_timeout"] = self.connect_timeout
        if self.protocol != "auto":
            out["protocol"] = self.protocol
        if self.description:
            out["description"] = self.description
        return out


def _url_means_sse(url: str) -> bool:
    """Whether a URL without a declared type is a legacy SSE endpoint (its path ends in ``/sse``)."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = url
    return path.rstrip("/").endswith("/sse")


class Settings(BaseModel):
    """Global settings of one gateway.

    Attributes:
        listen: ``HOST:PORT`` of the HTTP endpoint; loopback by default.
        data_dir: Where the database, logs and API key live.
        tools_limit: Default number of results of ``retrieve_tools``.
        tool_response_limit: Characters of a tool result kept before it is truncated and the
            rest made available through ``read_cache`` (0 disables truncation).
        call_timeout: Seconds a tool call may take (per-server override in ``ServerSpec``).
        connect_timeout: Seconds a connection attempt to an upstream may take.
        backoff_initial: First reconnect delay in seconds.
        backoff_max: Cap of the exponential reconnect delay in seconds.
        health_interval: Seconds between health checks of a ready upstream (a re-list of its
            tools, which also catches changes a server did not announce).
        log_level: Level of the main log.
        log_format: ``console`` (readable) or ``json``.
        servers: The upstream servers by name (``mcpServers`` in the file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    listen: str = DEFAULT_LISTEN
    data_dir: str = DEFAULT_DATA_DIR
    tools_limit: int = Field(default=15, ge=1, le=100)
    tool_response_limit: int = Field(default=20_000, ge=0)
    call_timeout: float = Field(default=120.0, gt=0)
    connect_timeout: float = Field(default=30.0, gt=0)
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    health_interval: float = Field(default=60.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    servers: dict[str, ServerSpec] = Field(default_factory=dict, alias="mcpServers")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _name_servers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw = dict(data)
        key = "mcpServers" if "mcpServers" in raw else "servers" if "servers" in raw else None
        if key is not None and isinstance(raw[key], dict):
            named: dict[str, Any] = {}
            for name, entry in raw[key].items():
                if isinstance(entry, dict):
                    entry = {**entry, "name": name}
                named[name] = entry
            raw[key] = named
        return raw

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir))

    def call_timeout_for(self, spec: ServerSpec) -> float:
        return spec.call_timeout if spec.call_timeout is not None else self.call_timeout

    def connect_timeout_for(self, spec: ServerSpec) -> float:
        return spec.connect_timeout if spec.connect_timeout is not None else self.connect_timeout

    def to_config(self) -> dict[str, Any]:
        """The settings as written to the config file: non-default globals, then servers."""
        defaults = Settings()
        out: dict[str, Any] = {}
        for field in type(self).model_fields:
            if field == "servers":
                continue
            value = getattr(self, field)
            if value != getattr(defaults, field):
                out[field] = value
        out["mcpServers"] = {name: spec.to_config() for name, spec in self.servers.items()}
        return out

    def with_servers(self, servers: dict[str, ServerSpec]) -> Settings:
        return self.model_copy(update={"servers": dict(servers)})


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6) and check the port."""
    match = re.fullmatch(r"\[(?P<h6>[0-9a-fA-F:]+)\]:(?P<p6>\d+)|(?P<h>[^:\[\]]*):(?P<p>\d+)", value.strip())
    if not match:
        raise ValueError(f"listen must be HOST:PORT (for IPv6 [ADDR]:PORT), got {value!r}")
    host = match.group("h6") or match.group("h") or "127.0.0.1"
    port = int(match.group("p6") or match.group("p"))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


def is_loopback_host(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
