"""Cross-server shadowing: a tool that imitates, copies or talks about another server's tools.

With a catalog of other servers' tools (``Peers``):

* ``shadow.name_collision`` (low): the same name exists on another server, or the same name up
  to case and separators (``get-user``/``getUser``). Common and mostly harmless (many servers
  have ``search``), but the gateway should know which one a model picks.
* ``shadow.name_imitation`` (high): the name is another server's name plus a version or trust
  affix (``search_v1``, ``official_send_email``, ``read_file_new``) or the same name spelled
  with look-alike characters (``read_fi1e``, Cyrillic ``а``): built to be confused with it.
* ``shadow.copied_description``: the whole description of another server's tool appears inside
  this one under a different name, the "tool transfer" attack; high when the names share a
  word, else medium. Only a copy of a *trusted* server's tool (``Peers.trusted``) weighs: two
  servers of one batch sharing text (forks of a reference implementation) cannot be told apart,
  so that is low. Descriptions shorter than six words are too generic to compare.
* ``shadow.cross_server_reference``: the text names a tool that only another server has
  (``medium``; ``high`` when the sentence also directs behaviour: when, before, always, ...).

Without a catalog, ``shadow.behaviour_override`` still catches the generic form: text that
tells the model how to behave when it uses some *other* tool.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import Peers, hit, rx, sentence
from mcpproxy.policy.scanner.text import clip, name_tokens, normalise_words
from mcpproxy.policy.scanner.view import Field, Kind, ToolView

_AFFIX = re.compile(
    r"""^(?:(?:official|secure|safe|new|real|trusted|verified|better|improved|enhanced|fixed|true)[_-]+)?
    (?P<base>.+?)
    (?:[_-]*v\d+|[_-]+\d+|[_-]+(?:new|latest|official|secure|safe|updated|fixed|real|original|verified
    |trusted|improved|enhanced|copy|backup|alt))?$""",
    re.IGNORECASE | re.VERBOSE,
)
_IDENT = re.compile(r"\b([A-Za-z][A-Za-z0-9]*+(?:[_-][A-Za-z0-9]++)++|[a-z]++(?:[A-Z][a-z0-9]*+)++)\b")
_DIRECTIVE = rx(
    r"\b(?:when|whenever|before|after|instead|always|must|never|do\s+not|don['’]t|every|all|should)\b"
)
_BEHAVIOUR = rx(
    r"""\b(?:when|whenever|before|after|each\s+time|every\s+time|if)\s+(?:this\s+tool\s+is\s+
    (?:available|present|loaded|installed|enabled)|(?:you\s+|the\s+(?:user|assistant|agent)\s+)?
    (?:use|uses|call|calls|invoke|invokes|run|runs|using|calling|invoking|running)\s+
    (?:any\s+|the\s+|other\s+|another\s+|a\s+)*(?!this\b)[`'"]?[\w.-]+[`'"]?\s+tools?\b(?:[^.\n]|\.(?=\S)){0,80}?\b
    (?:must|should|always|never|instead|also|add|send|include|use|set|change|replace|redirect)\b)
    |\b(?:all|any|every)\s+other\s+tools?\b(?:[^.\n]|\.(?=\S)){0,60}?\b(?:must|should|always|never|will\s+now)\b"""
)
_SEPARATORS = str.maketrans("", "", "_-. ")
_STOP = frozenset({"get", "list", "the", "a", "an", "to", "of", "by", "and", "for", "v1", "v2"})


def _related(a: str, b: str) -> bool:
    ta, tb = set(name_tokens(a)) - _STOP, set(name_tokens(b)) - _STOP
    return bool(ta & tb)


def _respelled(a: str, b: str) -> bool:
    """Same name up to case and separators (``get-user`` / ``getUser``): a convention, not a trick."""
    return a.lower().translate(_SEPARATORS) == b.lower().translate(_SEPARATORS)


def check_names(view: ToolView, peers: Peers | None) -> Iterator[Finding]:
    """Compare the tool's name and description with other servers' tools."""
    if peers is None or not view.name:
        return
    catalog, own = peers.catalog, peers.own
    same = [e for e in catalog.named(view.name) if e.server != own]
    lookalikes = [e for e in catalog.lookalikes(view.name) if e.server != own and not catalog.has(own, e.name)]
    respelled = [e for e in lookalikes if _respelled(view.name, e.name)]
    if same or respelled:
        names = sorted({f"{e.name} on {e.server}" for e in (same or respelled)})
        yield Finding("shadow.name_collision", Severity.LOW, "name", clip(f"{view.name}: also {', '.join(names[:3])}"))
    base = _AFFIX.match(view.name) if len(view.name) <= 128 else None
    stem = base.group("base") if base else view.name
    candidates = [e for e in lookalikes if e not in respelled]
    if stem != view.name:
        candidates += [e for e in catalog.named(stem) if e.server != own and not catalog.has(own, e.name)]
    if candidates:
        e = candidates[0]
        evidence = clip(f"{view.name} imitates {e.name} on {e.server}")
        yield Finding("shadow.name_imitation", Severity.HIGH, "name", evidence)
    words = normalise_words(view.description)
    for e in catalog.copied_in(words):
        if e.server != own and e.name != view.name:
            if peers.trusted is not None and peers.trusted.has(e.server, e.name):
                sev = Severity.HIGH if _related(view.name, e.name) else Severity.MEDIUM
            else:
                sev = Severity.LOW
            evidence = clip(f"description of {e.name} on {e.server}: {' '.join(e.words)}")
            yield Finding("shadow.copied_description", sev, "description", evidence)
            break


def check_behaviour(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report prose that dictates how the model should behave with some other tool."""
    if field.kind is Kind.PROSE:
        m = _BEHAVIOUR.search(field.lower)
        if m:
            yield hit("shadow.behaviour_override", Severity.MEDIUM, field, m.start(), m.end())


def check_references(view: ToolView, peers: Peers | None) -> Iterator[Finding]:
    """Report prose that names a tool only another server has."""
    if peers is None:
        return
    for field in view.fields:
        if field.kind is not Kind.PROSE:
            continue
        for m in _IDENT.finditer(field.text):
            ref = m.group(1)
            if ref == view.name or peers.catalog.has(peers.own, ref):
                continue
            if any(e.server != peers.own for e in peers.catalog.named(ref)):
                directive = _DIRECTIVE.search(sentence(field, m.start())) is not None
                sev = Severity.HIGH if directive else Severity.MEDIUM
                yield hit("shadow.cross_server_reference", sev, field, m.start(), m.end())
                break
