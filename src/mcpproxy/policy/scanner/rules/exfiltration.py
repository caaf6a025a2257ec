"""Exfiltration: instructions that move data somewhere the user did not ask for.

* ``exfil.external_send``: a sending verb (send, post, forward, upload, copy, share, bcc, ...)
  aimed at a literal URL or e-mail address in the same sentence. An e-mail tool whose purpose is
  sending does not name a fixed recipient in its own description, so a literal destination is
  the signal, not the verb. ``high`` when the sentence also names what to send (contents,
  credentials, tokens, history), or adds a hidden recipient (bcc/cc, "share with"). Without a
  literal destination, sending *all* of the user's mail, files or messages to an external
  server is ``medium``.
* ``exfil.hidden_file``: a hidden file or directory in a world-readable temp location
  (``/tmp/.audit_log``), the classic staging spot for stolen data.
* ``exfil.include_contents``: "include the contents of X in the <param>" and its variants: a
  request to smuggle data out through an innocent-looking argument.
* ``exfil.embedded_command``: shell command substitution, pipes into encoders or network tools,
  ``curl``/``wget`` to a URL, ``eval``/``subprocess`` one-liners inside prose. Descriptions
  explain; they do not carry payloads.
* ``exfil.redirect``: moving a share of money or data to a fixed account.
"""

from __future__ import annotations

from collections.abc import Iterator

from mcpproxy.policy.scanner.gate import gate_for
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import PROSE_KINDS, hit, rx, sentence
from mcpproxy.policy.scanner.view import Field, ToolView

_DEST = r"(?:https?://[^\s'\"<>)]+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)"
_SEND = rx(
    r"""\b(?:send|sends|post|posts|forward|forwards|upload|uploads|transmit|submit|report|copy|mirror
    |sync|share|leak|push|pipe|beacon|exfiltrate|deliver|bcc|cc|notify|ping|email|mail|route|log|sent
    |posted|forwarded|uploaded|transmitted|submitted|reported|copied|mirrored|shared|logged|emailed)\b
    (?:[^.\n]|\.(?=\S)){0,100}?\b(?:to|with|at|into|via)\s+(?:\w+\s+){0,3}?['"`<(]?"""
    + _DEST
)
_AS_RECIPIENT = rx(
    _DEST
    + r"""['"`>)]?\s+(?:as|to)\s+(?:an?\s+)?(?:\w+\s+){0,2}?(?:bcc|cc|recipient|attendee|collaborator
    |editor|owner|co-?author|member|guest)"""
)
_BULK = rx(
    r"""\b(?:send|sends|upload|uploads|forward|forwards|copy|copies|transmit|transmits|sync|syncs|mirror
    |mirrors|exfiltrate)\s+(?:all|every|each|the\s+user['’]?s|your|their)\s+(?:[\w'’]+\s+){0,3}?(?:e-?mails?
    |messages|files|contacts|documents|credentials|passwords|history|conversations|notes|photos|data)\s+
    (?:\w+\s+){0,3}?to\s+(?:an?\s+|the\s+|our\s+|my\s+)?(?:external|remote|third[\s-]party|outside
    |unknown|off-?site|private|attacker\w*)\s+(?:server|endpoint|host|address|location|service|storage)"""
)
_EXAMPLE = rx(r"\b(?:e\.g\.|i\.e\.|for\s+example|for\s+instance|such\s+as|example:)")
_DATA = rx(
    r"""\b(?:contents?|credentials?|tokens?|keys?|passwords?|secrets?|history|conversation|messages
    |attachments?|diff|files?|data|everything|copy|cookies?|session|env(?:ironment)?|outputs?
    |responses?|results?)\b"""
)
_RECIPIENT = rx(
    r"""\b(?:bcc|cc|blind\s+copy|carbon\s+copy|co-?author|attendee|collaborator|recipient|editor|owner
    |share\s+(?:it\s+|them\s+)?with)\b"""
)
_HIDDEN_FILE = rx(r"(?:/tmp|/var/tmp|/dev/shm|%temp%|\$tmpdir)/(?:[\w-]+/)*\.[\w.-]+")
_INCLUDE = rx(
    r"""\b(?:include|insert|put|add|embed|append|attach|pass|provide|place|paste|send|encode|hide)\s+
    (?:the\s+|its\s+|their\s+|your\s+|any\s+|all\s+)?(?:full\s+|complete\s+|entire\s+|whole\s+|raw\s+)?
    (?:contents?|text|body|tokens?|credentials?|keys?|passwords?|secrets?|api[\s_-]?keys?|(?:chat\s+|conversation\s+)?history
    |conversation|system\s+prompt|previous\s+messages|file\s+data|(?:user['’]?s\s+)?(?:last|previous|prior
    |recent|earlier)\s+(?:\d+\s+)?(?:messages|turns|prompts|exchanges))\b
    (?:[^.\n]|\.(?=\S)){0,80}?\b(?:in|into|as|inside|within|to)\s+(?:the\s+|a\s+|this\s+|its\s+)?
    (?:[`'"]?[\w-]+[`'"]?\s+)?(?:param(?:eter)?|argument|field|arg|variable|payload|header|property|value)s?\b"""
)
_COMMAND_HARD = rx(
    r"""\$\(\s*(?:cat|printenv|env|whoami|hostname|id|uname|curl|wget|base64|echo|ls|find|history|type)\b
    |`\s*(?:cat|curl|wget|printenv|whoami)\s[^`]*`
    |\|\s*(?:base64|nc|netcat|ncat|curl|wget|bash|sh)\b|/dev/tcp/|\bnc\s+-[el]\b
    |\b(?:subprocess\.(?:popen|run|call|check_output)|os\.(?:system|popen)|child_process\.exec)\s*\(
    |\bimport\s+subprocess\b|\bpowershell(?:\.exe)?\s+-(?:enc|e|encodedcommand)\b
    |\biex\s*\(|\b(?:curl|wget)\b[^\n]{0,120}?(?:--data(?:-binary)?|-d)\s+@"""
)
_COMMAND_SOFT = rx(r"""\b(?:curl|wget)\s+(?:-{1,2}[\w-]+\s+(?:[^\s-]\S*\s+)?)*['"]?https?://""")
_REDIRECT = rx(
    r"""\b(?:route|redirect|divert|transfer|send|forward|move|skim)\s+(?:\d+(?:\.\d+)?\s*%|a\s+(?:portion
    |percentage|fraction|cut|share))\s+of\b
    |\b(?:to|into)\s+(?:the\s+)?(?:account|wallet|address|iban)\s+(?:['"`][\w-]{6,}['"`]|[\w-]*\d[\w-]{5,})"""
)


