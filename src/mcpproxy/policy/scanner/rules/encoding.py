"""Encoded payloads: base64, hex and escape sequences that hide text from a human reviewer.

Models decode base64 and hex without being asked, so an encoded sentence in a description is
an instruction a reviewer cannot read. Every candidate blob is decoded; only blobs that decode
to printable text count (a commit SHA or a random token decodes to binary and is ignored).
Decoded natural language (three words or more) is ``medium``: there is no honest reason to
encode prose in tool metadata. Short printable decodings (a JWT header, ``user:pass`` in an
auth example) are ``low``. In both cases the decoded text is handed back to the engine, which
runs every text rule on it, so an encoded "ignore previous instructions" is reported as what
it is, with ``[decoded base64]`` in the evidence.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.text import clip
from mcpproxy.policy.scanner.view import Field, Kind

MAX_BLOBS = 5
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"(?:\\x[0-9a-fA-F]{2}){4,}|(?<![0-9A-Za-z])(?:[0-9a-fA-F]{2}){10,}(?![0-9A-Za-z])")
_UESC = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}){3,}")
_URL = re.compile(r"(?:%[0-9a-fA-F]{2}){4,}")
_ENTITY = re.compile(r"(?:&#(?:x[0-9a-fA-F]+|[0-9]+);){4,}")
_WORDS = re.compile(r"\b[A-Za-z]{2,}+(?:\s++[A-Za-z]{2,}+){2}")


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(ch.isprintable() or ch in "\n\t" for ch in text) < 0.95 * len(text):
        return None
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    return text if letters >= 0.6 * len(text) else None


def _from_b64(blob: str) -> str | None:
    if not (any(c.isupper() for c in blob) and any(c.islower() or c.isdigit() for c in blob)):
        return None
    try:
        return _readable(base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None


def _from_hex(blob: str) -> str | None:
    try:
        return _readable(bytes.fromhex(blob.replace("\\x", "")))
    except ValueError:
        return None


def _from_escapes(blob: str) -> str | None:
    try:
        text = blob.encode("ascii").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    return text if any(ch.isalpha() for ch in text) else None


def _from_url(blob: str) -> str | None:
    return _readable(unquote_to_bytes(blob))


def _from_entities(blob: str) -> str | None:
    text = html.unescape(blob)
    return text if any(ch.isalpha() for ch in text) else None


_DECODERS = (  # (name, rule, marker that must occur, pattern, decoder)
    ("base64", "encoding.base64", "", _B64, _from_b64),
    ("hex", "encoding.hex", "", _HEX, _from_hex),
    ("unicode escapes", "encoding.escapes", "\\u", _UESC, _from_escapes),
    ("url encoding", "encoding.escapes", "%", _URL, _from_url),
    ("html entities", "encoding.escapes", "&#", _ENTITY, _from_entities),
)


def decode(field: Field) -> Iterator[tuple[Finding, Field]]:
    """For each decodable blob in the field: a finding, and the decoded text to rescan."""
    if field.kind is Kind.NAME or len(field.text) < 12:
        return
    for via, rule, marker, pattern, decoder in _DECODERS:
        if marker not in field.text:
            continue
        for count, m in enumerate(pattern.finditer(field.text)):
            if count >= MAX_BLOBS:
                break
            decoded = decoder(m.group(0))
            if decoded is None:
                continue
            prose = _WORDS.search(decoded) is not None
            sev = Severity.MEDIUM if prose else Severity.LOW
            blob = m.group(0)
            shown = blob if len(blob) <= 24 else blob[:23] + "…"
            evidence = clip(f"{via} {shown} → {decoded!r}")
            yield Finding(rule, sev, field.location, evidence), Field(
                field.location, decoded, field.kind, field.param, via
            )
