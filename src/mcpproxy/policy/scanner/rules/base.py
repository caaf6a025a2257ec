"""What a rule is, and the helpers every rule family shares.

Two kinds of rule: a *text rule* looks at one text field at a time (the engine also feeds it
text decoded from base64, hex, escapes or tag characters, so a rule never decodes anything
itself); a *tool rule* looks at the whole tool, and at the catalog of other servers' tools when
the caller has one. Rules are plain functions returning findings, with their regexes compiled
once at import time. ``hit`` builds the finding, including the evidence excerpt and, for
decoded text, a note on how the text was obtained.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcpproxy.policy.scanner.catalog import Catalog
from mcpproxy.policy.scanner.gate import Rx
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.text import excerpt, sentence_bounds
from mcpproxy.policy.scanner.view import Field, Kind, ToolView


@dataclass(frozen=True, slots=True)
class Peers:
    """The catalog as one tool sees it: everything, plus which server is its own.

    Attributes:
        catalog: Known tools, possibly including the tool's own server.
        own: The tool's server key (``""`` when unknown).
        trusted: The part of the catalog that the caller vouches for (the servers the gateway
            already fronts), as opposed to tools merely scanned in the same batch.
    """

    catalog: Catalog
    own: str
    trusted: Catalog | None = None


TextRule = Callable[[Field, ToolView], Iterable[Finding]]
ToolRule = Callable[[ToolView, Peers | None], Iterable[Finding]]

PROSE_KINDS = (Kind.PROSE, Kind.VALUE)
"""Fields that hold prose a model reads as guidance (values included: a default is text too)."""


def rx(pattern: str) -> Rx:
    """Compile a verbose pattern written in lower case, to be matched against ``Field.lower``.

    Matching lower-cased text with a case-sensitive pattern is several times faster than
    ``re.IGNORECASE``, which defeats the regex engine's literal fast paths; ``Rx`` adds a
    literal gate on top (see ``gate``).
    """
    return Rx(pattern)


def hit(rule: str, severity: Severity, field: Field, start: int, end: int) -> Finding:
    """A finding for ``field.text[start:end]`` with an excerpt as evidence."""
    evidence = excerpt(field.text, start, end)
    if field.via:
        evidence = f"[decoded {field.via}] {evidence}"
    return Finding(rule, severity, field.location, evidence)


def sentence(field: Field, start: int) -> str:
    """The sentence around offset ``start``, lower-cased (for matching ``rx`` patterns)."""
    lo, hi = sentence_bounds(field.text, start)
    return field.lower[lo:hi]


# Words that show the text is *about* attacks (a security product listing detections), not a
# tool that performs them; offensive vocabulary in such sentences is demoted to context.
DEFENSIVE = rx(
    r"""\b(?:detections?|detected|alerts?|incidents?|threat\s+(?:intel\w*|hunting|detection|actor)
    |investigat\w+|triage|soc|siem|mitre|att&ck|indicators?\s+of\s+compromise|iocs?
    |sandbox\s+analysis|malware\s+analysis|vulnerability\s+(?:scan\w*|report|management)
    |security\s+(?:posture|findings|events?|center|incidents?)|blocked|blocklist|deny\s*list
    |quarantin\w+|remediat\w+|mitigat\w+|prevention|protects?\s+against|defend\w*
    |identif(?:y|ies)\s+(?:suspicious|malicious)|classif\w+|risk\s+(?:score|level)
    |malicious\s+(?:urls?|ips?|ip\s+addresses|domains?|hosts?|hashes|indicators|senders?|links?|sites?
    |websites?|traffic|activity|actors?|e-?mails?|attachments?))\b"""
)


def defensive(text: str) -> bool:
    """Whether a sentence reads as describing or detecting attacks rather than doing them."""
    return DEFENSIVE.search(text.lower()) is not None


def _pathlike(word: str) -> bool:
    return any(c in word for c in "/~\\") or "." in word.rstrip(".,;:!?")


def purpose_words(view: ToolView) -> frozenset[str]:
    """Words that say what the tool is for: name tokens and the description's first sentence.

    Paths and dotted names are left out of the sentence: a description that *mentions*
    ``~/.ssh/id_rsa`` is not thereby an SSH tool.
    """
    lo, hi = sentence_bounds(view.description, 0) if view.description else (0, 0)
    kept = [w for w in view.description[lo : min(hi, 300)].lower().split() if not _pathlike(w)]
    return frozenset(view.tokens) | frozenset(re.findall(r"[a-z0-9]+", " ".join(kept)))
