"""Crash-safe writes of the config file.

The file is rendered in full and written by ``store.files.atomic_write``: to a temporary
file in the same directory, flushed and ``fsync``-ed, then moved over the old one with
``os.replace`` (atomic within one file system), and finally the directory is ``fsync``-ed so
the rename itself is durable. A process killed at any instant therefore leaves either the
complete old file or the complete new one, never a mix; at worst a stray
``.mcp_config.json.*.tmp`` file remains, which watchers ignore. The file holds secrets
(headers, env), so it is created with mode 0600. A symlinked config file is written through
the link, so dotfile setups keep working.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from mcpproxy.errors import StoreError
from mcpproxy.store.files import atomic_write

if TYPE_CHECKING:
    from mcpproxy.settings import Settings

FILE_MODE = 0o600
DIR_MODE = 0o700


def render_config(data: Mapping[str, Any]) -> bytes:
    """The exact bytes :func:`write_config_atomic` writes for ``data``.

    JSON with an indent of 2, keys in the given order, non-ASCII kept, and a trailing
    newline. Callers that watch the file use it to recognise their own writes.
    """
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_config_atomic(path: Path, data: Mapping[str, Any]) -> bytes:
    """Replace the file at ``path`` with ``data`` as JSON, atomically and durably.

    Args:
        path: The config file; missing parent directories are created (mode 0700).
        data: A JSON-serialisable mapping.

    Returns:
        The bytes written (see :func:`render_config`).

    Raises:
        StoreError: The file could not be written; the old file is left untouched.
    """
    content = render_config(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        atomic_write(path, content, FILE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write config file {path}: {exc.strerror or exc}") from exc
    return content


def save_settings(path: Path, settings: Settings) -> bytes:
    """Write ``settings`` to ``path`` in config-file form (see ``Settings.to_config``).

    Returns:
        The bytes written.

    Raises:
        StoreError: The file could not be written.
    """
    return write_config_atomic(path, settings.to_config())


async def write_config_atomic_async(path: Path, data: Mapping[str, Any]) -> bytes:
    """:func:`write_config_atomic` in a worker thread, so ``fsync`` never blocks the loop."""
    return await anyio.to_thread.run_sync(partial(write_config_atomic, path, data))


async def save_settings_async(path: Path, settings: Settings) -> bytes:
    """:func:`save_settings` in a worker thread."""
    return await anyio.to_thread.run_sync(partial(save_settings, path, settings))
