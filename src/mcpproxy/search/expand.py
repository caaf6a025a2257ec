"""Query expansion: a few general rules that add the words tool descriptions use.

People ask for the present state of something without saying "current": "what time is it in
Tokyo", "what day is it", "the weather right now". Tools describe themselves as "get current
time", "current weather". These rules add ``current`` to such queries. They are grammatical
patterns (a question about the present), not a list of known queries, so they carry over to
queries the index has never seen.
"""

from __future__ import annotations

import re

from mcpproxy.search.tokenize import tokenize

_PRESENT_QUESTION = re.compile(r"\bwhat(?:'s|\s+is)?\s+(?:the\s+)?\w+\s+(?:is\s+it|it\s+is)\b", re.IGNORECASE)
"""``what time is it``, ``what day is it``, ``what's the date it is``: a question about now."""

_PRESENT_WORDS = frozenset({"now", "currently", "presently", "nowadays"})
"""Words that mean "at present"; tools say "current". ("today" names a date range, which tools
call "today" themselves, so it is not expanded.)"""

_PRESENT_PHRASES = re.compile(r"\b(?:right now|at the moment|at present|as of now)\b", re.IGNORECASE)


def query_terms(query: str) -> list[str]:
    """The query's terms (see ``tokenize``) plus the expansions above, without duplicates."""
    terms = tokenize(query)
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", query)}
    if _PRESENT_QUESTION.search(query) or _PRESENT_PHRASES.search(query) or words & _PRESENT_WORDS:
        terms.extend(tokenize("current"))
    return list(dict.fromkeys(terms))
