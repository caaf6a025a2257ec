"""What the operations layer hears about, besides tool calls: events and request context.

An :class:`OpsEvent` is one thing that happened outside the result of a call: a policy
decision (quarantine, pin, tier, scanner, redaction, auth), a server state change, a sandbox
start. Whoever decides calls ``gateway.record_event(OpsEvent(...))``; the activity log, the
metrics and the logs listen (``gateway.event_listeners``).

Request context travels in context variables set by the HTTP middleware (request id, the
fingerprint of the presented token, the client address, trace context from headers) and by
the call pipeline (the id of the call in progress, so that a call made from inside another
one, e.g. from code execution, records its parent). Context variables follow the task that
serves a request, and the tasks it starts, and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("mcpproxy_request_id", default=None)
"""The HTTP request's id (``X-Request-Id``), set by the middleware."""

token_var: ContextVar[str | None] = ContextVar("mcpproxy_token", default=None)
"""Fingerprint of the credential the HTTP client presented (never the credential itself)."""

client_addr_var: ContextVar[str | None] = ContextVar("mcpproxy_client_addr", default=None)
"""The HTTP client's address."""

trace_headers_var: ContextVar[dict[str, str] | None] = ContextVar("mcpproxy_trace_headers", default=None)
"""W3C trace context (``traceparent``, ``tracestate``) from the HTTP request's headers."""

current_call_var: ContextVar[str | None] = ContextVar("mcpproxy_current_call", default=None)
"""Id of the tool call in progress in this task: the parent of any call made from inside it."""


def new_id() -> str:
    """A 32-character hex id that sorts by creation time (48-bit milliseconds, then 80 random bits)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible name for a credential: ``sha256:`` and 12 hex digits."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass(slots=True)
class OpsEvent:
    """One event for the activity log and the metrics.

    Attributes:
        kind: ``policy``, ``state``, ``auth``, ``sandbox``, ``code`` (or another layer's name).
        action: What happened: for policy ``deny``, ``allow``, ``redact``, ``quarantine``,
            ``approve``, ``pin``...; for state the new state (``ready``, ``backoff``...).
        check: Which rule decided (``tier``, ``arguments``, ``quarantine``, ``pin``,
            ``scanner``, ``redaction``, ``auth``...), when it applies.
        server: The server concerned, if any.
        tool: The tool concerned, if any.
        message: A sentence for humans (an error message, a reason).
        detail: Extra JSON-serialisable fields (never a secret).
        request_id: Correlation id, when the event belongs to a request.
        client: The client, when known.
        token: Fingerprint or id of the credential used, when known.
        call_id: The call the event belongs to, if any.
        time: Unix time.
    """

    kind: str
    action: str
    check: str | None = None
    server: str | None = None
    tool: str | None = None
    message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    client: str | None = None
    token: str | None = None
    call_id: str | None = None
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.request_id is None:
            self.request_id = request_id_var.get()
        if self.token is None:
            self.token = token_var.get()
        if self.client is None:
            self.client = client_addr_var.get()
