"""Masking secret values in everything the gateway shows or writes.

Design: the gateway learns secret values in one place, when it resolves a server's references
right before connecting (``mcpproxy.secrets.resolve``): every resolved value, and the literal
value of each env variable or header whose name says it is secret, is registered here,
process-wide. From then on text that leaves the process through a shown channel passes
``mask_known``: log records (``mask_event_dict`` before rendering and ``mask_rendered`` on the
rendered line, which also catches tracebacks and JSON escaping), error messages (``ProxyError``
masks its message and hint, the upstream layer's ``describe`` masks reasons), server listings of
REST, MCP and the CLI, and server logs served through the API. A value becomes ``mask(value)``
(``sk-…a9``, or ``********`` under 16 characters); its JSON-escaped and URL-encoded spellings
are masked too. Values shorter than ``MIN_LENGTH`` are not registered: masking every ``true`` in
a log would hide everything and protect nothing. The registry only grows: a rotated secret's
old value stays masked. Config listings (``mask_config``) also mask what needs no registry:
literal values under secret-like keys (``is_secret_key``), passwords and secret query
parameters in URLs, ``--token VALUE`` style arguments and what ``detect`` recognises; a
reference such as ``${keyring:NAME}`` is shown as written, since it is a name, not a secret.
Tool results are not masked here: the result filters decide what the model sees.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, quote, quote_plus, urlsplit, urlunsplit

from mcpproxy.filters.secrets import detect, is_secret_key, mask
from mcpproxy.secrets.refs import REFERENCE, has_references
from mcpproxy.settings import ServerSpec

MIN_LENGTH = 6
"""Shorter values are not registered (see the module docstring)."""

_lock = threading.Lock()
_masks: dict[str, str] = {}  # every spelling of every known value -> the mask shown for it
_pattern: re.Pattern[str] | None = None


def _spellings(value: str) -> set[str]:
    """The ways ``value`` can appear in output: as is, JSON-escaped, URL-encoded."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }


def register(values: str | Iterable[str]) -> None:
    """Remember secret values so that ``mask_known`` hides them from now on.

    Args:
        values: One value or several; those shorter than ``MIN_LENGTH`` are ignored.
    """
    global _pattern
    items = [values] if isinstance(values, str) else list(values)
    new: dict[str, str] = {}
    for value in items:
        if len(value) >= MIN_LENGTH:
            shown = mask(value)
            new.update({s: shown for s in _spellings(value) if len(s) >= MIN_LENGTH})
    with _lock:
        new = {s: shown for s, shown in new.items() if s not in _masks}
        if not new:
            return
        _masks.update(new)
        # Longest first: a value that contains another known one is masked whole.
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_masks, key=len, reverse=True)))


def is_known(value: str) -> bool:
    """Whether ``value`` is a registered secret value."""
    return value in _masks


def mask_known(text: str) -> str:
    """``text`` with every registered secret value replaced by its mask."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(lambda m: _masks.get(m.group(), "********"), text)


def mask_known_json(value: Any) -> Any:
    """A copy of a JSON-like structure with ``mask_known`` applied to every string (keys kept)."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return mask_known(value)
    if isinstance(value, Mapping):
        return {k: mask_known_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_known_json(v) for v in value]
    return value


# -- logs ------------------------------------------------------------------------------------


def mask_event_dict(_logger: Any, _method: str, event_dict: Any) -> Any:
    """structlog processor: mask known values in every string field, before rendering."""
    if _pattern is None or not isinstance(event_dict, Mapping):
        return event_dict
    return {k: v if k == "exc_info" else mask_known_json(v) for k, v in event_dict.items()}


def mask_rendered(_logger: Any, _method: str, rendered: Any) -> Any:
    """structlog processor placed after the renderer: mask known values in the rendered line."""
    if isinstance(rendered, str):
        return mask_known(rendered)
    if isinstance(rendered, bytes | bytearray):
        return mask_known(bytes(rendered).decode("utf-8", errors="replace")).encode("utf-8")
    return rendered


