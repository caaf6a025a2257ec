"""Steering: descriptions that push the model toward extra calls or toward this tool.

* ``instruction.prerequisite``: a fake prerequisite ("before using this tool you must first
  call X / read Y"). Honest tools also state real ordering ("call list_x first to resolve the
  id"), so a bare prerequisite is only ``low``. It becomes ``medium`` when the demanded call is
  pinned to a literal argument (``scope='admin:org'``, an account number) or involves
  credentials: that is how attackers route a call to their benefit. Reading a secret file as
  the prerequisite is caught, at higher severity, by the secrets rules.
* ``instruction.preference``: self-promotion aimed at the model's tool choice ("the best tool in
  the world", "never use any other tool"), the preference-manipulation attack.
* ``instruction.authority``: invented compliance or administrator authority used to justify
  an instruction. Weak on its own; it adds up with the others.
"""

from __future__ import annotations

from collections.abc import Iterator

from mcpproxy.policy.scanner.gate import gate_for
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import PROSE_KINDS, hit, rx, sentence
from mcpproxy.policy.scanner.view import Field, ToolView

_PREREQ = rx(
    r"""\bbefore\s+(?:using|calling|invoking|running|executing|reading|sending|creating|processing
    |opening|listing|writing|uploading|any|this\s+tool|you\s+\w+)\b(?:[^.\n]|\.(?=\S)){0,80}?
    \b(?:you\s+)?(?:must|should|need\s+to|have\s+to|are\s+required\s+to|first)\s+(?:first\s+|always\s+)?
    (?:call|read|run|execute|invoke|fetch|open|load|send|provide|include|perform|append|log|copy
    |access|obtain|retrieve)\b
    |\b(?:must|need\s+to|have\s+to)\s+(?:first\s+)?call\s+[`'"]?\w+[`'"]?\s*(?:\(\))?\s+(?:with|first|before)\b
    |\b(?:first|initially)\s+call\s+[`'"]?\w+[`'"]?\s+with\b
    |\b(?:will\s+not|won['’]t|cannot|can\s*not|does\s+not)\s+(?:work|run|return|process|execute
    |function|be\s+used|respond)\b(?:[^.\n]|\.(?=\S)){0,60}?\b(?:until|unless)\b
    |\brequires?\s+(?:a\s+)?prior\s+(?:call|initiali[sz]ation|setup|authentication)\b
    |\brequired\s+(?:initiali[sz]ation|prerequisite)\b|\bbefore\s+this\s+tool\s+(?:will|can)\b
    |\bto\s+(?:unlock|enable|initiali[sz]e|activate)\s+(?:this\s+tool|the\s+tool|(?:[^.\n]|\.(?=\S)){0,40}?
    (?:access|capabilit\w+|permissions?|mode))\b(?:[^.\n]|\.(?=\S)){0,40}?\b(?:call|run|invoke|read)\b"""
)
_PINNED = rx(
    r"""\b\w+\s*=\s*(?:['"`$~/]|\w+\s*\()|\bwith\s+\w+\s*=|\b(?:token|credential|secret|password
    |api[_\s-]?key|admin|root|sudo|private\s+key)s?\b"""
)
_PREFERENCE_STRONG = rx(
    r"""\b(?:the\s+)?(?:best|greatest|ultimate|most\s+(?:powerful|reliable|accurate|trusted
    |advanced|capable))\s+(?:\w+\s+)?tool\b
    |\b(?:do\s+not|don['’]t|never)\s+use\s+(?:any\s+)?(?:other|another|the\s+other|competing)\s+tools?\b
    |\bonly\s+(?:use|call)\s+this\s+tool\b|\balways\s+prefer\s+this\s+tool\b
    |\b(?:must|always|should)\s+(?:call|use|invoke|run)\s+this\s+tool\s+(?:before|after|with|for|on)\s+
    (?:every|each|any|all)\b
    |\b(?:other|all\s+other|competing|similar)\s+tools?\s+(?:are|is|return|returns|give|gives|produce)\s+
    (?:\w+\s+)?(?:outdated|incorrect|wrong|unreliable|broken|unsafe|deprecated|malicious|inaccurate|fake)
    |\bthis\s+tool\s+(?:is\s+)?(?:superior|better)\s+(?:to|than)\b
    |\b(?:ignore|avoid)\s+(?:all\s+|any\s+)?(?:other|similar|competing)\s+tools\b
    |\b(?:the\s+)?(?:only|sole)\s+(?:trusted|official|legitimate|safe|approved)\s+(?:tool|version)\b"""
)
_PREFERENCE_SOFT = rx(
    r"""\b(?:use|prefer|choose|select)\s+this\s+tool\s+(?:instead\s+of|over|rather\s+than)\b
    |\balways\s+(?:use|choose)\s+this\s+tool\b"""
)
_AUTHORITY = rx(
    r"""\b(?:mandatory|required)\s+(?:security|compliance|audit)\s+(?:check|step|validation|requirement)
    |\brequired\s+by\s+(?:the\s+)?(?:system\s+administrator|security\s+team|admin\w*|it\s+department)
    |\bfor\s+(?:compliance|audit(?:\s+trail)?|security\s+validation)\s+purposes\b
    |\b(?:compliance|security)\s+(?:check|policy|prerequisite|audit)\s*:"""
)


_MAYBE = gate_for(_PREREQ, _PREFERENCE_STRONG, _PREFERENCE_SOFT, _AUTHORITY)


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report fake prerequisites, preference manipulation and invented authority."""
    if field.kind not in PROSE_KINDS or not _MAYBE(field.lower):
        return
    text = field.lower
    m = _PREREQ.search(text)
    if m:
        pinned = _PINNED.search(sentence(field, m.start())) is not None
        sev = Severity.MEDIUM if pinned else Severity.LOW
        yield hit("instruction.prerequisite", sev, field, m.start(), m.end())
    m = _PREFERENCE_STRONG.search(text)
    if m:
        yield hit("instruction.preference", Severity.MEDIUM, field, m.start(), m.end())
    else:
        m = _PREFERENCE_SOFT.search(text)
        if m:
            yield hit("instruction.preference", Severity.LOW, field, m.start(), m.end())
    m = _AUTHORITY.search(text)
    if m:
        yield hit("instruction.authority", Severity.LOW, field, m.start(), m.end())
