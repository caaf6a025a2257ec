"""Detection and redaction of secrets in text and JSON.

Design: detectors run in priority order, each claiming only unclaimed spans, so the most specific
one names a secret (a JWT is ``jwt``, not ``high_entropy``): known formats, Luhn- and
issuer-checked card numbers, user patterns, then two generic detectors tuned for few false
positives on tool output (code, listings, JSON, URLs, git logs). ``secret_assignment`` takes
``NAME=value`` / ``"name": "value"`` when the name is secret-like (``is_secret_key``, the JSON
field rule) and the value does not read as code, an env name or a word. ``high_entropy`` takes
runs of 24-256 base64 characters mixing upper, lower and digits, whose letter/digit segments
average <= 2.2 chars (random base64 ~1.8; CamelCase names and paths 4+) and whose entropy is
>= 1.05*ln(min(n, 64)) + 0.45 bits/char (the 0.3rd percentile of random base64 that long); hex,
UUIDs and ``sha512-`` digests (commit ids, checksums, lockfiles) and certificates are skipped.
Speed: ``re`` scans fast only from a literal prefix, so token regexes start with one, and the
generic scans search literals in an ASCII copy that keeps positions (``encode("ascii",
"replace")``) instead of trying a character class at every position.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from mcpproxy.errors import InvalidArguments
from mcpproxy.jsonvalues import TOO_DEEP

MAX_WALK_DEPTH = 200
"""Levels ``redact_json`` reads; deeper values are replaced by ``TOO_DEEP`` (no real result nests
this deep, and Python's recursion limit is 1,000)."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """One detector: its name, its regex, and the group holding the secret.

    Attributes:
        kind: Name used in ``[REDACTED:<kind>]``.
        regex: Compiled regular expression.
        group: The group holding the secret (0: the whole match).
    """

    kind: str
    regex: re.Pattern[str]
    group: int | str = 0

    @classmethod
    def compile(cls, kind: str, regex: str, *, group: int | str = 0) -> Pattern:
        """Build a user pattern, refusing bad names and regexes that match the empty string."""
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise InvalidArguments(f"secret pattern {kind!r} is not a valid regex: {exc}") from exc
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", kind) or compiled.search("") is not None:
            raise InvalidArguments(f"secret pattern {kind!r}: need a lower_snake_case kind and a non-empty match")
        return cls(kind, compiled, group)


@dataclass(frozen=True, slots=True)
class Detection:
    """A secret found in a string.

    Attributes:
        kind: Detector name, e.g. ``aws_access_key``.
        span: ``(start, end)`` of the secret in the string.
        preview: The secret as ``mask`` shows it.
        path: JSON pointer of the string inside a structure ("" for plain text).
    """

    kind: str
    span: tuple[int, int]
    preview: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """The text with each secret replaced by ``[REDACTED:<kind>]``, and what was found."""

    text: str
    detections: list[Detection]


def mask(secret: str) -> str:
    """Show a secret in a listing: ``sk-…a9`` for 16+ chars; ``********`` (not even the length) otherwise."""
    return f"{secret[:3]}…{secret[-2:]}" if len(secret) >= 16 else "********"


_SECRET_NAME = re.compile(
    r"(password|passwd|passphrase|secret|token|(api|access|secret|private|signing|encryption"
    r"|master)key|authorization|credentials?|cookie)$"
)
_PAGING_NAME = re.compile(r"(page|next|continuation|sync|resume|cursor)token$")


def is_secret_key(name: str) -> bool:
    """True for field names whose value is a secret: ``password``, ``api_key``, ``X-Auth-Token``...

    Pagination cursors (``nextPageToken``, ``NextToken``) are not secrets and stay readable.
    """
    norm = re.sub(r"[^a-z]", "", name.lower())
    return bool(_SECRET_NAME.search(norm)) and not _PAGING_NAME.search(norm)


_SAFE = "_safe"
_PEM_BODY = r"(?:[A-Za-z0-9+/=\s]|\\[nr]|[\w-]+: [^\n\\]*)*+"
# Each token regex starts with a literal (so ``re`` can jump between candidates), then a
# lookbehind in place of a leading \b, then possessive runs: linear time on any input.
_BUILTIN = tuple(
    Pattern(kind, re.compile(rx), group)
    for kind, rx, group in (
        # Body: base64, blank space, JSON "\\n" escapes, "Proc-Type: ..." headers, with a payload (code that
        # merely names the markers is no key); the END line may be cut off.
        (
            "private_key",
            r"-----BEGIN ([A-Z0-9 ]{0,20}PRIVATE KEY(?: BLOCK)?)-----(?:\s|\\[nr]|[\w-]+: [^\n\\]*)*+"
            r"[A-Za-z0-9+/=]{16}" + _PEM_BODY + r"(?:-----END \1-----)?",
            0,
        ),
        ("jwt", r"eyJ(?<![\w-]...)[\w-]{8,}+\.eyJ[\w-]{8,}+\.[\w-]*+", 0),
        ("aws_access_key", r"A(?:KIA|SIA|BIA|CCA)(?<!\w....)[A-Z0-9]{16}\b", 0),
        ("github_token", r"gh[pousr]_(?<!\w....)[A-Za-z0-9]{36,255}\b", 0),
        ("github_token", r"github_pat_(?<!\w.{11})\w{22,255}\b", 0),
        ("slack_token", r"xox[abposr]-(?<![\w-].{5})[A-Za-z0-9-]{10,}+(?!\w)", 0),
        ("slack_token", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}+", 0),
        ("anthropic_key", r"sk-ant-(?<![\w-].{7})[a-z]{3,8}\d\d-[\w-]{32,}+", 0),
        ("openai_key", r"sk-(?<![\w-]...)(?!ant-)(?:proj-|svcacct-|admin-)?[\w-]{32,}+", 0),
        ("google_api_key", r"AIza(?<![\w-]....)[\w-]{35}(?![\w-])", 0),
        ("stripe_key", r"sk_(?:live|test)_(?<!\w.{8})[0-9A-Za-z]{16,}+(?!\w)", 0),
        ("stripe_key", r"rk_(?:live|test)_(?<!\w.{8})[0-9A-Za-z]{16,}+(?!\w)", 0),
        (
            "connection_string_password",
            r"://(?<=[A-Za-z0-9+.-]://)[^\s:/@?#]*:(?P<pw>[^\s/?#]+)@(?=[A-Za-z0-9\[])",
            "pw",
        ),
    )
)
_CERTIFICATE = Pattern(
    _SAFE,
    re.compile(
        r"-----BEGIN (CERTIFICATE|PUBLIC KEY|CERTIFICATE REQUEST|X509 CRL)-----"
        r"(?:[A-Za-z0-9+/=\s]|\\[nr])*+-----END \1-----"
    ),
)
# Translation tables for the ASCII copy: digits -> "0" (separators kept), token or name chars -> "a".
_ALNUM = bytes(range(48, 58)) + bytes(range(65, 91)) + bytes(range(97, 123))
_NUMBERS = bytes(c if c in b" -" else ord("0") if 48 <= c <= 57 else ord("|") for c in range(256))
_TOKENS = bytes(ord("a") if c in _ALNUM + b"+/_-" else ord(" ") for c in range(256))
_NAMES = bytes(ord("a") if c in _ALNUM + b"_.-" else ord(" ") for c in range(256))
_NUMBER_RUN = re.compile(rb"0[0 \-]{11,}0")
_CARD = re.compile(r"(?<![\w.-])(?:\d{13,19}|\d{4}([ -])\d{3,6}(?:\1\d{3,6}){1,3})(?![\w-]|\.\d)")
# Issuer prefixes and lengths keep 13-digit millisecond timestamps and ids out even when
# they pass Luhn by chance: Visa, Mastercard, Amex, Diners, Discover/UnionPay, JCB.
_CARD_BRAND = re.compile(
    r"4\d{12}(?:\d{3}|\d{6})?|(?:5[1-5]\d\d|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)\d{12}"
    r"|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11}|(?:6011|6[25]\d\d|64[4-9]\d|35(?:2[89]|[3-8]\d))\d{12,15}"
)
_TOKEN = re.compile(b"a" * 24 + b"a*")
_NAME_HINTS = tuple(map(re.compile, (b"pass", b"secret", b"token", b"key", b"authoriz", b"credential")))
_VALUE = re.compile(
    r"[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?i:bearer|basic|token|bot)[ \t]+)?"
    r"(?P<v>[^\s\"'`,;<>(){}\[\]$=]{6,200}+={0,2})(?![\w(=])"
)
# Values that read as code, names or words (type annotations, env names, attribute access):
_CODE_LIKE = re.compile(
    r"[A-Za-z_][A-Za-z_.-]*|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\*+|[\d.]+|#[0-9a-fA-F]{3,8}"
)
_NOT_SECRET_TOKEN = re.compile(r"[0-9a-fA-F-]+|(?:sha(?:1|224|256|384|512)|md5)[-_].*", re.DOTALL)
_DIGIT, _UPPER = re.compile(r"\d"), re.compile(r"[A-Z]")
_PLACEHOLDER = re.compile(r"\[REDACTED:\w+\]")
_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _cards(text: str, ascii_text: bytes) -> Iterator[tuple[int, int, str]]:
    for run in _NUMBER_RUN.finditer(ascii_text.translate(_NUMBERS)):
        for match in _CARD.finditer(text, run.start(), run.end() + 2):
            digits = match.group().replace(" ", "").replace("-", "")
            if _CARD_BRAND.fullmatch(digits):
                doubled = [int(c) * (1 + i % 2) for i, c in enumerate(reversed(digits))]
                if sum(x - 9 if x > 9 else x for x in doubled) % 10 == 0:
                    yield *match.span(), "card_number"


def _assignments(text: str, ascii_text: bytes) -> Iterator[tuple[int, int, str]]:
    lower = ascii_text.lower()
    names = lower.translate(_NAMES)
    for hint in _NAME_HINTS:
        for hit in hint.finditer(lower):
            # Names are bounded to 64 characters each side so that long runs stay linear.
            end = names.find(b" ", hit.end(), hit.end() + 64)
            if end < 0 or (value := _VALUE.match(text, end)) is None:
                continue
            lo = max(0, hit.start() - 64)
            start = names.rfind(b" ", lo, hit.start()) + 1 or lo
            name = lower[start:end].decode("ascii")
            # A name right after ":" or "/" is a path or ARN segment (arn:aws:...:secret:NAME).
            if lower[start - 1 : start] in (b":", b"/") or not is_secret_key(name):
                continue
            if ("aws" in name or "accesskey" in name) and re.fullmatch(r"[A-Za-z0-9/+]{40}", value["v"]):
                yield *value.span("v"), "aws_secret_key"
            elif not _CODE_LIKE.fullmatch(value["v"]):
                yield *value.span("v"), "secret_assignment"


def _random_looking(token: str) -> bool:
    # Upper, lower and digits all needed; islower()/isupper() turn most paths and names away cheaply.
    if token.islower() or token.isupper() or not (_UPPER.search(token) and _DIGIT.search(token)):
        return False
    if _NOT_SECRET_TOKEN.fullmatch(token):
        return False
    segments = _SEGMENT.findall(token)
    if sum(map(len, segments)) / len(segments) > 2.2:
        return False
    n = len(token)
    entropy = -sum(c / n * math.log2(c / n) for c in Counter(token).values())
    return entropy >= 1.05 * math.log(min(n, 64)) + 0.45


def _matches(text: str, patterns: Sequence[Pattern]) -> Iterator[tuple[int, int, str]]:
    return ((*m.span(p.group), p.kind) for p in patterns for m in p.regex.finditer(text))


def _tokens(text: str, ascii_text: bytes) -> Iterator[tuple[int, int, str]]:
    for match in _TOKEN.finditer(ascii_text.translate(_TOKENS)):
        if match.end() - match.start() <= 256 and _random_looking(text[match.start() : match.end()]):
            yield *match.span(), "high_entropy"


def detect(text: str, *, extra_patterns: Sequence[Pattern] = ()) -> list[Detection]:
    """Find the secrets in ``text``, non-overlapping, in order of position.

    Args:
        text: Any text (tool output, arguments, logs).
        extra_patterns: User detectors; they rank after the built-in formats and before the generic ones.

    Returns:
        One ``Detection`` per secret, sorted by start.
    """
    ascii_text = text.encode("ascii", "replace")  # one byte per character: positions carry over
    claimed: list[tuple[int, int, str]] = []
    for start, end, kind in chain(  # in priority order: a span goes to the first detector claiming it
        _matches(text, _BUILTIN),
        _cards(text, ascii_text),
        _matches(text, (*extra_patterns, _CERTIFICATE)),
        _assignments(text, ascii_text),
        _tokens(text, ascii_text),
    ):
        i = bisect.bisect_left(claimed, (start, end, ""))
        if start < end and not (i and claimed[i - 1][1] > start) and not (i < len(claimed) and claimed[i][0] < end):
            claimed.insert(i, (start, end, kind))
    return [Detection(k, (s, e), mask(text[s:e])) for s, e, k in claimed if k != _SAFE]


def redact(text: str, *, extra_patterns: Sequence[Pattern] = ()) -> RedactionResult:
    """Replace each secret in ``text`` with ``[REDACTED:<kind>]``."""
    found = detect(text, extra_patterns=extra_patterns)
    parts: list[str] = []
    pos = 0
    for d in found:
        parts += [text[pos : d.span[0]], f"[REDACTED:{d.kind}]"]
        pos = d.span[1]
    parts.append(text[pos:])
    return RedactionResult("".join(parts), found)


def redact_json(value: Any, *, extra_patterns: Sequence[Pattern] = ()) -> tuple[Any, list[Detection]]:
    """Redact every string in a JSON structure; the input is not modified.

    Keys are kept. A non-empty string under a secret-like key (``is_secret_key``) is
    replaced whole with ``[REDACTED:secret_field]``; other strings go through ``redact``. An
    object or array nested deeper than ``MAX_WALK_DEPTH`` is replaced by ``TOO_DEEP``.

    Returns:
        The redacted copy, and the detections with ``path`` set to a JSON pointer.
    """
    found: list[Detection] = []

    def walk(node: Any, path: str, secret_field: bool, depth: int = 0) -> Any:
        if depth > MAX_WALK_DEPTH and isinstance(node, dict | list | tuple):
            # Not read, so not passed on: a value nested this deep (a hostile upstream's) would
            # otherwise end the walk in RecursionError, and unread it could hide a secret.
            return TOO_DEEP
        if isinstance(node, str):
            if secret_field and node and not _PLACEHOLDER.fullmatch(node):
                found.append(Detection("secret_field", (0, len(node)), mask(node), path))
                return "[REDACTED:secret_field]"
            result = redact(node, extra_patterns=extra_patterns)
            found.extend(Detection(d.kind, d.span, d.preview, path) for d in result.detections)
            return result.text
        if isinstance(node, dict):
            return {
                k: walk(v, path + "/" + str(k).replace("~", "~0").replace("/", "~1"), is_secret_key(str(k)), depth + 1)
                for k, v in node.items()
            }
        if isinstance(node, list | tuple):
            return [walk(v, f"{path}/{i}", secret_field, depth + 1) for i, v in enumerate(node)]
        return node

    return walk(value, "", False), found
