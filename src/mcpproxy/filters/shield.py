"""The result shield: secrets redacted, invisible characters stripped, optional spotlighting.

Design. Every tool result passes here on its way to the client, before truncation (so a
secret is never cut in half and never lands in the ``read_cache``). Only text the model reads
is examined: text blocks, the text of embedded resources and structured content; images and
binary blobs pass untouched (their base64 would look like high-entropy secrets).

Per server (``redaction`` in the entry, else the global setting): ``off`` passes results
through, ``detect`` only records what it found, ``redact`` replaces each secret with
``[REDACTED:<kind>]`` (the default), ``block`` refuses the whole result. Invisible and
control characters are stripped from every result unless redaction is ``off``. Every
detection is reported to the caller's context (for the activity log); the secret itself never is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp_types as types

from mcpproxy.errors import PolicyDenied
from mcpproxy.filters.sanitise import sanitise_result
from mcpproxy.filters.secrets import Detection, redact, redact_json
from mcpproxy.settings import Redaction

Report = Callable[[dict[str, Any]], None]


def _detections(found: list[Detection]) -> list[dict[str, Any]]:
    return [{"kind": d.kind, "path": d.path, "preview": d.preview} for d in found]


def shield_result(
    result: types.CallToolResult,
    *,
    tool: str,
    mode: Redaction,
    spotlight: bool,
    report: Report,
) -> types.CallToolResult:
    """Apply ``mode`` (see the module docstring) to ``result``; ``report`` hears of each event."""
    if mode == "off":
        return result
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    content: list[dict[str, Any]] = wire.get("content", [])
    structured = wire.get("structuredContent")
    found: list[Detection] = []
    for index, block in enumerate(content):
        for key, holder in _texts(block):
            outcome = redact(holder[key])
            for d in outcome.detections:
                found.append(Detection(d.kind, d.span, d.preview, f"/content/{index}/{key}"))
            if mode == "redact":
                holder[key] = outcome.text
    if structured is not None:
        redacted, hits = redact_json(structured)
        found.extend(Detection(d.kind, d.span, d.preview, "/structuredContent" + d.path) for d in hits)
        if mode == "redact":
            structured = redacted
    if found:
        report({"decision": "redaction", "mode": mode, "tool": tool, "detections": _detections(found)})
        if mode == "block":
            kinds = ", ".join(sorted({d.kind for d in found}))
            raise PolicyDenied(
                f"the result of '{tool}' contained secrets ({kinds}) and was withheld",
                hint="the server's redaction setting is 'block'; set it to 'redact' to receive the rest",
                data={"tool": tool, "kinds": sorted({d.kind for d in found})},
            )
    cleaned = sanitise_result(content, structured, provenance=f"tool {tool}" if spotlight else None)
    if cleaned.removed:
        report({"decision": "sanitised", "tool": tool, "removed_characters": cleaned.removed})
    if not found and not cleaned.removed and not spotlight:
        return result
    wire["content"] = cleaned.content
    if cleaned.structured_content is not None:
        wire["structuredContent"] = cleaned.structured_content
    return types.CallToolResult.model_validate(wire)


def _texts(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ``(key, holder)`` pairs of readable text in a content block."""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return [("text", block)]
    resource = block.get("resource")
    if block.get("type") == "resource" and isinstance(resource, dict) and isinstance(resource.get("text"), str):
        return [("text", resource)]
    return []
