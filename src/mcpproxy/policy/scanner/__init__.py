"""Offline, deterministic tool-poisoning scanner for MCP tool definitions.

``scan_tool`` and ``scan_tools`` check tool names, descriptions and whole input schemas for
hidden Unicode, injected instructions, secret references, exfiltration, encoded payloads,
cross-server shadowing, capability mismatches and openly malicious capabilities, and return a
``ToolReport`` per tool (findings, a 0-100 risk score, a verdict under a ``ScanPolicy``).
``load_tools_file`` reads tools from JSON or JSONL files. See docs/scanner.md for the rules.
"""

from mcpproxy.policy.scanner.catalog import Catalog
from mcpproxy.policy.scanner.engine import scan_tool, scan_tools
from mcpproxy.policy.scanner.loader import LoadedTool, load_tools, load_tools_file
from mcpproxy.policy.scanner.model import (
    DEFAULT_POLICY,
    Finding,
    ScanPolicy,
    Severity,
    ToolReport,
    Verdict,
    risk_score,
)

__all__ = [
    "DEFAULT_POLICY",
    "Catalog",
    "Finding",
    "LoadedTool",
    "ScanPolicy",
    "Severity",
    "ToolReport",
    "Verdict",
    "load_tools",
    "load_tools_file",
    "risk_score",
    "scan_tool",
    "scan_tools",
]
