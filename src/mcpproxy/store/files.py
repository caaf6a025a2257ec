"""Whole-file writes that a crash never leaves half done: config, secrets, the API key.

``atomic_write`` writes the bytes to a temporary file in the target's directory, created with
the final mode (0600 by default) so nobody can read it in between, ``fsync``-s it, moves it
over the target with ``os.replace`` (atomic within one file system) and ``fsync``-s the
directory so the rename itself survives a power cut. A reader sees the old file or the new one,
never a mix; on failure the old file is left untouched and the temporary one removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE = 0o600


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    """Replace the file at ``path`` with ``data``, atomically and durably.

    A symlink at ``path`` is followed (its target is replaced, the link kept). The parent
    directory must exist.

    Raises:
        OSError: The file could not be written; the old one is untouched.
    """
    target = path.resolve() if path.is_symlink() else path
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or creation in ``directory`` durable (nothing to do on Windows)."""
    if os.name == "nt":  # a directory cannot be opened there; the journal keeps renames
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
