"""Load the gateway's settings from file, environment and CLI flags.

Precedence, lowest first: defaults, the JSON config file, ``MCPPROXY_<FIELD>`` environment
variables, then CLI flags (``overrides``). Every layer is merged into one plain dict and
validated once by ``Settings``, so a bad value is reported the same way wherever it came
from: as a :class:`~mcpproxy.errors.ConfigError` naming the key path and the line in the
file (or the environment variable / flag that supplied it). The list of variables and flags
is the settings table in :mod:`mcpproxy.config.fields`, never a hand-written list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcpproxy.config.fields import CONFIG_ENV, FIELDS_BY_NAME, SETTING_FIELDS, Source
from mcpproxy.config.jsonfile import JsonDocument, read_json_file
from mcpproxy.config.validation import config_error_from_validation
from mcpproxy.errors import ConfigError
from mcpproxy.settings import CONFIG_FILE_NAME, DEFAULT_DATA_DIR, Settings

_TOP_LEVEL_KEYS = (*(f.name for f in SETTING_FIELDS), "mcpServers")


@dataclass(frozen=True)
class LoadedConfig:
    """The result of loading: the settings and where each global value came from.

    Attributes:
        settings: The validated settings.
        sources: For every global setting (the rows of ``SETTING_FIELDS``), the layer that
            supplied its value: ``default``, ``file``, ``env`` or ``cli``.
        path: The config file, if one was given (it may not exist).
        content: The file's bytes as read (``b""`` when missing); a watcher uses it as
            the baseline for change detection.
    """

    settings: Settings
    sources: Mapping[str, Source]
    path: Path | None
    content: bytes


def config_path_for(data_dir: Path) -> Path:
    """The default config file inside a data directory."""
    return data_dir / CONFIG_FILE_NAME


def resolve_paths(config: str | None, data_dir: str | None, env: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Work out the config file and data directory before anything is loaded.

    A flag beats the environment (``MCPPROXY_CONFIG``, ``MCPPROXY_DATA_DIR``), which beats
    the default ``~/.mcpproxy``; the config file defaults to ``mcp_config.json`` inside the
    data directory.

    Args:
        config: The ``--config`` flag, if given.
        data_dir: The ``--data-dir`` flag, if given.
        env: The environment (``os.environ`` when ``None``).

    Returns:
        ``(config_path, data_dir)``, with ``~`` expanded.
    """
    env = os.environ if env is None else env
    data_dir_env = FIELDS_BY_NAME["data_dir"].env
    data = Path(os.path.expanduser(data_dir or env.get(data_dir_env) or DEFAULT_DATA_DIR))
    config_value = config or env.get(CONFIG_ENV)
    config_path = Path(os.path.expanduser(config_value)) if config_value else config_path_for(data)
    return config_path, data


def load_config(
    path: Path | None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Read the config file and apply environment and CLI overrides.

    Args:
        path: The JSON config file; ``None``, a missing file or an empty file mean
            defaults.
        overrides: Values from CLI flags by setting name; ``None`` values are ignored
            (a flag that was not given).
        env: The environment (``os.environ`` when ``None``); empty variables are ignored.

    Returns:
        The validated settings and the source of every global value.

    Raises:
        ConfigError: The file cannot be read or parsed, or a value is invalid. The message
            names the key path and the line (or the variable or flag).
    """
    env = os.environ if env is None else env
    doc = read_json_file(path) if path is not None else None
    doc = doc or JsonDocument(data={}, path=path)
    merged: dict[str, Any] = dict(doc.data)
    sources: dict[str, Source] = {f.name: "file" if f.name in doc.data else "default" for f in SETTING_FIELDS}
    origins: dict[str, str] = {}
    for row in SETTING_FIELDS:
        value = env.get(row.env)
        if value:
            merged[row.name] = value
            sources[row.name] = "env"
            origins[row.name] = f"{row.env}={value!r}"
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in FIELDS_BY_NAME:
            raise ConfigError(f"unknown setting {name!r}", key=name, hint="known: " + ", ".join(FIELDS_BY_NAME))
        merged[name] = value
        sources[name] = "cli"
        origins[name] = FIELDS_BY_NAME[name].flag
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise config_error_from_validation(exc, doc=doc, origins=origins, known_keys=_TOP_LEVEL_KEYS) from None
    return LoadedConfig(settings=settings, sources=sources, path=path, content=doc.content)


def load_settings(
    path: Path | None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Like :func:`load_config`, returning only the settings.

    Raises:
        ConfigError: See :func:`load_config`.
    """
    return load_config(path, overrides=overrides, env=env).settings
