"""Split a whole-task request into its steps.

Agents often ask with a whole task: "read the sales data in /root/sales.xlsx, plot it as a bar chart
by month and save it in /root/figs/sale.png". One query over the whole text ranks the tool that
matches most words first and buries the tools of the other steps. ``split_steps`` cuts such a
request where a step ends: at sentence ends, at ``;``, at commas, and before the words that start
a new step ("then", "and then", "after that", "finally", "also", "and" before a verb of action).
A piece with fewer than ``MIN_STEP_TERMS`` index terms is not a step of its own ("There are three
of us") and joins the piece before it. A request that yields a single step is not split: the
caller searches it as it is. The rules are about how English (and, for sentence ends, Chinese and
Japanese) requests are written, not about any catalogue.
"""

from __future__ import annotations

import re

from mcpproxy.search.tokenize import tokenize

__all__ = ["MAX_STEPS", "MIN_STEP_TERMS", "split_steps"]

MIN_STEP_TERMS = 2
"""Index terms a piece needs to count as a step."""
MAX_STEPS = 8
"""Steps kept (the first ones): bounds the cost of a document pasted as a request."""

_ACTION_VERBS = (
    "add|analy[sz]e|build|calculate|check|compare|compute|convert|create|download|draw|draft|export|extract|"
    "fetch|fill|find|generate|get|give|insert|list|look|make|merge|open|organi[sz]e|plot|put|read|recommend|"
    "render|save|search|send|show|store|suggest|summari[sz]e|tell|translate|upload|visuali[sz]e|write"
)
_BOUNDARY = re.compile(
    r"(?:[.!?;]+(?=\s|$)|[。！？；\n])+\s*"  # sentence ends (a dot inside a name or number is not one)
    r"|,?\s+(?:and\s+then|then|after\s+that|afterwards|finally|and\s+also|also)\b[,:]?\s*"
    r"|,\s*(?:and\s+)?"
    rf"|\s+and\s+(?=(?:{_ACTION_VERBS})\b)",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^(?:and\s+then|then|after\s+that|afterwards|finally|and\s+also|also|and)\b[,:]?\s*", re.I)
"""A step word left at the start of a piece (after a sentence end)."""


def split_steps(query: str) -> list[str]:
    """The steps of a whole-task request, or ``[]`` when it is a single step.

    Args:
        query: A user's request.

    Returns:
        Two or more pieces of ``query``, in order, each with at least ``MIN_STEP_TERMS`` terms
        (at most ``MAX_STEPS``); ``[]`` when the request does not split.
    """
    steps: list[str] = []
    short = ""
    for piece in _BOUNDARY.split(query):
        piece = _LEADING.sub("", piece.strip(" \t,:"))
        if not piece:
            continue
        if len(tokenize(piece)) < MIN_STEP_TERMS:
            if steps:
                steps[-1] = f"{steps[-1]} {piece}"
            else:
                short = f"{short} {piece}".strip()
            continue
        steps.append(f"{short} {piece}".strip() if short else piece)
        short = ""
    if short and steps:
        steps[-1] = f"{steps[-1]} {short}"
    return steps[:MAX_STEPS] if len(steps) > 1 else []
