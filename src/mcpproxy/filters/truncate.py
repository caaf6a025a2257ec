"""Truncation of large results, with the rest kept for ``read_cache``.

A tool that returns a 2 MB file listing would flood the model's context. Past
``tool_response_limit`` characters, the text of a result is cut, the whole text is kept in a
bounded in-memory cache under a random key, and the result says exactly how to read on:
``read_cache(key=..., offset=..., limit=...)``. Images and other non-text blocks pass
unchanged. Structured content is kept when the tool declares an output schema (a client
validates it), and dropped with the text otherwise (it would be the same data twice).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import mcp_types as types

from mcpproxy.errors import CacheMiss

CACHE_TTL_SECONDS = 30 * 60
"""How long a truncated result stays readable: long enough for a model to page through it."""

CACHE_MAX_CHARS = 64_000_000
"""Upper bound of cached text (about 64-256 MB of memory); the oldest entries go first."""


@dataclass(slots=True)
class _Entry:
    text: str
    tool: str
    created: float


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    tool: str
    offset: int
    limit: int
    total: int
    text: str

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.text)
        return end if end < self.total else None

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "tool": self.tool,
            "offset": self.offset,
            "limit": self.limit,
            "total": self.total,
            "next_offset": self.next_offset,
            "content": self.text,
        }


class ResponseCache:
    """Bounded, expiring store of full texts of truncated results."""

    def __init__(self, *, ttl: float = CACHE_TTL_SECONDS, max_chars: int = CACHE_MAX_CHARS) -> None:
        self._ttl = ttl
        self._max_chars = max_chars
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._chars = 0

    def put(self, tool: str, text: str) -> str:
        key = secrets.token_urlsafe(12)
        self._entries[key] = _Entry(text, tool, time.monotonic())
        self._chars += len(text)
        self._evict()
        return key

    def _evict(self) -> None:
        now = time.monotonic()
        # The newest entry always stays readable, even alone over the size bound (until it expires).
        while len(self._entries) > 1 or (
            self._entries and now - next(iter(self._entries.values())).created > self._ttl
        ):
            key, entry = next(iter(self._entries.items()))
            if self._chars <= self._max_chars and now - entry.created <= self._ttl:
                break
            del self._entries[key]
            self._chars -= len(entry.text)

    def read(self, key: str, offset: int = 0, limit: int = 20_000) -> Page:
        self._evict()
        entry = self._entries.get(key)
        if entry is None:
            raise CacheMiss(
                f"no cached result with key '{key}'",
                hint="cached results expire after 30 minutes; call the tool again",
                data={"key": key},
            )
        offset = max(0, offset)
        limit = max(1, limit)
        return Page(key, entry.tool, offset, limit, len(entry.text), entry.text[offset : offset + limit])


def _text_size(result: types.CallToolResult) -> int:
    """Characters the model reads: the text blocks, or the structured content when there is no text.

    Servers that return structured content mirror it in a text block (the spec asks them to),
    so counting both would truncate results that fit.
    """
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if texts:
        return sum(len(text) for text in texts)
    if result.structured_content is not None:
        return len(json.dumps(result.structured_content, ensure_ascii=False))
    return 0


def truncate_result(
    result: types.CallToolResult,
    *,
    tool: str,
    limit: int,
    cache: ResponseCache,
    keep_structured: bool,
) -> types.CallToolResult:
    """``result`` unchanged if it fits in ``limit`` characters, else cut with a read_cache notice."""
    if limit <= 0 or _text_size(result) <= limit:
        return result
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    structured = result.structured_content
    if texts:
        full = "\n".join(texts)
    elif structured is not None and not keep_structured:
        full = json.dumps(structured, ensure_ascii=False, indent=1)
    else:
        return result
    if len(full) <= limit and (keep_structured or structured is None):
        return result
    key = cache.put(tool, full)
    notice = (
        f"[mcpproxy: result truncated: showing characters 0-{min(limit, len(full))} of {len(full)}. "
        f'Read the rest with read_cache(key="{key}", offset={limit}, limit={limit}).]'
    )
    others = [block for block in result.content if not isinstance(block, types.TextContent)]
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=full[:limit]), *others]
    content.append(types.TextContent(type="text", text=notice))
    meta = dict(result.meta or {})
    meta["mcpproxy/truncated"] = {"key": key, "total": len(full), "shown": min(limit, len(full))}
    return types.CallToolResult(
        content=content,
        structured_content=structured if keep_structured else None,
        is_error=result.is_error,
        _meta=meta,
    )
