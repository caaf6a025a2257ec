"""What one MCP endpoint shows: which servers, under which names, and pages of it.

- ``View(None)``: the aggregated endpoints (``/mcp`` and ``/mcp/all``): every ready, visible
  server; resource URIs ``mcpproxy://server/<uri>``, prompts ``server__prompt``, resource links
  in results rewritten to match (``routing.uris``).
- ``View("name")``: ``/mcp/s/<name>``: one server under its own names, nothing rewritten, so a
  client written for that server works unchanged.

Merged lists are in a deterministic order (server name, then each server's own order) and
paged by mcpproxy itself: the cursor is opaque to clients, names the position and the last
item's key, and an invalid one is refused with ``INVALID_PARAMS`` as the spec asks.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcpproxy.routing import uris

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class View:
    """The servers one endpoint shows (``server=None``: all of them, namespaced)."""

    server: str | None = None

    @property
    def key(self) -> str:
        """Names the endpoint in notifications bookkeeping."""
        return "all" if self.server is None else f"s/{self.server}"

    def covers(self, server: str) -> bool:
        return self.server is None or self.server == server

    def servers(self, ready: Sequence[str]) -> list[str]:
        """The ready servers this view shows, in name order."""
        return [s for s in ready if self.covers(s)]

    # -- names out and in ------------------------------------------------------------------

    def uri_out(self, server: str, uri: str) -> str:
        return uri if self.server is not None else uris.namespace_uri(server, uri)

    def uri_in(self, uri: str) -> tuple[str, str]:
        """A URI the client sent -> ``(server, upstream URI)``."""
        if self.server is not None:
            return self.server, uri
        return uris.split_uri(uri)

    def prompt_out(self, server: str, name: str) -> str:
        return name if self.server is not None else uris.namespace_prompt(server, name)

    def prompt_in(self, name: str) -> tuple[str, str]:
        if self.server is not None:
            return self.server, name
        return uris.split_prompt(name)

    def rewrite(self, server: str) -> uris.Rewrite:
        """How URIs inside results of ``server`` are rewritten for this view."""
        return uris.identity if self.server is not None else uris.namespacer(server)


def encode_cursor(offset: int, key: str) -> str:
    raw = json.dumps({"o": offset, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """``(offset, key)`` of a cursor this module made; ``MCPError(INVALID_PARAMS)`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset, key = data["o"], data["k"]
        if isinstance(offset, int) and offset >= 0 and isinstance(key, str):
            return offset, key
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise MCPError(types.INVALID_PARAMS, f"invalid cursor {cursor!r}")


def page(items: Sequence[_T], cursor: str | None, size: int, key: Callable[[_T], str]) -> tuple[list[_T], str | None]:
    """One page of ``items`` after ``cursor`` and the cursor of the next page (``None``: last).

    The cursor resumes after the item it names even when items were added or removed before
    it since; when that item is gone, at the position it had.
    """
    start = 0
    if cursor is not None:
        offset, last = decode_cursor(cursor)
        if 0 < offset <= len(items) and key(items[offset - 1]) == last:
            start = offset
        else:
            keys = [key(item) for item in items]
            start = keys.index(last) + 1 if last in keys else min(offset, len(items))
    chunk = list(items[start : start + size])
    end = start + len(chunk)
    if end >= len(items) or not chunk:
        return chunk, None
    return chunk, encode_cursor(end, key(chunk[-1]))


def item_key(item: Any) -> str:
    """The identifying field of a listed tool, prompt, resource or resource template."""
    for field in ("uri", "uri_template", "name"):
        value = getattr(item, field, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"no key for {type(item).__name__}")
