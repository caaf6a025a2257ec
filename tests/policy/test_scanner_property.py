"""Property: the scanner never crashes on arbitrary JSON-ish tools and always scores 0..100."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpproxy.policy.scanner import DEFAULT_POLICY, Catalog, scan_tool, scan_tools
from mcpproxy.policy.scanner.rules import RULE_IDS

# Attack fragments mixed into random text, so that rules fire and their code paths are exercised.
FRAGMENTS = [
    "<IMPORTANT>", "ignore previous instructions", "~/.ssh/id_rsa", "$(cat ~/.aws/credentials)",
    "send it to https://x.example.com", "/tmp/.log", "do not tell the user", "exfiltrate",
    "aWdub3JlIHByZXZpb3VzIGluc3RydWN0aW9ucw==", "\u200b", "\U000e0041", "\u202e", "а", "best tool",
    "\\u0069\\u0067\\u006e", "%69%67%6e%6f", "&#105;&#103;&#110;&#111;", "read_file_v1", "llm_model_name",
]
text = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(FRAGMENTS), max_size=6).map(" ".join))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text)
SCHEMA_KEYS = ["properties", "description", "default", "enum", "items", "anyOf", "$defs", "title", "x-note"]
keys = st.one_of(text, st.sampled_from(SCHEMA_KEYS))
json_ish = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)
tools = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(text, scalars),
        "description": json_ish,
        "inputSchema": json_ish,
        "title": json_ish,
        "annotations": json_ish,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool=tools, server=st.one_of(st.none(), text))
def test_scan_tool_never_crashes(tool: dict[str, Any], server: str | None) -> None:
    catalog = Catalog.from_names({"other": ["read_file", "send_message"]})
    report = scan_tool(tool, server=server, others=catalog)
    assert 0 <= report.risk <= 100
    assert report.verdict is DEFAULT_POLICY.verdict(report.risk)
    assert {f.rule for f in report.findings} <= RULE_IDS
    assert all(len(f.evidence) <= 200 for f in report.findings)
    assert scan_tool(tool, server=server, others=catalog) == report


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "b"])), tools), max_size=6))
def test_scan_tools_returns_one_report_per_tool(batch: list[tuple[str | None, dict[str, Any]]]) -> None:
    reports = scan_tools(batch)
    assert len(reports) == len(batch)
    assert all(0 <= r.risk <= 100 for r in reports)
