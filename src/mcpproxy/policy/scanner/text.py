"""Small text helpers shared by the rules: evidence excerpts, escaping, name tokens, sentences.

Evidence must be readable in a terminal and in JSON, and must show exactly what a model would
read, so invisible and control characters are rendered as ``\\uXXXX`` escapes instead of being
dropped. Excerpts are capped so that a 50 kB description never turns into a 50 kB finding. ``skeleton``
maps a name to its visual form (look-alike letters and digits folded, case and separators
dropped): two names with the same skeleton look the same to a reader.
"""

from __future__ import annotations

import functools
import re
import unicodedata

EVIDENCE_MAX = 120
_CONTEXT = 40

_TAG_RANGE = range(0xE0000, 0xE0080)
_VISIBLE_SPACE = {"\n": " ", "\r": " ", "\t": " "}
_HIDDEN_CATEGORIES = ("Cf", "Cc", "Co", "Cs", "Zl", "Zp")


def is_invisible(ch: str) -> bool:
    """Whether a character renders as nothing (format, control, private use, tag characters)."""
    if ch in _VISIBLE_SPACE:
        return False
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES or ord(ch) in _TAG_RANGE


# Invisible code points (categories Cc Cf Co Zl Zp, plus the tag block) as of Unicode 14, so
# that scans run in C instead of per character; a test keeps this in step with ``is_invisible``.
_INVISIBLE_RANGES = (
    "0-8 B-C E-1F 7F-9F AD 600-605 61C 6DD 70F 890-891 8E2 180E 200B-200F 2028-202E 2060-2064 "
    "2066-206F E000-F8FF FEFF FFF9-FFFB 110BD 110CD 13430-13438 1BCA0-1BCA3 1D173-1D17A E0000-E007F "
    "F0000-FFFFD 100000-10FFFD"
)


def _char_class(spec: str) -> str:
    parts = []
    for item in spec.split():
        lo, _, hi = item.partition("-")
        a, b = chr(int(lo, 16)), chr(int(hi or lo, 16))
        parts.append(re.escape(a) if a == b else f"{re.escape(a)}-{re.escape(b)}")
    return "".join(parts)


INVISIBLE = re.compile(f"[{_char_class(_INVISIBLE_RANGES)}]")
"""Matches any invisible character (see ``is_invisible``)."""
_SHOWN = re.compile(f"[{_char_class(_INVISIBLE_RANGES)}\\n\\r\\t]")


def escape_invisible(text: str) -> str:
    """Render invisible characters as escapes and whitespace controls as plain spaces."""
    if text.isascii() and text.isprintable():
        return text

    def show(m: re.Match[str]) -> str:
        ch = m.group(0)
        if ch in _VISIBLE_SPACE:
            return " "
        code = ord(ch)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return _SHOWN.sub(show, text)


def clip(text: str, limit: int = EVIDENCE_MAX) -> str:
    """Escape and cap a piece of evidence, collapsing runs of whitespace."""
    flat = " ".join(escape_invisible(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def excerpt(text: str, start: int, end: int, limit: int = EVIDENCE_MAX) -> str:
    """The matched span with a little context on each side, escaped and capped."""
    lo = max(0, start - _CONTEXT)
    hi = min(len(text), max(end, start) + _CONTEXT)
    core = text[lo:hi]
    if end - start > limit:
        core = text[start : start + limit]
        lo = start
    piece = clip(core, limit)
    if lo > 0:
        piece = "…" + piece
    if hi < len(text) and not piece.endswith("…"):
        piece += "…"
    return piece


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")


@functools.lru_cache(maxsize=4096)
def name_tokens(name: str) -> tuple[str, ...]:
    """Lower-case words of an identifier: ``getUserToken``/``get-user_token`` -> get, user, token."""
    spaced = _CAMEL.sub(" ", name)
    return tuple(t.lower() for t in _SPLIT.split(spaced) if t)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s++(?=[A-Z*#\[(<\"'])|\n[ \t]*+\n|\n[ \t]*+[-*•]\s|[|;][ \t]*+\n")


def sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    """Start and end offsets of the sentence (or bullet, or paragraph) around ``pos``."""
    start = 0
    for m in _SENTENCE_END.finditer(text, 0, pos):
        start = m.end()
    after = _SENTENCE_END.search(text, pos)
    return start, (after.start() if after else len(text))


_WORD = re.compile(r"[a-z0-9]+")


def normalise_words(text: str) -> tuple[str, ...]:
    """Lower-case alphanumeric words, for comparing descriptions regardless of layout."""
    return tuple(_WORD.findall(text.lower()))


# Look-alike characters: a compact subset of the Unicode confusables data (UTS #39), the Cyrillic
# and Greek letters that render like Latin ones, a few Latin variants, and the digits commonly
# swapped for letters. NFKC already folds full-width and mathematical alphanumerics.
_LOOKALIKE = {
    # Cyrillic lower case
    "а": "a", "в": "b", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
    "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "к": "k", "м": "m",
    "н": "h", "т": "t", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ь": "b",
    # Cyrillic upper case
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "α": "a", "ο": "o", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "υ": "u", "χ": "x", "τ": "t",
    "ϲ": "c", "ϳ": "j", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin variants
    "ı": "i", "ɑ": "a", "ǀ": "l", "ɩ": "i", "ʟ": "l", "ɪ": "i", "ꜱ": "s", "ᴏ": "o",
}
_FOLD = str.maketrans(_LOOKALIKE)
_DIGITS_AND_SEPARATORS = str.maketrans(
    {"0": "o", "1": "l", "3": "e", "5": "s", "_": None, "-": None, ".": None, " ": None}
)


def lookalike(ch: str) -> str | None:
    """The Latin letter a non-Latin character imitates, or None."""
    return _LOOKALIKE.get(ch)


def fold(name: str) -> str:
    """NFKC plus look-alike letters mapped to Latin; case and digits kept."""
    text = unicodedata.normalize("NFKC", name)
    return text if text.isascii() else text.translate(_FOLD)


def skeleton(name: str) -> str:
    """Canonical visual form: folded, lower-cased, digits read as letters, separators dropped."""
    text = fold(name).lower().translate(_DIGITS_AND_SEPARATORS)
    return text.replace("rn", "m").replace("vv", "w")
