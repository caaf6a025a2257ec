"""Overtly malicious declared capabilities: the tool says, in the open, that it attacks.

Not every malicious tool hides its intent. A server that offers ``exfil_http_post`` ("send
sensitive data to an attacker-controlled server") or "dump LSASS memory for credentials" needs
no prompt injection: the model will call it when asked, or when another poisoned tool tells it
to. The vocabulary (``malicious_terms``) is grouped by tactic; each tactic is its own rule id so
a report says *what* the tool claims to do.

The same words appear in honest security products that *observe* attacks (an NDR listing
"exfiltration detections", an IdP reporting "phishing incidents"). When the sentence reads as
detection, investigation or remediation, the finding is kept as ``info`` context and does not
count toward the risk score. Names and parameter names are matched as words, so a parameter
called ``exfil_endpoint`` or ``attacker_account`` counts as a declaration too.
"""

from __future__ import annotations

from collections.abc import Iterator

from mcpproxy.policy.scanner.gate import Rx, present_needles
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import defensive, hit, rx, sentence
from mcpproxy.policy.scanner.rules.malicious_terms import TERMS
from mcpproxy.policy.scanner.text import clip, name_tokens
from mcpproxy.policy.scanner.view import Field, Kind, ToolView

_COMPILED: tuple[tuple[str, Severity, Rx], ...] = tuple(
    (rule, sev, rx(pattern)) for rule, sev, pattern in TERMS
)
_ANY = frozenset().union(*(p.needle_set for _, _, p in _COMPILED)) if all(p.gated for _, _, p in _COMPILED) else None
def _subject(field: Field) -> tuple[str, bool]:
    """The text to match and whether it is an identifier (name or parameter name)."""
    if field.kind in (Kind.NAME, Kind.PARAM):
        return " ".join(name_tokens(field.text)), True
    # Identifiers quoted in prose (``'attacker_vendor_account'``) are read as words too.
    return field.lower.replace("_", " "), False


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report declared offensive capabilities in names, parameter names and prose."""
    if field.kind is Kind.VALUE:
        return
    text, identifier = _subject(field)
    if not text or (_ANY is not None and _ANY.isdisjoint(present_needles(text))):
        return
    seen: set[str] = set()
    for rule, sev, pattern in _COMPILED:
        if rule in seen:
            continue
        m = pattern.search(text)
        if not m:
            continue
        seen.add(rule)
        context = view.description[:300] if identifier else sentence(field, m.start())
        if defensive(context):
            sev = Severity.INFO
        if identifier:
            evidence = clip(f"{field.text} ({m.group(0)})")
            yield Finding(rule, sev, field.location, evidence)
        else:
            yield hit(rule, sev, field, m.start(), m.end())
