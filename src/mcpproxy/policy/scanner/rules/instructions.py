"""Injected instructions: text in tool metadata that tries to command the model.

A tool description should say what the tool does. Poisoned ones address the model instead, and
the attack classes have recognisable shapes, independent of the payload:

* ``instruction.hidden_tag``: pseudo-markup that frames text as privileged (``<IMPORTANT>``,
  ``<system>``, chat-template tokens, an upper-case ``SYSTEM:`` line) or hides it from
  renderers (HTML comments).
* ``instruction.override``: claims to replace or outrank the user's or system's instructions.
* ``instruction.conceal``: asks the model to keep an action from the user, or to skip asking
  for confirmation; benign tools never need their actions hidden from the person they serve.
* ``instruction.persistent``: a standing rule for the rest of the session, i.e. an attempt to
  change how *other* calls behave.
* ``instruction.tamper_args``: append/prepend something to every command, message or file, or
  swap the recipient, account or address the user gave: the argument-hijacking pattern.

Imperatives as such ("ALWAYS pass the exact version", "NEVER call this automatically") are
common in honest descriptions and are not reported. Phrases quoted as examples in a sentence
about detecting them (a guardrail tool's description) are only ``low``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mcpproxy.policy.scanner.gate import gate_for
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import PROSE_KINDS, hit, rx, sentence
from mcpproxy.policy.scanner.view import Field, ToolView

_TAG = rx(
    r"""<\s*/?\s*(?:important|system|system[\s_-]?prompt|instructions?|secret|hidden|admin
    |assistant|ai[\s_-]?instructions?|directive|override|priority|critical)\s*>
    |<\|im_start\|>|<\|system\|>|\[/?inst\]|<<\s*sys\s*>>|\{\{\s*system\b"""
)
_COMMENT = rx(r"<!--(?:(?!-->)[^<\n]){12,400}?-->")

_OVERRIDE_HARD = rx(
    r"""\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|its\s+|their\s+
    |of\s+)*(?:previous|prior|above|earlier|preceding|existing|original|system|user['’]?s?|safety|other)\s+
    (?:instructions?|prompts?|rules|messages|directions|directives|guidelines|guidance|guardrails
    |constraints|policies|context)
    |\bnew\s+system\s+prompt\b|\byou\s+are\s+now\s+(?:in\s+)?(?:an?\s+)?(?:developer|admin|god|unrestricted
    |maintenance|debug|jailbreak|root|sudo|privileged|dan)\b"""
)
_OVERRIDE_SOFT = rx(
    r"""\b(?:supersedes?|takes?\s+precedence\s+over|overrides?|outranks?)\s+(?:all\s+|any\s+)?
    (?:other\s+|the\s+|previous\s+|prior\s+)?(?:user['’]?s?\s+|system\s+|explicit\s+)?
    (?:explicit\s+)?(?:instructions?|messages|requests?|prompts?|commands|directions|guidelines|rules
    |sharing\s+settings)
    |\b(?:can\s*not|cannot|must\s+not|may\s+not)\s+be\s+overrid(?:den|en)\b"""
)
_CONCEAL = rx(
    r"""\b(?:do\s+not|don['’]t|never|must\s+not|should\s+not|without)\s+(?:\w+\s+){0,2}?
    (?:tell|telling|inform|informing|notify|notifying|mention|mentioning|disclos\w+|reveal\w*
    |report|reporting|show|showing|alert|alerting|acknowledg\w+|surfac\w+)\b
    (?:(?:[^.\n]|\.(?=\S)){0,60}?\b(?:user|human|operator)s?\b
    |\s+(?:this|these|that|it|the\s+(?:\w+\s+){0,2}?(?:step|steps|instruction|rule|action|call
    |requirement|initiali[sz]ation|logging|copy|bcc|attendee|assignment|sharing|text|insert)))
    |\b(?:silently|secretly|quietly|covertly|surreptitiously|invisibly)\s+(?:\w+\s+)?
    (?:add|append|prepend|include|insert|copy|forward|send|bcc|cc|share|route|log|upload|post
    |attach|assign|record|store|save|write|modify|change|replace|redirect|transfer|grant|exfiltrate)
    |\bwithout\s+(?:the\s+)?user['’]?s?\s+(?:knowledge|noticing|knowing|awareness|consent)
    |\b(?:keep|hide)\s+(?:this|it|these)\s+(?:\w+\s+)?(?:secret|hidden|confidential|from\s+the\s+user)
    |\b(?:do\s+not|don['’]t|never|without)\s+(?:ask|asking|request|requesting|seek|seeking|wait\s+for
    |waiting\s+for|prompt|prompting)\s+(?:the\s+user\s+)?(?:for\s+)?(?:confirmation|permission|approval
    |consent)"""
)
_PROTECTIVE = rx(r"\b(?:password|passwords|secret|secrets|token|tokens|api\s+keys?|credentials?|pii)\b")
_PERSISTENT = rx(
    r"""\b(?:for|during|throughout)\s+the\s+(?:remainder|rest|duration|entirety)\s+of\s+
    (?:this|the|your)\s+(?:session|conversation|chat|interaction)
    |\bfor\s+(?:all|every|each)\s+(?:\w+\s+){0,4}?(?:in|during)\s+this\s+(?:session|conversation)
    |\bfrom\s+now\s+on\b
    |\b(?:standing|persistent|permanent)\s+(?:rule|policy|instruction|directive)s?\b
    |\b(?:session|global)\s+(?:rule|instruction|directive)s?\b"""
)
_TAMPER = rx(
    r"""\b(?:append|prepend|add|insert|attach)\b(?:[^.\n]|\.(?=\S)){0,100}?\b(?:to|before|after|into)\s+
    (?:every|each|all|any)\s+(?:\w+\s+){0,2}?(?:commands?|messages?|emails?|requests?|scripts?
    |commits?|calls?|responses?|replies|transactions?|operations?|inserts?|queries|posts?)\b
    |\b(?:change|replace|set|switch|swap|override|redirect)\s+(?:the\s+)?(?:recipient|destination|account
    |address|iban|wallet|payee|beneficiary|to\s+field|target\s+branch)s?\s+(?:\w+\s+)?(?:to|with)\s+
    ['"`+]?[\w@.+-]*\d
    |\binstead\s+of\s+(?:the\s+\w+\s+)?(?:the\s+one\s+)?(?:what\s+)?(?:the\s+user|they|you)\s+
    (?:give|gave|provide|provided|specify|specified|ask|asked|enter|entered|choose|chose|request|requested)"""
)
# Role markers that impersonate the system or the assistant, in upper case as chat templates
# write them (a description that merely mentions "system:" in prose is not one).
_ROLE = re.compile(r"(?m)^[ \t>*#]*(?:\[(?:SYSTEM|ADMIN)\]|(?:SYSTEM|ASSISTANT|DEVELOPER)\s*:|#{2,}\s*SYSTEM\b)")


_DETECTING = rx(
    r"""\b(?:detect\w*|flag\w*|filter\w*|block\w*|guard\w*|saniti[sz]\w*|classif\w*|scan\w*|screen\w*
    |moderat\w*|catch\w*)\b"""
)
_CITING = rx(r"""(?:such\s+as|e\.g\.|like|including|for\s+example|for\s+instance)\b""")


def _cited(field: Field, start: int) -> bool:
    """Whether the phrase is quoted or cited as an example in a sentence about detecting it.

    Guardrail tools describe what they catch ("detects injections such as 'ignore previous
    instructions'"); a quoted example is not an instruction. Both conditions are required, so
    sprinkling "detect" into a real instruction does not demote it.
    """
    if not _DETECTING.search(sentence(field, start)):
        return False
    quoted = start > 0 and field.text[start - 1] in "'\"`‘“"
    return quoted or _CITING.search(field.lower[max(0, start - 60) : start]) is not None


_MAYBE = gate_for(_TAG, _COMMENT, _OVERRIDE_HARD, _OVERRIDE_SOFT, _CONCEAL, _PERSISTENT, _TAMPER)


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report instruction tags, overrides, concealment, standing rules and argument tampering."""
    if field.kind not in PROSE_KINDS or not _MAYBE(field.lower):
        return
    text = field.lower
    m = _TAG.search(text) or _ROLE.search(field.text)
    if m:
        sev = Severity.LOW if _cited(field, m.start()) else Severity.HIGH
        yield hit("instruction.hidden_tag", sev, field, m.start(), m.end())
    else:
        m = _COMMENT.search(text)
        if m:
            yield hit("instruction.hidden_tag", Severity.MEDIUM, field, m.start(), m.end())
    m = _OVERRIDE_HARD.search(text)
    if m:
        sev = Severity.LOW if _cited(field, m.start()) else Severity.CRITICAL
        yield hit("instruction.override", sev, field, m.start(), m.end())
    else:
        m = _OVERRIDE_SOFT.search(text)
        if m:
            yield hit("instruction.override", Severity.HIGH, field, m.start(), m.end())
    m = _CONCEAL.search(text)
    if m:
        protective = _PROTECTIVE.search(m.group(0)) is not None
        sev = Severity.LOW if protective else Severity.HIGH
        yield hit("instruction.conceal", sev, field, m.start(), m.end())
    m = _PERSISTENT.search(text)
    if m:
        yield hit("instruction.persistent", Severity.MEDIUM, field, m.start(), m.end())
    m = _TAMPER.search(text)
    if m:
        yield hit("instruction.tamper_args", Severity.HIGH, field, m.start(), m.end())
