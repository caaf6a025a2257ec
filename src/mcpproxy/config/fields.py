"""The settings table: one row per global setting, derived from ``Settings``.

The fields of :class:`~mcpproxy.settings.Settings` are the only list of settings. This module
turns each into a :class:`SettingField` row carrying the environment variable
(``MCPPROXY_<FIELD>``), the CLI flag (``--field-name``), the type, the choices and the
description (taken from the ``Attributes:`` section of the ``Settings`` docstring), so the
loader, the CLI and the configuration reference all read the same table and cannot drift.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from mcpproxy.settings import Settings

ENV_PREFIX = "MCPPROXY_"
"""Prefix of every environment variable mcpproxy reads."""

CONFIG_ENV = "MCPPROXY_CONFIG"
"""Environment variable naming the config file (it is a path, not a setting)."""

Source = Literal["default", "file", "env", "cli"]
"""Where a setting's value came from, lowest precedence first."""

# Per-server entries live in the file only; they have no env variable or flag.
_FILE_ONLY = frozenset({"servers"})


@dataclass(frozen=True, slots=True)
class SettingField:
    """One global setting as the file, the environment and the CLI see it.

    Attributes:
        name: Field name, which is also the key in the config file.
        env: Environment variable that overrides it.
        flag: Long CLI option that overrides it.
        python_type: ``int``, ``float``, ``str`` or ``bool``.
        choices: Allowed values for enumerated settings, else ``None``.
        default: The default value.
        description: One-paragraph description for help texts and docs.
    """

    name: str
    env: str
    flag: str
    python_type: type
    choices: tuple[str, ...] | None
    default: Any
    description: str


def _docstring_attributes(doc: str | None) -> dict[str, str]:
    """Parse the Google-style ``Attributes:`` section of a docstring."""
    if not doc:
        return {}
    out: dict[str, str] = {}
    in_section = False
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        if not in_section:
            in_section = line.strip() == "Attributes:"
            continue
        if line and not line.startswith(" "):
            break
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None and line.strip():
            out[current] += " " + line.strip()
    return out


def _type_of(annotation: Any) -> tuple[type, tuple[str, ...] | None]:
    if typing.get_origin(annotation) is Literal:
        choices = tuple(str(arg) for arg in typing.get_args(annotation))
        return str, choices
    if isinstance(annotation, type) and annotation in (int, float, str, bool):
        return annotation, None
    if isinstance(annotation, types.UnionType):
        raise TypeError(f"settings table: optional global settings are not supported ({annotation})")
    raise TypeError(f"settings table: unsupported type {annotation!r}")


def _build() -> tuple[SettingField, ...]:
    descriptions = _docstring_attributes(Settings.__doc__)
    rows: list[SettingField] = []
    for name, info in Settings.model_fields.items():
        if name in _FILE_ONLY:
            continue
        python_type, choices = _type_of(info.annotation)
        rows.append(
            SettingField(
                name=name,
                env=ENV_PREFIX + name.upper(),
                flag="--" + name.replace("_", "-"),
                python_type=python_type,
                choices=choices,
                default=info.get_default(call_default_factory=True),
                description=descriptions.get(name, ""),
            )
        )
    return tuple(rows)


SETTING_FIELDS: tuple[SettingField, ...] = _build()
"""Every global setting, in declaration order."""

FIELDS_BY_NAME: typing.Mapping[str, SettingField] = types.MappingProxyType({f.name: f for f in SETTING_FIELDS})
"""``SETTING_FIELDS`` by field name."""


def reference_markdown() -> str:
    """The configuration reference table (README), generated from the settings table."""
    lines = [
        "| key | environment | flag | default | description |",
        "|---|---|---|---|---|",
    ]
    for row in SETTING_FIELDS:
        default = f"`{row.default}`"
        choices = f" One of: {', '.join(f'`{c}`' for c in row.choices)}." if row.choices else ""
        description = row.description.replace("``", "`").replace("\n", " ") + choices
        lines.append(f"| `{row.name}` | `{row.env}` | `{row.flag}` | {default} | {description} |")
    return "\n".join(lines) + "\n"