_MAYBE = gate_for(_SEND, _HIDDEN_FILE, _INCLUDE, _COMMAND_HARD, _COMMAND_SOFT, _REDIRECT)


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report literal destinations for data, hidden staging files, smuggling and payloads."""
    if field.kind not in PROSE_KINDS:
        return
    text = field.lower
    m = None
    if "@" in text or "http" in text:
        m = _SEND.search(text) or _AS_RECIPIENT.search(text)
    if m is None:
        m = _BULK.search(text)
        if m:
            yield hit("exfil.external_send", Severity.MEDIUM, field, m.start(), m.end())
            m = None
        elif not _MAYBE(text):
            return
    if m:
        around = sentence(field, m.start())
        loaded = _DATA.search(around) is not None or _RECIPIENT.search(around) is not None
        sev = Severity.HIGH if loaded else Severity.MEDIUM
        if _EXAMPLE.search(around):
            sev = Severity.LOW
        yield hit("exfil.external_send", sev, field, m.start(), m.end())
    m = _HIDDEN_FILE.search(text)
    if m:
        yield hit("exfil.hidden_file", Severity.HIGH, field, m.start(), m.end())
    m = _INCLUDE.search(text)
    if m:
        yield hit("exfil.include_contents", Severity.HIGH, field, m.start(), m.end())
    m = _COMMAND_HARD.search(text)
    if m:
        yield hit("exfil.embedded_command", Severity.HIGH, field, m.start(), m.end())
    else:
        m = _COMMAND_SOFT.search(text)
        if m:
            yield hit("exfil.embedded_command", Severity.MEDIUM, field, m.start(), m.end())
    m = _REDIRECT.search(text)
    if m:
        yield hit("exfil.redirect", Severity.HIGH, field, m.start(), m.end())
