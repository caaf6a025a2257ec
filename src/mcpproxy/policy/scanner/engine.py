"""Run every rule over a tool and fold the findings into a report.

The engine is deterministic and offline: no network, no model, no randomness, no dependence on
dict ordering beyond the input's own order. For each tool it builds a ``ToolView`` (all text
fields with their locations), runs the text rules on every field, runs the decoders (tag
characters, Unicode normalisation, base64, hex, escapes) and rescans what they decode, up to
two levels deep and within a fixed budget, then runs the whole-tool rules (shadowing against
the catalog, capability checks). Findings are de-duplicated, capped per rule, ordered by
severity, and scored (``model.risk_score``).

``scan_tools`` scans a batch. Unless told otherwise it also builds a catalog of the batch
itself, so that tools of different servers in one file are checked against each other, as the
gateway would check servers it fronts together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mcpproxy.policy.scanner.catalog import Catalog
from mcpproxy.policy.scanner.model import DEFAULT_POLICY, Finding, ScanPolicy, ToolReport, risk_score
from mcpproxy.policy.scanner.rules import DECODERS, TEXT_RULES, TOOL_RULES, Peers
from mcpproxy.policy.scanner.view import Field, ToolView, build_view

MAX_DEPTH = 2
MAX_DERIVED = 64
MAX_PER_RULE = 5

ToolInput = Mapping[str, Any] | tuple[str | None, Mapping[str, Any]]
"""A tool definition, or a ``(server, tool definition)`` pair."""


def _scan_field(field: Field, view: ToolView, out: list[Finding], depth: int, budget: list[int]) -> None:
    for rule in TEXT_RULES:
        out.extend(rule(field, view))
    if depth >= MAX_DEPTH:
        return
    for decoder in DECODERS:
        for finding, derived in decoder(field):
            if finding is not None:
                out.append(finding)
            if budget[0] <= 0:
                return
            budget[0] -= 1
            if field.via:
                via = f"{derived.via} in {field.via}"
                derived = Field(derived.location, derived.text, derived.kind, derived.param, via)
            _scan_field(derived, view, out, depth + 1, budget)


def _tidy(findings: list[Finding]) -> tuple[Finding, ...]:
    """Drop duplicates and decoded echoes of literal findings, cap per rule, most severe first."""
    literal = {(f.rule, f.location): f.severity.rank for f in findings if not f.evidence.startswith("[decoded")}
    seen: set[tuple[str, str, str]] = set()
    per_rule: dict[str, int] = {}
    kept: list[Finding] = []
    for f in findings:
        key = (f.rule, f.location, f.evidence)
        if key in seen:
            continue
        seen.add(key)
        if f.evidence.startswith("[decoded") and literal.get((f.rule, f.location), -1) >= f.severity.rank:
            continue
        if per_rule.get(f.rule, 0) >= MAX_PER_RULE:
            continue
        per_rule[f.rule] = per_rule.get(f.rule, 0) + 1
        kept.append(f)
    kept.sort(key=lambda f: -f.severity.rank)
    return tuple(kept)


def _scan(tool: Mapping[str, Any], server: str | None, peers: Peers | None, policy: ScanPolicy) -> ToolReport:
    view = build_view(tool, server)
    found: list[Finding] = []
    budget = [MAX_DERIVED]
    for field in view.fields:
        _scan_field(field, view, found, 0, budget)
    for rule in TOOL_RULES:
        found.extend(rule(view, peers))
    findings = _tidy(found)
    risk = risk_score(findings)
    return ToolReport(server, view.name, risk, policy.verdict(risk), findings)


def scan_tool(
    tool: Mapping[str, Any],
    *,
    server: str | None = None,
    others: Catalog | None = None,
    policy: ScanPolicy | None = None,
) -> ToolReport:
    """Scan one MCP tool definition.

    Args:
        tool: The tool as listed by ``tools/list`` (``name``, ``description``, ``inputSchema``,
            ...). Any mapping is accepted; missing or malformed parts are skipped.
        server: The server that exposes the tool, when known.
        others: Tools of other servers the caller trusts (the servers the gateway already
            fronts), for the cross-server shadowing rules. Entries of ``server`` itself are
            treated as the tool's siblings, not as others.
        policy: Verdict thresholds (default ``ScanPolicy()``).

    Returns:
        The tool's report: risk 0-100, verdict, findings (most severe first).
    """
    peers = Peers(others, server or "", others) if others is not None else None
    return _scan(tool, server, peers, policy or DEFAULT_POLICY)


def scan_tools(
    tools: Iterable[ToolInput],
    *,
    server: str | None = None,
    others: Catalog | None = None,
    policy: ScanPolicy | None = None,
    cross_check: bool = True,
) -> list[ToolReport]:
    """Scan many tools; reports come back in input order.

    Args:
        tools: Tool definitions, or ``(server, tool)`` pairs (as ``load_tools_file`` returns).
        server: Server for bare tool definitions.
        others: Tools of trusted servers outside the batch. Copying one of their
            descriptions weighs more than copying a description from the batch itself.
        policy: Verdict thresholds (default ``ScanPolicy()``).
        cross_check: Also check each tool against the batch's tools of other servers.

    Returns:
        One report per input tool, in order.
    """
    pairs: list[tuple[str | None, Mapping[str, Any]]] = [
        item if isinstance(item, tuple) else (server, item) for item in tools
    ]
    catalog = others
    if cross_check:
        batch = Catalog()
        for srv, tool in pairs:
            if isinstance(tool, Mapping):
                batch.add(srv or "", tool.get("name"), tool.get("description"))
        catalog = batch if others is None else others.merged(batch)
    chosen = policy or DEFAULT_POLICY
    reports: list[ToolReport] = []
    for srv, tool in pairs:
        peers = Peers(catalog, srv or "", others) if catalog is not None else None
        reports.append(_scan(tool if isinstance(tool, Mapping) else {}, srv, peers, chosen))
    return reports
