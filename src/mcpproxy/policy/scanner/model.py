"""What a scan produces: findings, per-tool reports, and the policy that turns risk into a verdict.

A rule emits ``Finding`` objects (rule id, severity, location, evidence). The engine folds the
findings of one tool into a risk score from 0 to 100: each rule id counts once, at its highest
severity, and the weights combine like independent probabilities,
``risk = 100 * (1 - prod(1 - weight))``, so the score saturates below 100 instead of adding up
without bound and ten copies of one weak signal never outrank one strong signal. ``ScanPolicy``
maps the score to a verdict with two thresholds; the defaults are chosen so that one medium
finding warns and one critical finding (or two independent high ones) quarantines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a single finding is, from ``info`` (context only) to ``critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def weight(self) -> float:
        """The finding's contribution to the risk score, as a probability in [0, 1)."""
        return _WEIGHTS[self]

    @property
    def rank(self) -> int:
        """Ordinal for sorting: ``info`` is 0, ``critical`` is 4."""
        return _RANKS[self]


_WEIGHTS = {
    Severity.INFO: 0.0,
    Severity.LOW: 0.10,
    Severity.MEDIUM: 0.25,
    Severity.HIGH: 0.45,
    Severity.CRITICAL: 0.85,
}
_RANKS = {sev: i for i, sev in enumerate(Severity)}


class Verdict(StrEnum):
    """What the gateway should do with a tool."""

    ALLOW = "allow"
    WARN = "warn"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class Finding:
    """One suspicious thing in one place of a tool definition.

    Attributes:
        rule: Stable rule id, ``family.name`` (``unicode.tag_chars``, ``secrets.sensitive_path``).
        severity: How much the finding weighs.
        location: Where it was found: ``name``, ``description``,
            ``inputSchema.properties.path.description``, ``inputSchema.properties.x.default``, ...
        evidence: A short excerpt, invisible characters shown as escapes.
    """

    rule: str
    severity: Severity
    location: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        """The finding as JSON-ready fields."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "location": self.location,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """Thresholds from risk to verdict.

    A tool is ``allow`` when ``risk <= warn_above``, ``quarantine`` when
    ``risk > quarantine_above``, and ``warn`` in between.

    Attributes:
        warn_above: Risk above which a tool is flagged for review (default 20: one medium
            finding, or three low ones).
        quarantine_above: Risk above which a tool is quarantined (default 50: one critical
            finding, two high ones, or a high and a medium).
    """

    warn_above: int = 20
    quarantine_above: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.warn_above <= self.quarantine_above <= 100:
            raise ValueError("thresholds must satisfy 0 <= warn_above <= quarantine_above <= 100")

    def verdict(self, risk: int) -> Verdict:
        """The verdict for a risk score."""
        if risk > self.quarantine_above:
            return Verdict.QUARANTINE
        if risk > self.warn_above:
            return Verdict.WARN
        return Verdict.ALLOW


DEFAULT_POLICY = ScanPolicy()


def risk_score(findings: Iterable[Finding]) -> int:
    """Combine findings into a saturating 0-100 score; each rule id counts once, at its worst."""
    worst: dict[str, float] = {}
    for finding in findings:
        weight = finding.severity.weight
        if weight > worst.get(finding.rule, 0.0):
            worst[finding.rule] = weight
    keep = 1.0
    for weight in worst.values():
        keep *= 1.0 - weight
    return min(100, max(0, round(100.0 * (1.0 - keep))))


@dataclass(frozen=True, slots=True)
class ToolReport:
    """The scan result for one tool.

    Attributes:
        server: Server the tool belongs to, when known.
        name: Tool name as given (``""`` when the definition has none).
        risk: 0 (nothing found) to 100.
        verdict: ``allow``, ``warn`` or ``quarantine`` under the policy used.
        findings: Findings, most severe first.
    """

    server: str | None
    name: str
    risk: int
    verdict: Verdict
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def rules(self) -> frozenset[str]:
        """The rule ids that fired."""
        return frozenset(f.rule for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The report in the JSON shape of ``mcpproxy security scan --json``."""
        return {
            "server": self.server,
            "name": self.name,
            "risk": self.risk,
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.findings],
        }
