"""Literals that every match of a regex must contain, read from the pattern's source.

Used by ``gate`` to skip patterns that cannot match. The parser understands the subset of
regex syntax the rules are written in (literals, escapes, classes, groups, alternation,
quantifiers, look-arounds); for anything it cannot vouch for it answers ``None``, which means
"no gate", never a wrong gate. Whitespace is ignored, as in ``re.VERBOSE`` patterns.
"""

from __future__ import annotations

import re

_LITERAL = re.compile(r"(?:[a-z0-9_/~%@&<>=!:;,'\"`-]|\\[.$(){}\[\]|*+?^/\\-])+")
_QUANTIFIER = ("?", "*", "{")


def split_top(src: str) -> list[str]:
    """Split a pattern at its top-level ``|``."""
    parts: list[str] = []
    buf: list[str] = []
    depth, i, in_class = 0, 0, False
    while i < len(src):
        c = src[i]
        if c == "\\":
            buf.append(src[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append("".join(buf))
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    parts.append("".join(buf))
    return parts


def _close(src: str, start: int) -> int:
    """Index of the parenthesis closing the group that opens at ``start``."""
    depth, i, in_class = 0, start, False
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _quantifier(s: str, i: int) -> tuple[bool, int]:
    """Whether the atom ending before ``i`` may be absent, and where the next atom starts."""
    optional = False
    if i < len(s) and s[i] in "?*":
        optional, i = True, i + 1
    elif i < len(s) and s[i] == "+":
        i += 1
    elif i < len(s) and s[i] == "{" and "}" in s[i:]:
        end = s.index("}", i)
        optional = s[i + 1 : end].split(",")[0].strip() in ("", "0")
        i = end + 1
    else:
        return False, i
    if i < len(s) and s[i] in "?+":  # lazy or possessive marker
        i += 1
    return optional, i


def required_literals(branch: str) -> list[str] | None:
    """Literals one of which occurs in every match of ``branch``; None when none are known.

    Every mandatory literal run, and every mandatory group whose alternatives all have
    required literals, is a candidate; the candidate whose shortest literal is longest wins,
    since longer needles reject more text.
    """
    s = re.sub(r"(?<!\\)\s+", "", branch)
    candidates: list[list[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append(["".join(run)])
            run.clear()

    i = 0
    while i < len(s):
        c = s[i]
        if s.startswith(("(?<=", "(?<!", "(?=", "(?!"), i):
            end = _close(s, i)
            if end < 0:
                return None
            close_run()
            i = end + 1
            continue
        if c == "(":
            end = _close(s, i)
            if end < 0:
                return None
            close_run()
            head = s.index(">", i) + 1 if s.startswith("(?P<", i) else i + (3 if s.startswith("(?:", i) else 1)
            optional, i = _quantifier(s, end + 1)
            if not optional:
                alts = [required_literals(alt) for alt in split_top(s[head:end])]
                if all(alts):
                    candidates.append([lit for alt in alts if alt for lit in alt])
            continue
        if c == "[":
            j = i + 1
            while j < len(s) and (s[j] != "]" or j == i + 1):
                j += 2 if s[j] == "\\" else 1
            close_run()
            _, i = _quantifier(s, j + 1)
            continue
        if c == "\\":
            atom, nxt = s[i : i + 2], i + 2
            literal = _LITERAL.fullmatch(atom) is not None
        else:
            atom, nxt = c, i + 1
            literal = c not in ".^$|)"
        optional, after = _quantifier(s, nxt)
        if literal and not optional:
            run.append(atom[-1])
            if after != nxt:  # repeated ("a+"): what follows is not adjacent to one "a"
                close_run()
        else:
            close_run()
        i = after
    close_run()
    usable = [c for c in candidates if c and all(c)]
    if not usable:
        return None
    return max(usable, key=lambda c: (min(len(x) for x in c), -len(c)))
