"""Reload the config file when it changes on disk.

The watcher observes the file's *directory* (``watchfiles.awatch``, not recursive): editors
and :func:`~mcpproxy.config.writer.write_config_atomic` replace the file by renaming a
temporary file over it, which a watch on the file's inode would miss. Events are debounced
by ``awatch`` and filtered to the file's name; after each batch the file is read and its
SHA-256 compared with the last content seen, so ``touch``, a save without changes and the
gateway's own writes (announced with :meth:`ConfigWatcher.expect` *before* writing) never
reload. Only a real change calls ``load()`` and then ``on_change``; a
:class:`~mcpproxy.errors.ConfigError` goes to ``on_error`` and the running configuration
stays. A removed or emptied file is reported as an error too, rather than read as "no
servers": it is far more often the middle of an editor's save than a wish. The
file is also re-checked every ``poll_interval`` seconds, which covers events lost by the
platform (some network and container mounts) at the cost of reading a small file.

``awatch`` only looks at its stop event between waits and does not react to cancellation
until its current wait ends, so :meth:`ConfigWatcher.run` keeps a helper task that sets
the stop event as soon as the watcher is cancelled or ``stop`` is set.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from watchfiles import awatch

from mcpproxy.errors import ConfigError
from mcpproxy.settings import Settings

WatchOutcome = Literal["changed", "unchanged", "own_write", "invalid", "missing"]
"""What one check of the file found."""

_MISSING = "missing"


def content_hash(content: bytes) -> str:
    """The SHA-256 hex digest the watcher compares contents by."""
    return hashlib.sha256(content).hexdigest()


def _digest(content: bytes | None) -> str:
    # Missing and blank files are the same state: no configuration to reload from.
    return _MISSING if content is None or not content.strip() else content_hash(content)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class ConfigWatcher:
    """Watches one config file and reports real changes.

    Args:
        path: The config file.
        on_change: Called with the new settings after a change that loaded cleanly.
        on_error: Called when the changed file does not load (or was removed), and when
            ``on_change`` rejects the settings with a ``ConfigError``.
        load: Loads the settings from the file (and the environment, flags, ...); it
            runs in a worker thread.
        baseline: The content the running settings were loaded from; read from the file
            when the watcher starts if not given.
        on_outcome: Called after every check with its outcome (for logs and tests).
        debounce_ms: Longest time ``awatch`` collects a burst of events.
        step_ms: Quiet time that ends a burst.
        poll_interval: Seconds between checks made without an event.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[Settings], Awaitable[None]],
        on_error: Callable[[ConfigError], Awaitable[None]],
        *,
        load: Callable[[], Settings],
        baseline: bytes | None = None,
        on_outcome: Callable[[WatchOutcome], Awaitable[None]] | None = None,
        debounce_ms: int = 1600,
        step_ms: int = 50,
        poll_interval: float = 5.0,
    ) -> None:
        self.path = path
        self._on_change = on_change
        self._on_error = on_error
        self._on_outcome = on_outcome
        self._load = load
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._poll_ms = max(1, int(poll_interval * 1000))
        self._loaded: str | None = None if baseline is None else _digest(baseline)
        self._seen = self._loaded
        self._expected: set[str] = set()
        self._failing = False

    def expect(self, content: bytes) -> None:
        """Announce that the gateway itself is about to write ``content`` to the file.

        Call it before the write: when the watcher then sees exactly this content it adopts
        it as the running configuration without reloading.
        """
        self._expected.add(content_hash(content))

    async def check(self) -> WatchOutcome:
        """Read the file now and act on what changed; the watch loop calls this per batch."""
        content = await anyio.to_thread.run_sync(_read, self.path)
        outcome = await self._examine(content)
        if self._on_outcome is not None:
            await self._on_outcome(outcome)
        return outcome

    async def _examine(self, content: bytes | None) -> WatchOutcome:
        digest = _digest(content)
        if digest == self._seen:
            return "unchanged"
        if digest == _MISSING:
            self._seen = _MISSING
            self._failing = True
            await self._on_error(
                ConfigError(
                    f"config file {self.path} was removed or emptied; the running configuration stays",
                    hint='restore the file; to remove every server write "{}"',
                )
            )
            return "missing"
        if digest in self._expected:
            self._expected.discard(digest)
            self._seen = self._loaded = digest
            return "own_write"
        # Someone else wrote after our announced writes; those announcements are stale.
        self._expected.clear()
        self._seen = digest
        if digest == self._loaded and not self._failing:
            return "unchanged"
        # Back to the running content after a refused edit: reload anyway, so the error clears.
        try:
            settings = await anyio.to_thread.run_sync(self._load)
            await self._on_change(settings)
        except ConfigError as exc:
            self._failing = True
            await self._on_error(exc)
            return "invalid"
        self._failing = False
        self._loaded = digest
        return "changed"

    async def run(
        self,
        *,
        stop: anyio.Event | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Watch until ``stop`` is set or the task is cancelled.

        Usable with ``TaskGroup.start``: it reports started once the baseline is known, so
        every later write is noticed (by an event, or at the latest by the next poll).

        Raises:
            OSError: The directory cannot be watched.
        """
        if self._loaded is None:
            self._loaded = self._seen = _digest(await anyio.to_thread.run_sync(_read, self.path))
        directories, names = await anyio.to_thread.run_sync(self._watch_targets)
        stop_watch = anyio.Event()

        async def relay_stop() -> None:
            try:
                await (stop.wait() if stop is not None else anyio.sleep_forever())
            finally:
                stop_watch.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(relay_stop)
                task_status.started()
                try:
                    async for _batch in awatch(
                        *directories,
                        watch_filter=lambda _change, changed: os.path.basename(changed) in names,
                        stop_event=stop_watch,
                        debounce=self._debounce_ms,
                        step=self._step_ms,
                        rust_timeout=self._poll_ms,
                        yield_on_timeout=True,
                        recursive=False,
                    ):
                        # An empty batch is the poll timeout: check anyway (lost events).
                        await self.check()
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Only this task raises from the group; callers get its error unwrapped.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise

    def _watch_targets(self) -> tuple[set[Path], set[str]]:
        # A symlinked config changes where the link points, so both directories are watched.
        directories, names = {self.path.parent}, {self.path.name}
        if self.path.is_symlink():
            target = self.path.resolve()
            directories.add(target.parent)
            names.add(target.name)
        return directories, names


async def watch_config(
    path: Path,
    on_change: Callable[[Settings], Awaitable[None]],
    on_error: Callable[[ConfigError], Awaitable[None]],
    *,
    load: Callable[[], Settings],
    stop: anyio.Event | None = None,
) -> None:
    """Watch ``path`` until ``stop`` is set or cancelled; see :class:`ConfigWatcher`.

    Use the class directly to announce the gateway's own writes with ``expect``.
    """
    await ConfigWatcher(path, on_change, on_error, load=load).run(stop=stop)
