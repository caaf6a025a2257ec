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

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from mcpproxy.sandbox.base import is_valid_domain
from mcpproxy.sandbox.defaults import DEFAULT_MAX_OPEN_FILES, DEFAULT_MAX_PROCESSES, DEFAULT_MEMORY

Transport = Literal["stdio", "http", "sse"]
Trust = Literal["manual", "scan", "auto"]
Redaction = Literal["off", "detect", "redact", "block"]
ProtocolMode = Literal["auto", "legacy", "modern"]
IsolationMode = Literal["auto", "bwrap", "landlock", "docker", "none"]
NetworkMode = Literal["none", "host", "allow"]
CodeIsolation = Literal["auto", "bwrap", "landlock", "none"]

# Every float setting is a ``FiniteFloat`` (pydantic's ``Annotated[float, AllowInfNan(False)]``):
# plain ``float`` accepts inf and nan (``1e999``, ``"inf"``, the ``Infinity`` that Python's JSON
# parser reads), which cannot be written back to the config file as JSON.

SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Server names become tool prefixes (``name:tool``, ``name__tool``), so they stay simple."""

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DATA_DIR = "~/.mcpproxy"
CONFIG_FILE_NAME = "mcp_config.json"
DEFAULT_SANDBOX_MEMORY_MB = DEFAULT_MEMORY // (1024 * 1024)
DEFAULT_SANDBOX_PROCESSES = DEFAULT_MAX_PROCESSES
DEFAULT_SANDBOX_OPEN_FILES = DEFAULT_MAX_OPEN_FILES

# Known keys of a server entry; anything else is another client's extension.
SERVER_KEYS = frozenset(
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
        "redaction",
        "spotlight",
        "isolation",
    }
)


class Isolation(BaseModel):
    """How a stdio server is sandboxed (the ``isolation`` key of its entry; ignored for HTTP/SSE).

    The defaults let common servers work: the paths named in the server's arguments,
    environment and working directory are reachable (see docs/sandbox.md), the rest of the
    home directory and mcpproxy's data dir are not. ``"isolation": "none"`` (or any mode
    name) is shorthand for ``{"mode": "none"}``; ``false`` means ``none`` and ``true`` ``auto``.

    Attributes:
        mode: ``auto`` (the strongest sandbox that works here), ``bwrap``, ``landlock``,
            ``docker`` or ``none`` (opt out); ``None`` uses the global ``isolation`` setting.
        network: ``none`` (no network), ``host`` (the host's network, loopback included) or
            ``allow`` (HTTP(S) to ``allow_domains`` only, through mcpproxy's egress proxy);
            ``None``: ``allow`` when ``allow_domains`` is set or the command is a package runner
            (``npx``, ``uvx``: their registry is allowed), else ``none``.
        allow_domains: Hosts reachable with ``network: allow`` (``example.com``, ``*.example.com``
            for its sub-domains, IP addresses).
        writable: Extra paths the server may write (absolute or ``~/``).
        readonly: Extra paths the server may read.
        memory_mb: Memory limit in MiB (``null``: none).
        cpu_seconds: CPU time after which the server is killed (``null``: none, the default,
            since a long-lived server accumulates CPU time).
        max_processes: Processes and threads the server may have at once (``null``: none).
        max_open_files: Open files per process (``null``: none).
        env_allowlist: Names of variables of mcpproxy's own environment passed in besides
            ``env`` (``LANG``, ``LC_ALL``, ``LC_CTYPE``, ``TZ`` and ``TERM`` always are).
        image: Docker image for ``mode: docker`` (default: from the command, e.g. ``npx`` ->
            ``node:20``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: IsolationMode | None = None
    network: NetworkMode | None = None
    allow_domains: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    memory_mb: int | None = Field(default=DEFAULT_SANDBOX_MEMORY_MB, gt=0)
    cpu_seconds: int | None = Field(default=None, gt=0)
    max_processes: int | None = Field(default=DEFAULT_SANDBOX_PROCESSES, gt=0)
    max_open_files: int | None = Field(default=DEFAULT_SANDBOX_OPEN_FILES, gt=0)
    env_allowlist: tuple[str, ...] = ()
    image: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, bool):
            return {"mode": "auto" if data else "none"}
        if isinstance(data, str):
            return {"mode": data}
        return data

    @field_validator("allow_domains")
    @classmethod
    def _check_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        domains = tuple(d.strip().lower() for d in value)
        for domain in domains:
            if not is_valid_domain(domain):
                raise ValueError(f"{domain!r} is not a host name, '*.' plus a host name, or an IP address")
        return domains

    @field_validator("writable", "readonly")
    @classmethod
    def _check_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not (path.startswith("/") or path.startswith("~/")) or "\x00" in path:
                raise ValueError(f"sandbox paths must be absolute or start with '~/': {path!r}")
        return value

    @field_validator("env_allowlist")
    @classmethod
    def _check_env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> Isolation:
        if self.network in ("none", "host") and self.allow_domains:
            raise ValueError(f"allow_domains needs network 'allow' (network is {self.network!r})")
        return self

    def to_config(self) -> dict[str, Any]:
        """The non-default keys, as written to the config file."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_dump(exclude_defaults=True).items()}


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
        redaction: What to do with secrets found in this server's results (``off``, ``detect``,
            ``redact``, ``block``); ``None`` uses the global setting.
        spotlight: Wrap this server's text results as untrusted content; ``None`` uses the
            global setting.
        trust: ``manual`` (a human approves), ``scan`` (released when the scanner is clean)
            or ``auto``; used by the security layer.
        call_timeout: Seconds a tool call may take; ``None`` uses the global setting.
        connect_timeout: Seconds a connection attempt may take; ``None`` uses the global one.
        protocol: ``auto`` (newest era the server supports), ``legacy`` (force the
            handshake era) or ``modern`` (force 2026-07-28).
        description: A note for humans and for search (optional).
        isolation: How a stdio server is sandboxed (``Isolation``); the defaults apply when absent.
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
    trust: Trust | None = None
    redaction: Redaction | None = None
    spotlight: bool | None = None
    call_timeout: FiniteFloat | None = Field(default=None, gt=0)
    connect_timeout: FiniteFloat | None = Field(default=None, gt=0)
    protocol: ProtocolMode = "auto"
    description: str | None = None
    isolation: Isolation = Field(default_factory=Isolation)
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
        extras = tuple(sorted(k for k in raw if k not in SERVER_KEYS and k != "extra_keys"))
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
        if self.trust is not None:
            out["trust"] = self.trust
        if self.redaction is not None:
            out["redaction"] = self.redaction
        if self.spotlight is not None:
            out["spotlight"] = self.spotlight
        if self.call_timeout is not None:
            out["call_timeout"] = self.call_timeout
        if self.connect_timeout is not None:
            out["connect_timeout"] = self.connect_timeout
        if self.protocol != "auto":
            out["protocol"] = self.protocol
        if self.description:
            out["description"] = self.description
        isolation = self.isolation.to_config()
        if isolation:
            out["isolation"] = isolation
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
        search_mode: ``bm25`` (words only, pure Python) or ``hybrid`` (words fused with a local
            embedding model; needs ``pip install 'mcpproxy[embeddings]'``).
        search_usage_boost: Rank a little higher the tools a client called after its earlier
            searches (counted per client, never shared between clients).
        tool_response_limit: Characters of a tool result kept before it is truncated and the
            rest made available through ``read_cache`` (0 disables truncation).
        call_timeout: Seconds a tool call may take (per-server override in ``ServerSpec``).
        connect_timeout: Seconds a connection attempt to an upstream may take.
        upstream_http_transport: How HTTP upstreams are reached under the SDK's client: ``lean``
            (plain ``http`` on kept-alive sockets with a C parser; ``https`` and proxies use
            ``httpx2``'s own) or ``httpx`` (``httpx2``'s own for everything). Applies when a
            server (re)connects.
        backoff_initial: First reconnect delay in seconds.
        backoff_max: Cap of the exponential reconnect delay in seconds.
        health_interval: Seconds between health checks of a ready upstream (a re-list of its
            tools, which also catches changes a server did not announce).
        log_level: Level of the main log.
        log_format: ``console`` (readable) or ``json``.
        default_trust: Trust of a server whose entry says nothing: ``manual`` (quarantined
            until a human approves it), ``scan`` (released when the scanner finds nothing above
            ``scan_warn_above``) or ``auto``. Servers the model adds are always ``manual``.
        scan_warn_above: Risk score (0-100) above which the scanner flags a tool for review.
        scan_quarantine_above: Risk score above which a tool is held until a human approves it.
        redaction: Secrets found in tool results: ``off``, ``detect`` (record only), ``redact``
            (replace them) or ``block`` (refuse the result); per-server ``redaction`` overrides.
        spotlight: Wrap text results between markers that say they are untrusted data.
        mcp_auth: ``optional`` (calls without a token are allowed; only on loopback) or
            ``required`` (every MCP request needs an agent token or the API key).
        allow_private_upstreams: Let servers added by the model point at loopback or private
            addresses (metadata addresses stay refused).
        allowed_roots: Directories (separated by ``:``) under which a working directory the
            model supplies must sit.
        dns_rebinding_protection: Refuse MCP requests whose ``Host`` (or browser ``Origin``) is not
            trusted: loopback names, the listen host and ``allowed_hosts`` / ``allowed_origins``.
        allowed_hosts: Extra trusted ``Host`` values, separated by ``,`` (a reverse proxy's public
            name, ``name`` or ``name:port``).
        allowed_origins: Extra trusted browser origins, separated by ``,`` (``https://app.example``).
        max_body_size: Largest MCP request body in bytes; larger ones get HTTP 413.
        list_page_size: Items per page of the lists mcpproxy serves (tools, resources, prompts).
        input_relay_timeout: Seconds a stateless-era client has to answer the ``input_required``
            of a call to a handshake-era server before that call is cancelled upstream.
        input_relay_max_pending: Calls kept waiting for a stateless-era client's input at most;
            past this a new one is refused with an ``overloaded`` error.
        log_max_bytes: Size in bytes at which the main log and each server's log are rotated.
        log_backups: Rotated log files kept per log.
        max_concurrent_calls: Tool calls running at once on one server; more wait in its queue.
        max_queued_calls: Tool calls waiting for one server at most; past this a call is refused
            at once with an ``overloaded`` error.
        breaker_failures: Failures in a row (timeouts, lost connections, protocol errors) after
            which calls to a server are paused (0 never pauses).
        breaker_cooldown: Seconds calls to a server stay paused before one probe call is let through.
        rate_limit: Requests per second one client may send on average (per token, else per
            address); 0 disables the limit.
        rate_limit_burst: Requests one client may send at once after a pause.
        shutdown_grace: Seconds calls in flight get to finish on SIGTERM or SIGINT before they are
            cancelled with an error.
        activity_retention_days: Days activity records are kept (0 keeps them regardless of age).
        activity_max_records: Activity records kept at most (0 for no limit); the oldest go first.
        otlp_endpoint: OTLP/HTTP traces endpoint (e.g. ``http://127.0.0.1:4318/v1/traces``);
            empty turns tracing off. Needs ``pip install 'mcpproxy[otlp]'``.
        isolation: Sandbox for stdio servers whose entry names no ``isolation.mode``: ``auto`` (the
            strongest that works here, else none with a warning), ``bwrap``, ``landlock``, ``docker``
            (a server fails if that one cannot run here) or ``none``. ``mcpproxy doctor`` shows which work.
        require_isolation: Refuse to start a stdio server unsandboxed when ``auto`` finds no working
            sandbox (an explicit per-server ``mode: none`` is still honoured).
        code_execution: Offer ``code_execution`` (the model writes a program that calls tools) on
            ``/mcp`` and ``/mcp/code``; see docs/codemode.md.
        code_languages: Languages programs may be written in, separated by ``,``: ``python``
            (embedded sandboxed interpreter), ``python-full`` (CPython in the OS sandbox),
            ``typescript`` (Deno with no permissions, in the OS sandbox).
        code_timeout_ms: Wall time a program gets when it asks for none, in milliseconds.
        code_max_timeout_ms: Most wall time a program may ask for, in milliseconds.
        code_cpu_seconds: CPU time a ``python-full`` or ``typescript`` worker may use.
        code_memory_mb: Memory a program may use, in MiB (the heap for ``python`` and
            ``typescript``, the data segment for ``python-full``).
        code_max_output_bytes: Bytes of output (stdout and stderr together) a program may write;
            past this it is stopped and what it wrote so far is returned.
        code_max_tool_calls: Tool calls one program may make (a program may ask for fewer).
        code_max_concurrent: Programs running at once.
        code_max_queued: Programs waiting for a free slot at most; past this a program is refused
            at once with an ``overloaded`` error.
        code_warm_workers: Pre-started workers kept ready for each of ``python-full`` and
            ``typescript`` (0 starts each worker on demand).
        code_isolation: OS sandbox for ``python-full`` and ``typescript`` workers: ``auto`` (the
            strongest that works here; those languages are refused when none does), ``bwrap``,
            ``landlock`` or ``none`` (no OS sandbox: only for a trusted machine).
        servers: The upstream servers by name (``mcpServers`` in the file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    listen: str = DEFAULT_LISTEN
    data_dir: str = DEFAULT_DATA_DIR
    tools_limit: int = Field(default=15, ge=1, le=100)
    search_mode: Literal["bm25", "hybrid"] = "bm25"
    search_usage_boost: bool = False
    tool_response_limit: int = Field(default=20_000, ge=0)
    call_timeout: FiniteFloat = Field(default=120.0, gt=0)
    connect_timeout: FiniteFloat = Field(default=30.0, gt=0)
    upstream_http_transport: Literal["lean", "httpx"] = "lean"
    backoff_initial: FiniteFloat = Field(default=1.0, gt=0)
    backoff_max: FiniteFloat = Field(default=60.0, gt=0)
    health_interval: FiniteFloat = Field(default=60.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    default_trust: Trust = "manual"
    scan_warn_above: int = Field(default=20, ge=0, le=100)
    scan_quarantine_above: int = Field(default=50, ge=0, le=100)
    redaction: Redaction = "redact"
    spotlight: bool = False
    mcp_auth: Literal["optional", "required"] = "optional"
    allow_private_upstreams: bool = False
    allowed_roots: str = "~"
    dns_rebinding_protection: bool = True
    allowed_hosts: str = ""
    allowed_origins: str = ""
    max_body_size: int = Field(default=4 * 1024 * 1024, ge=1024)
    list_page_size: int = Field(default=100, ge=1, le=10_000)
    input_relay_timeout: FiniteFloat = Field(default=300.0, gt=0)
    input_relay_max_pending: int = Field(default=100, ge=0)
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    log_backups: int = Field(default=5, ge=0, le=100)
    max_concurrent_calls: int = Field(default=32, ge=1)
    max_queued_calls: int = Field(default=256, ge=0)
    breaker_failures: int = Field(default=5, ge=0)
    breaker_cooldown: FiniteFloat = Field(default=30.0, gt=0)
    rate_limit: FiniteFloat = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    shutdown_grace: FiniteFloat = Field(default=10.0, ge=0)
    activity_retention_days: FiniteFloat = Field(default=30.0, ge=0)
    activity_max_records: int = Field(default=200_000, ge=0)
    otlp_endpoint: str = ""
    isolation: IsolationMode = "auto"
    require_isolation: bool = False
    code_execution: bool = True
    code_languages: str = "python,python-full,typescript"
    code_timeout_ms: int = Field(default=30_000, ge=100)
    code_max_timeout_ms: int = Field(default=300_000, ge=100)
    code_cpu_seconds: int = Field(default=60, ge=1)
    code_memory_mb: int = Field(default=256, ge=16)
    code_max_output_bytes: int = Field(default=1_000_000, ge=1024)
    code_max_tool_calls: int = Field(default=100, ge=0)
    code_max_concurrent: int = Field(default=8, ge=1)
    code_max_queued: int = Field(default=32, ge=0)
    code_warm_workers: int = Field(default=1, ge=0, le=64)
    code_isolation: CodeIsolation = "auto"
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

    def trust_for(self, spec: ServerSpec) -> Trust:
        return spec.trust if spec.trust is not None else self.default_trust

    def redaction_for(self, spec: ServerSpec) -> Redaction:
        return spec.redaction if spec.redaction is not None else self.redaction

    def spotlight_for(self, spec: ServerSpec) -> bool:
        return spec.spotlight if spec.spotlight is not None else self.spotlight

    def roots(self) -> list[Path]:
        return [Path(os.path.expanduser(p)) for p in self.allowed_roots.split(":") if p.strip()]

    def isolation_for(self, spec: ServerSpec) -> IsolationMode:
        """The sandbox mode of a stdio server: its own ``isolation.mode``, else the global one."""
        return spec.isolation.mode if spec.isolation.mode is not None else self.isolation

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
