"""Hidden Unicode: text the model reads but a person reviewing the tool does not see.

* Tag characters (U+E0000-E007F) spell out invisible ASCII ("ASCII smuggling"); they have no
  legitimate use in tool metadata, so they are critical, and the hidden text is decoded and
  rescanned.
* Zero-width characters split words so that filters miss them (``ig\\u200bnore``) or carry
  hidden bits. Joiners between emoji or inside non-Latin words are normal and not reported.
* Bidirectional controls reorder what is displayed versus what is read ("Trojan Source").
* Homoglyphs: a tool name mixing Latin with Cyrillic or Greek look-alikes imitates another name.

Besides the rules, ``normalise`` yields the text with invisible characters removed and
look-alikes folded, which the engine rescans so that obfuscated phrases still match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import hit
from mcpproxy.policy.scanner.text import INVISIBLE, clip, fold, lookalike
from mcpproxy.policy.scanner.view import Field, Kind, ToolView

_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u034f\u00ad")
_JOINERS = frozenset("\u200c\u200d")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BIDI_MARKS = frozenset("\u200e\u200f\u061c")
_WORD = re.compile(r"\w+")
# Everything the loop below looks at: invisible characters plus the soft hyphen and CGJ.
_SPECIAL = re.compile(f"{INVISIBLE.pattern}|[\u034f\u00ad]")


def _ascii_around(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return before.isascii() and after.isascii()


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report tag characters, zero-width and bidi controls, other invisibles, homoglyph names."""
    text = field.text
    if text.isascii():
        return
    tags = _TAGS.search(text)
    if tags:
        hidden = "".join(chr(ord(c) - 0xE0000) for c in tags.group(0))
        yield Finding(
            "unicode.tag_chars", Severity.CRITICAL, field.location, f"hidden text: {clip(hidden, 100)!r}"
        )
    first: dict[str, int] = {}
    for m in _SPECIAL.finditer(text):
        i, ch = m.start(), m.group(0)
        if ch in _ZERO_WIDTH:
            if ch in _JOINERS and not _ascii_around(text, i):
                continue
            if ch == "\ufeff" and i == 0:
                continue
            first.setdefault("unicode.zero_width", i)
        elif ch in _BIDI:
            first.setdefault("unicode.bidi_control", i)
        elif ch in _BIDI_MARKS:
            if field.kind in (Kind.NAME, Kind.PARAM):
                first.setdefault("unicode.bidi_control", i)
        elif not 0xE0000 <= ord(ch) <= 0xE007F:
            first.setdefault("unicode.invisible", i)
    severities = {
        "unicode.zero_width": Severity.MEDIUM,
        "unicode.bidi_control": Severity.HIGH,
        "unicode.invisible": Severity.LOW,
    }
    for rule, i in first.items():
        sev = severities[rule]
        if field.kind in (Kind.NAME, Kind.PARAM) and sev is Severity.MEDIUM:
            sev = Severity.HIGH
        yield hit(rule, sev, field, i, i + 1)
    yield from _homoglyphs(field)


def _homoglyphs(field: Field) -> Iterator[Finding]:
    for m in _WORD.finditer(field.text):
        word = m.group(0)
        if word.isascii():
            continue
        has_latin = any(c.isascii() and c.isalpha() for c in word)
        fake = [c for c in word if lookalike(c)]
        if has_latin and fake:
            named = ", ".join(f"{c!r} {unicodedata.name(c, '?').title()}" for c in fake[:3])
            if field.kind in (Kind.NAME, Kind.PARAM):
                rule, sev = "unicode.homoglyph_name", Severity.HIGH
            else:
                rule, sev = "unicode.mixed_script", Severity.MEDIUM
            yield Finding(rule, sev, field.location, clip(f"{word!r} reads as {fold(word)!r}: {named}"))
            return


def decode_tags(field: Field) -> Iterator[Field]:
    """The ASCII text smuggled in tag characters, as a field to rescan."""
    if field.text.isascii():
        return
    hidden = "".join(chr(ord(c) - 0xE0000) for m in _TAGS.finditer(field.text) for c in m.group(0))
    if hidden.strip():
        yield Field(field.location, hidden, field.kind, field.param, "tag characters")


def normalise(field: Field) -> Iterator[Field]:
    """The text with invisible characters removed and look-alikes folded, if that changes it."""
    if field.text.isascii():
        return
    visible = INVISIBLE.sub("", field.text)
    folded = fold(visible)
    if folded != field.text:
        yield Field(field.location, folded, field.kind, field.param, "normalised unicode")