# -- listings --------------------------------------------------------------------------------

_FLAG = re.compile(r"-{1,2}(?P<name>[A-Za-z][\w.-]*)")
_FLAG_VALUE = re.compile(r"(?P<flag>-{1,2}(?P<name>[A-Za-z][\w.-]*)=)(?P<value>.+)", re.DOTALL)
_SCHEME_CREDENTIAL = re.compile(r"(?P<scheme>(?i:bearer|basic|token|bot)\s+)(?P<value>\S.*)", re.DOTALL)


def mask_text(text: str) -> str:
    """Mask known values and detected secrets in ``text``, leaving references as written."""
    parts: list[str] = []
    pos = 0
    for match in REFERENCE.finditer(text):
        parts += [_mask_plain(text[pos : match.start()]), match.group()]
        pos = match.end()
    parts.append(_mask_plain(text[pos:]))
    return "".join(parts)


def _mask_plain(text: str) -> str:
    if not text:
        return text
    text = mask_known(text)
    found = detect(text)
    if not found:
        return text
    out: list[str] = []
    pos = 0
    for d in found:
        start, end = d.span
        out += [text[pos:start], d.preview]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_value(key: str, value: str) -> str:
    """A value shown under ``key`` (an env variable or a header): whole-masked when the key names a
    secret and the value is literal; otherwise known values and detected secrets are masked."""
    if not value or has_references(value):
        return mask_text(value)
    if is_secret_key(key):
        credential = _SCHEME_CREDENTIAL.fullmatch(value)
        return credential["scheme"] + mask(credential["value"]) if credential else mask(value)
    return mask_text(value)


def mask_args(args: Iterable[str]) -> list[str]:
    """Arguments with secrets masked: ``--token VALUE``, ``--api-key=VALUE``, known and detected values."""
    out: list[str] = []
    secret_next = False
    for arg in args:
        if secret_next and not has_references(arg) and not arg.startswith("-"):
            out.append(mask(arg))
            secret_next = False
            continue
        flag = _FLAG.fullmatch(arg)
        secret_next = flag is not None and is_secret_key(flag["name"])
        with_value = _FLAG_VALUE.fullmatch(arg)
        if with_value and is_secret_key(with_value["name"]) and not has_references(with_value["value"]):
            out.append(with_value["flag"] + mask(with_value["value"]))
        else:
            out.append(mask_text(arg))
    return out


def mask_url(url: str) -> str:
    """A URL with its password, secret-named query parameters, and known or detected secrets masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    netloc = parts.netloc
    if parts.password and not has_references(parts.password):
        user, _, host = netloc.rpartition("@")
        netloc = user.split(":", 1)[0] + ":" + mask(parts.password) + "@" + host
    query = "&".join(_mask_param(p) for p in parts.query.split("&")) if parts.query else parts.query
    rebuilt = urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
    return mask_text(rebuilt)


def _mask_param(param: str) -> str:
    name, eq, value = param.partition("=")
    if eq and value and is_secret_key(name) and not has_references(value):
        return f"{name}={mask(value)}"
    return param


def mask_config(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A server entry (``ServerSpec.to_config()`` or a raw one) safe to show.

    ``env`` and ``headers`` values go through ``mask_value``, ``args`` through ``mask_args``,
    ``url`` through ``mask_url``, other strings through ``mask_known``. References stay as written.
    """
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("env", "headers") and isinstance(value, Mapping):
            out[key] = {k: mask_value(str(k), v) if isinstance(v, str) else v for k, v in value.items()}
        elif key == "args" and isinstance(value, list | tuple):
            out[key] = mask_args(str(a) for a in value)
        elif key == "url" and isinstance(value, str):
            out[key] = mask_url(value)
        else:
            out[key] = mask_known_json(value)
    return out


def mask_target(spec: ServerSpec) -> str:
    """What a listing shows as a server's target: its masked URL, or its command and masked args."""
    if spec.transport != "stdio":
        return mask_url(spec.url or "")
    return " ".join([mask_known(spec.command or ""), *mask_args(spec.args)])
