"""Run a real process for a test, wait until it is ready, and always tear it down.

    async with run_process(argv, ready_port=port) as proc:
        ...  # talk to it
    # here the whole process group is gone (SIGTERM, bounded wait, SIGKILL)

The process runs in a session (and so a process group) of its own, so teardown also reaches
whatever it started (``npx`` -> ``node``, a shell -> its children). Its stdout and stderr are
read all along, so it never blocks on a full pipe, and the last lines are kept for messages.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc

from tests.support.net import LOOPBACK, port_is_open

StreamName = Literal["stdout", "stderr"]

# Defaults every child gets unless the caller's env says otherwise: no banners, no update
# checks, no buffering (so ready lines arrive when printed).
QUIET_CHILD_ENV: Mapping[str, str] = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "PYTHONUNBUFFERED": "1",
    "NO_COLOR": "1",
}

TAIL_LINES = 400
_MAX_LINE = 64 * 1024


class ProcessStartError(RuntimeError):
    """The process exited, or did not become ready in time; the message carries its output tail."""


def child_env(extra: Mapping[str, str] | None = None, *, inherit: bool = True) -> dict[str, str]:
    """Environment for a child: (this process's env if ``inherit``) + quiet defaults + ``extra``."""
    env: dict[str, str] = dict(os.environ) if inherit else {}
    for key, value in QUIET_CHILD_ENV.items():
        env.setdefault(key, value)
    if extra:
        env.update(extra)
    return env


class ProcessHandle:
    """A running process started by `run_process`."""

    def __init__(self, argv: Sequence[str], process: anyio.abc.Process) -> None:
        self.argv: list[str] = list(argv)
        self.process = process
        self.pid: int = process.pid
        self._lines: deque[tuple[StreamName, str]] = deque(maxlen=TAIL_LINES)
        self._exited = anyio.Event()
        self._output_changed = anyio.Event()
        self._open_streams = 2

    # -- state ----------------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by that signal)."""
        return self.process.returncode

    @property
    def running(self) -> bool:
        return not self._exited.is_set()

    def lines(self, stream: StreamName | None = None) -> list[str]:
        """Kept output lines (the last `TAIL_LINES` of both streams), optionally of one stream."""
        return [line for name, line in self._lines if stream is None or name == stream]

    def output_tail(self, count: int = 40) -> str:
        """The last ``count`` output lines, each marked with its stream, for error messages."""
        tail = list(self._lines)[-count:]
        return "\n".join(f"[{name}] {line}" for name, line in tail)

    # -- signals (to the whole process group) ---------------------------------------------------

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process group; a group that is already gone is not an error."""
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM to the process group."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the process group."""
        self.send_signal(signal.SIGKILL)

    # -- waiting --------------------------------------------------------------------------------

    async def wait(self) -> int:
        """Wait for the process to exit and return its status (bound it with ``anyio.fail_after``)."""
        await self._exited.wait()
        code = self.process.returncode
        assert code is not None
        return code

    async def wait_for_line(self, pattern: str | re.Pattern[str], *, stream: StreamName | None = None) -> str:
        """Wait until an output line (kept or future) contains ``pattern`` (a substring, or a regex
        that must ``search``-match) and return it; ``ProcessStartError`` if the process exits
        first. Bound it with ``anyio.fail_after``."""
        while True:
            changed = self._output_changed
            for name, line in self._lines:
                if (stream is None or name == stream) and _matches(pattern, line):
                    return line
            if self._exited.is_set() and self._open_streams == 0:
                raise ProcessStartError(self._describe(f"exited before printing {pattern!r}"))
            await changed.wait()

    # -- internals ------------------------------------------------------------------------------

    def _describe(self, what: str) -> str:
        return (
            f"{self.argv!r} (pid {self.pid}) {what}; exit status {self.returncode}.\n"
            f"Last output:\n{self.output_tail() or '(none)'}"
        )

    def _notify_output(self) -> None:
        self._output_changed.set()
        self._output_changed = anyio.Event()

    async def _pump(self, name: StreamName, stream: anyio.abc.ByteReceiveStream | None) -> None:
        try:
            await self._read_lines(name, stream)
        finally:
            self._open_streams -= 1
            self._notify_output()

    async def _read_lines(self, name: StreamName, stream: anyio.abc.ByteReceiveStream | None) -> None:
        if stream is None:
            return
        pending = b""
        try:
            async for chunk in stream:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                if len(pending) > _MAX_LINE:  # a huge line without newline: keep it in pieces
                    complete.append(pending)
                    pending = b""
                for raw in complete:
                    self._lines.append((name, raw.decode("utf-8", "replace").rstrip("\r")))
                if complete:
                    self._notify_output()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        if pending:
            self._lines.append((name, pending.decode("utf-8", "replace").rstrip("\r")))
            self._notify_output()

    async def _watch_exit(self) -> None:
        await self.process.wait()
        self._exited.set()
        self._notify_output()


def _matches(pattern: str | re.Pattern[str], line: str) -> bool:
    if isinstance(pattern, str):
        return pattern in line
    return pattern.search(line) is not None


async def _wait_ready(
    handle: ProcessHandle,
    ready_port: int | None,
    ready_host: str,
    ready_line: str | re.Pattern[str] | None,
    within: float,
) -> None:
    try:
        with anyio.fail_after(within):
            if ready_line is not None:
                await handle.wait_for_line(ready_line)
            if ready_port is not None:
                delay = 0.01
                while not await port_is_open(ready_host, ready_port):
                    if not handle.running:
                        raise ProcessStartError(
                            handle._describe(f"exited before listening on {ready_host}:{ready_port}")
                        )
                    await anyio.sleep(delay)  # polling backoff, not coordination
                    delay = min(delay * 2, 0.2)
    except TimeoutError:
        waited = " and ".join(
            what
            for what in (
                f"a line matching {ready_line!r}" if ready_line is not None else "",
                f"a listener on {ready_host}:{ready_port}" if ready_port is not None else "",
            )
            if what
        )
        raise ProcessStartError(handle._describe(f"not ready after {within}s waiting for {waited}")) from None


async def _shutdown(handle: ProcessHandle, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds, SIGKILL the group (always: stragglers).

    Waits on the process itself, not on the watcher task: under cancellation that task is
    already cancelled."""
    if handle.process.returncode is None:
        handle.terminate()
        with anyio.move_on_after(grace):
            await handle.process.wait()
    handle.kill()
    with anyio.move_on_after(grace):
        await handle.process.wait()
    if handle.process.returncode is not None:
        handle._exited.set()


@asynccontextmanager
async def run_process(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | Path | None = None,
    ready_port: int | None = None,
    ready_host: str = LOOPBACK,
    ready_line: str | re.Pattern[str] | None = None,
    timeout: float = 20.0,  # noqa: ASYNC109 - bounds readiness only, not the caller's block
    stdin: bool = False,
    grace: float = 5.0,
) -> AsyncIterator[ProcessHandle]:
    """Start ``argv`` and yield a `ProcessHandle` once it is ready.

    Ready means: it printed a line containing ``ready_line`` (stdout or stderr), and/or
    ``ready_host:ready_port`` accepts TCP connections; with neither, as soon as it started.
    ``ProcessStartError`` (with the output tail) if it exits first or is not ready within
    ``timeout`` seconds.

    ``env`` is added to this process's environment (or replaces it when ``inherit_env`` is
    false), over `QUIET_CHILD_ENV`. stdin is /dev/null unless ``stdin`` is true (then it is
    a pipe: ``handle.process.stdin``).

    On exit, always and shielded from cancellation: SIGTERM to the process group, up to
    ``grace`` seconds for it to exit, then SIGKILL to the group.
    """
    if not argv:
        raise ValueError("argv is empty")
    command = [os.fspath(part) for part in argv]
    process = await anyio.open_process(
        command,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_env(env, inherit=inherit_env),
        start_new_session=True,
    )
    handle = ProcessHandle(command, process)
    # An error of the caller's block (or of readiness) is held while the task group winds down
    # and raised after it, so it arrives as itself rather than inside an ExceptionGroup.
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(handle._pump, "stdout", process.stdout)
            tg.start_soon(handle._pump, "stderr", process.stderr)
            tg.start_soon(handle._watch_exit)
            try:
                await _wait_ready(handle, ready_port, ready_host, ready_line, timeout)
                yield handle
            except Exception as exc:
                failure = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await _shutdown(handle, grace)
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:  # only when something above failed before the shutdown
                handle.kill()
            with anyio.move_on_after(grace):
                await process.aclose()
    if failure is not None:
        raise failure
