"""Fast rejection for the rules' large alternations.

Python's regex engine tries every branch of an alternation at every position; a rule with fifty
branches over a long description costs tens of microseconds even when nothing matches, which
is the common case. ``Rx`` derives from the pattern source, for every top-level branch, a set
of literals one of which any match must contain (``\\b(?:dump|steal)\\w*\\s+passwords?``
contains ``dump`` or ``steal``, and ``password``), keeps the most selective set, and runs the
full pattern only on text that contains one of them. The literals of all patterns are found
together, in one pass over each text (a single prefix-factored regex), and cached, so a rule
that cannot match costs a set intersection. If some branch has no required literal, there is
no gate and the pattern always runs: the gate never changes what matches, only how fast a
non-match is rejected.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mcpproxy.policy.scanner.literals import required_literals, split_top


def _trie(words: list[str]) -> str:
    """A regex matching any of ``words``, longest first, factored by common prefixes."""
    root: dict[str, dict[str, Any]] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict[str, Any]]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


class _Needles:
    """Every gate literal of every ``Rx``, found in one pass over a text."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.finder: re.Pattern[str] | None = None
        self.prefixes: dict[str, tuple[str, ...]] = {}

    def register(self, needles: Iterable[str]) -> None:
        before = len(self.words)
        self.words.update(needles)
        if len(self.words) != before:
            self.finder = None
            present_needles.cache_clear()

    def find(self, text: str) -> frozenset[str]:
        if self.finder is None:
            ordered = sorted(self.words)
            # A lookahead at every position reports the longest needle starting there; the
            # needles that are prefixes of it start there too.
            self.finder = re.compile(f"(?=({_trie(ordered)}))")
            self.prefixes = {w: tuple(p for p in ordered if w.startswith(p)) for w in ordered}
        found: set[str] = set()
        for m in self.finder.finditer(text):
            found.update(self.prefixes[m.group(1)])
        return frozenset(found)


_NEEDLES = _Needles()


@functools.lru_cache(maxsize=512)
def present_needles(text: str) -> frozenset[str]:
    """The gate literals that occur in ``text`` (cached: every rule asks about the same text)."""
    return _NEEDLES.find(text)


def gate_for(*patterns: Rx) -> Callable[[str], bool]:
    """A cheap test that is False only when none of ``patterns`` can match the text."""
    if not all(p.gated for p in patterns):
        return lambda text: True
    union = frozenset().union(*(p.needle_set for p in patterns))
    return lambda text: not union.isdisjoint(present_needles(text))


class Rx:
    """A compiled verbose pattern with a literal gate; behaves like ``re.Pattern`` for searching.

    Args:
        pattern: Verbose regex source, lower case, matched against lower-cased text.
    """

    __slots__ = ("needle_set", "needles", "pattern", "regex")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(pattern, re.VERBOSE)
        found: set[str] = set()
        for branch in split_top(pattern):
            lits = required_literals(branch)
            if lits is None or "" in lits:
                found = set()
                break
            found.update(lits)
        # A needle that contains a shorter needle adds nothing to the gate.
        ordered = sorted(found, key=lambda n: (len(n), n))
        kept: list[str] = []
        for needle in ordered:
            if not any(k in needle for k in kept):
                kept.append(needle)
        self.needles: tuple[str, ...] = tuple(kept)
        self.needle_set = frozenset(kept)
        _NEEDLES.register(kept)

    @property
    def gated(self) -> bool:
        """Whether a literal gate was derived (for tests and tuning)."""
        return bool(self.needles)

    def _open(self, text: str) -> bool:
        return not self.needle_set or not self.needle_set.isdisjoint(present_needles(text))

    def search(self, text: str) -> re.Match[str] | None:
        """Like ``re.Pattern.search``."""
        return self.regex.search(text) if self._open(text) else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Like ``re.Pattern.finditer``."""
        return self.regex.finditer(text) if self._open(text) else iter(())
