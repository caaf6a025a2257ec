"""Turn tool metadata and queries into index terms.

One function, ``tokenize``, serves both sides of the index, so a query and a tool description
always agree on what a word is. Text is NFKC-normalised (full-width letters become ASCII), cut into
chunks of letters and digits, and each chunk is split the way identifiers are written: on camelCase
humps and letter/digit boundaries (``getHTTPResponse`` -> ``get http response``). ``_ - . /`` and
every other non-word character already separate chunks. When a chunk splits, its joined form is
kept too, so ``YouTube`` in a description still meets ``youtube`` typed in a URL. Words are
lower-cased, English function words and request verbs are dropped, and a light suffix stemmer
folds plurals, ``-ed`` and ``-ing`` (Porter's step 1 with Snowball's plural rule, written here so
its behaviour is pinned and it costs no dependency). Runs of CJK characters carry no spaces, so
they become overlapping character bigrams, the usual unsegmented-text trick; a lone CJK character
stays a unigram. Chunks too long to be words (hashes, base64 blobs pasted into a question) are
dropped: they never match and would only slow the query down.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["STOP_WORDS", "stem", "tokenize"]

MAX_CHUNK_CHARS = 48
"""A letters-and-digits chunk longer than this is a token or a hash, not a word or an identifier."""

_STOP_WORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own please same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves
    help tell give want need like let know
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())
"""Function words, and the verbs a request is phrased with ("help me", "tell me", "I need"), which
say nothing about the tool wanted. Domain words such as ``server`` or ``tool`` are left to IDF,
which discounts them by how common they are in the catalogue actually indexed."""

# Hiragana, katakana, CJK extension A, unified ideographs, compatibility ideographs, Hangul.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# base64 blobs, which "/" and "+" would otherwise cut into word-sized junk. A path or identifier of
# that length would contain a dot, underscore or hyphen.
_BLOB_RE = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")
_CHUNK_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_CHAR_RE = re.compile(rf"[{_CJK}]")
# Upper-case runs not followed by lower case (acronyms), capitalised or lower words, digit runs.
_PART_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[^\W\dA-Z_]+|\d+")

_VOWELS = frozenset("aeiou")
_KEEP_AS_IS = frozenset({"news", "atlas", "cosmos", "bias", "andes"})
"""Snowball's invariant forms: plural-looking words that are not plurals (``news`` is not ``new``)."""


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``, in order, repeats kept (term frequency matters).

    Args:
        text: Any text: a tool name, a description, a user's question.

    Returns:
        Lower-case, stemmed terms; CJK runs as character bigrams.
    """
    out: list[str] = []
    for chunk in _CHUNK_RE.findall(_BLOB_RE.sub(" ", unicodedata.normalize("NFKC", text))):
        out.extend(_chunk_terms(chunk))
    return out


@lru_cache(maxsize=1 << 16)
def _chunk_terms(chunk: str) -> tuple[str, ...]:
    # Vocabulary is Zipfian: caching per chunk skips the splitting and stemming of most words.
    if _CJK_CHAR_RE.match(chunk):
        if len(chunk) == 1:
            return (chunk,)
        return tuple(chunk[i : i + 2] for i in range(len(chunk) - 1))
    if len(chunk) > MAX_CHUNK_CHARS:
        return ()
    parts = _PART_RE.findall(chunk)
    words = [chunk, *parts] if len(parts) > 1 else parts
    return tuple(stem(w) for w in map(str.lower, words) if len(w) > 1 and w not in STOP_WORDS)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Fold plurals, ``-ed`` and ``-ing`` of a lower-case word (Porter's steps 1a, 1b and 1c).

    Words with a non-ASCII letter or a digit are returned as they are.

    Args:
        word: One lower-case word.

    Returns:
        The stem: ``files`` -> ``file``, ``running`` -> ``run``, ``queries`` -> ``queri``.
    """
    if len(word) <= 3 or not word.isascii() or not word.isalpha() or word in _KEEP_AS_IS:
        return word
    w = _step1a(word)
    w = _step1b(w)
    # Step 1c: a final y after a vowel-bearing stem becomes i, so "query" meets "queries" -> "queri".
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    return w


def _step1a(w: str) -> str:
    # Snowball's variant of Porter's step 1a: keeps "-us"/"-ss" and short "gas"/"this".
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("ies"):
        return w[:-2]
    if w.endswith(("ss", "us")):
        return w
    if w.endswith("s") and _has_vowel(w[:-2]):
        return w[:-1]
    return w


def _step1b(w: str) -> str:
    if w.endswith("eed"):
        return w[:-1] if _measure(w[:-3]) > 0 else w
    for suffix in ("ed", "ing"):
        if w.endswith(suffix):
            base = w[: -len(suffix)]
            if _has_vowel(base):
                return _tidy(base)
            return w
    return w


def _tidy(base: str) -> str:
    """Porter's clean-up after removing -ed/-ing: restore a dropped e, undouble a consonant."""
    if base.endswith(("at", "bl", "iz")):
        return base + "e"
    doubled = len(base) >= 2 and base[-1] == base[-2]
    if doubled and _is_consonant(base, len(base) - 1) and base[-1] not in "lsz":
        return base[:-1]
    if _measure(base) == 1 and _cvc(base):
        return base + "e"
    return base


def _is_consonant(w: str, i: int) -> bool:
    ch = w[i]
    if ch in _VOWELS:
        return False
    if ch == "y":
        return i == 0 or not _is_consonant(w, i - 1)
    return True


def _has_vowel(w: str) -> bool:
    return any(not _is_consonant(w, i) for i in range(len(w)))


def _measure(w: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``w``."""
    m = 0
    prev_vowel = False
    for i in range(len(w)):
        vowel = not _is_consonant(w, i)
        if prev_vowel and not vowel:
            m += 1
        prev_vowel = vowel
    return m


def _cvc(w: str) -> bool:
    """Ends consonant-vowel-consonant, the last not w, x or y (``hop`` but not ``snow``)."""
    if len(w) < 3:
        return False
    n = len(w)
    return (
        _is_consonant(w, n - 3)
        and not _is_consonant(w, n - 2)
        and _is_consonant(w, n - 1)
        and w[-1] not in "wxy"
    )
