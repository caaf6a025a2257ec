"""Size-based rotation of the per-server log files (``logs/upstream-NAME.log``).

A stdio server writes its standard error straight into its log file (the file is its fd 2), so
the file cannot be renamed under it while it runs. Rotation therefore happens two ways:

* when a session opens (before the process starts): a file past ``log_max_bytes`` is renamed to
  ``.1`` (``.1`` to ``.2``...; at most ``log_backups`` kept) and a new one begins;
* every ``CHECK_INTERVAL`` seconds for running servers, by copy-then-truncate: the file's content
  goes to ``.1`` and the file is truncated in place. The server appends (``O_APPEND``), so its
  next line lands at the start of the emptied file; a line written between the copy and the
  truncation can be lost, which is the price of not restarting servers to rotate their logs.

``mcpproxy upstream logs NAME --follow`` reads by offset and starts over when the file shrinks.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 60.0
"""Seconds between size checks of running servers' logs."""


def _shift(path: Path, backups: int) -> None:
    """``path.(n-1)`` -> ``path.n`` ... ``path.1`` -> ``path.2``; the oldest beyond ``backups`` is removed."""
    oldest = path.with_name(f"{path.name}.{backups}")
    if oldest.exists():
        oldest.unlink()
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.rename(path.with_name(f"{path.name}.{n + 1}"))


def rotate_if_larger(path: Path, max_bytes: int, backups: int, *, in_place: bool = False) -> bool:
    """Rotate ``path`` when it is larger than ``max_bytes``; returns whether it did.

    Args:
        path: The log file.
        max_bytes: Size past which it is rotated.
        backups: Rotated files kept (0: the content is dropped).
        in_place: Copy then truncate (the file is open in another process) instead of renaming.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    try:
        if backups > 0:
            _shift(path, backups)
            first = path.with_name(f"{path.name}.1")
            if in_place:
                shutil.copyfile(path, first)
                os.chmod(first, 0o600)
            else:
                path.rename(first)
        elif not in_place:
            path.unlink()
        if in_place or backups == 0:
            with path.open("r+b") as fh:
                fh.truncate(0)
    except OSError as exc:
        logger.warning("cannot rotate %s: %s", path, exc)
        return False
    return True


def rotate_server_logs(log_dir: Path, max_bytes: int, backups: int) -> list[str]:
    """Rotate in place every ``upstream-*.log`` of ``log_dir`` past ``max_bytes``; the rotated names."""
    rotated = []
    for path in sorted(log_dir.glob("upstream-*.log")):
        if rotate_if_larger(path, max_bytes, backups, in_place=True):
            rotated.append(path.name)
    return rotated
