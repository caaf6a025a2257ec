"""The syntax of secret references: ``${env:NAME}`` and ``${keyring:NAME}``.

Design: a reference is ``${`` + source + ``:`` + name + ``}`` where the source is ``env`` (a
variable of mcpproxy's own environment) or ``keyring`` (the secret store); ``$${...}`` stands
for the literal text ``${...}``. Any other ``${...}`` (a shell-style ``${HOME}``, an unknown
source) is plain text and left alone, so existing entries keep working. Env names follow the
POSIX shape; secret names (``SECRET_NAME``) are letters, digits, ``_``, ``.`` and ``-``, so they fit
in a reference, an environment variable's value and every keyring backend. A reference whose
name breaks these rules is a config error naming it, never a silent literal. This module only
reads text; ``mcpproxy.secrets.resolve`` replaces references with values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from mcpproxy.errors import ConfigError

Source = Literal["env", "keyring"]

REFERENCE = re.compile(r"(?P<escape>\$)?\$\{(?P<source>env|keyring):(?P<name>[^{}]*)\}")
"""A reference (or, with a leading ``$``, an escaped one) anywhere in a string."""

SECRET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``${source:name}`` reference.

    Attributes:
        source: ``env`` or ``keyring``.
        name: The variable or secret name.
    """

    source: Source
    name: str

    def __str__(self) -> str:
        return "${" + self.source + ":" + self.name + "}"


def _checked(source: str, name: str, where: str | None) -> Reference:
    pattern = ENV_NAME if source == "env" else SECRET_NAME
    if not pattern.fullmatch(name):
        place = f" in {where}" if where else ""
        shape = "an environment variable name" if source == "env" else "letters, digits, '_', '.' and '-'"
        raise ConfigError(f"invalid secret reference ${{{source}:{name}}}{place}: the name must be {shape}")
    return Reference("env" if source == "env" else "keyring", name)


def iter_references(text: str, *, where: str | None = None) -> Iterator[tuple[re.Match[str], Reference | None]]:
    """Each reference match in ``text`` with its ``Reference`` (``None`` for an escaped ``$${...}``).

    Raises:
        ConfigError: A reference has an invalid name; ``where`` (e.g. ``env.API_KEY``) is named.
    """
    for match in REFERENCE.finditer(text):
        if match.group("escape"):
            yield match, None
        else:
            yield match, _checked(match.group("source"), match.group("name"), where)


def find_references(text: str, *, where: str | None = None) -> list[Reference]:
    """The references in ``text``, in order (escaped ones are text, not references)."""
    return [ref for _, ref in iter_references(text, where=where) if ref is not None]


def has_references(text: str) -> bool:
    """Whether ``text`` holds a reference or an escaped one (so it is not a literal value)."""
    return REFERENCE.search(text) is not None


def substitute(text: str, value_of: dict[Reference, str] | None = None, *, where: str | None = None) -> str:
    """``text`` with each reference replaced by ``value_of[ref]`` and ``$${...}`` unescaped.

    With ``value_of`` ``None`` references stay as written (only escapes are undone).
    """
    parts: list[str] = []
    pos = 0
    for match, ref in iter_references(text, where=where):
        parts.append(text[pos : match.start()])
        if ref is None:
            parts.append(match.group()[1:])
        else:
            parts.append(value_of[ref] if value_of is not None else match.group())
        pos = match.end()
    parts.append(text[pos:])
    return "".join(parts)
