"""A stdio MCP server as a process the gateway owns: framing by the SDK, death reported.

Design. The MCP SDK's ``stdio_client`` hides the process it starts, and with it the exit
status, so a server that dies shows up only as "connection closed". ``process_stdio_client``
does the same job with the process in hand: each stdout line is parsed by the SDK's JSON-RPC
message model and each message written with its serializer (no framing of our own), and
shutdown follows the SDK's sequence and bounds (close stdin, wait ``PROCESS_TERMINATION_TIMEOUT``,
SIGTERM the process group, SIGKILL after ``FORCE_KILL_TIMEOUT``), shielded so a cancelled caller
cannot leak a process. Structured concurrency: three tasks (exit watcher, stdout reader, stdin
writer) live in a task group scoped to the ``async with`` block.

What it adds: a pidfd (Linux) says when the process exits; if that happens while the transport
is open, ``on_exit(returncode)`` is awaited *before* the session's read stream ends, so the
caller can explain the death first. A dead server's stream ends even if a child it left keeps
stdout open, and children left in its process group are killed when the transport closes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TextIO

import anyio
import anyio.abc
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.stdio import FORCE_KILL_TIMEOUT, PROCESS_TERMINATION_TIMEOUT
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

from mcpproxy.upstream.stdio_lines import LineChunks

logger = logging.getLogger(__name__)

EXIT_REPORT_TIMEOUT = 2.0
"""Seconds the stream waits for the exit to be explained before it ends anyway."""
WRITER_FLUSH_TIMEOUT = 0.5
"""Seconds accepted messages get to reach the server's stdin at shutdown (the SDK's value)."""
KILL_REAP_TIMEOUT = 2.0
"""Seconds for the event loop to see a killed process die; only an unkillable one runs it out."""
EXIT_POLL_INTERVAL = 0.01
"""Between the kernel saying the process is gone and the event loop having reaped it."""
NO_PIDFD_POLL_INTERVAL = 0.2
"""How often the return code is checked where there are no pidfds (not Linux)."""


async def _pidfd_wait(pid: int) -> bool:
    """Wait for ``pid`` to exit through a pidfd (Linux 5.3+); ``False`` when there is none."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return False
    try:
        fd = pidfd_open(pid)
    except OSError:
        return False  # already reaped (ESRCH), or no pidfd support
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)
    return True


async def wait_for_exit(process: anyio.abc.Process) -> int:
    """The exit status of ``process``, however long it lives.

    On Linux a pidfd says when the process is gone; the event loop's child watcher sets the
    return code moments later. ``process.wait()`` is not used: on asyncio it also waits for
    the pipes to close, which a leftover child holding stdout can postpone indefinitely.
    """
    event_driven = process.returncode is not None or await _pidfd_wait(process.pid)
    interval = EXIT_POLL_INTERVAL if event_driven else NO_PIDFD_POLL_INTERVAL
    while process.returncode is None:  # noqa: ASYNC110 - a return code has no event to wait on (the SDK polls too)
        await anyio.sleep(interval)
    return process.returncode


def parse_line(line: str) -> SessionMessage | Exception:
    """One stdout line as the SDK's JSON-RPC message, or the parse error as a value for the session."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        logger.debug("unparseable line from an MCP server: %.200s", line)
        return exc


@asynccontextmanager
async def process_stdio_client(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    errlog: TextIO,
    on_exit: Callable[[int | None], Awaitable[None]],
) -> AsyncIterator[TransportStreams]:
    """Run ``argv`` and exchange newline-delimited JSON-RPC with it, reporting its death.

    Like the SDK's ``stdio_client`` (same framing, same shutdown sequence and bounds), plus:
    when the process exits while the transport is open, ``on_exit(returncode)`` is awaited
    before the read stream ends, and the stream ends even if a leftover child keeps the
    server's stdout open.

    Raises:
        OSError: The process could not be started.
    """
    if sys.platform == "win32":  # pragma: no cover - process groups and pidfds are POSIX
        raise OSError("sandboxed stdio servers need a POSIX system")
    process = await anyio.open_process(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        start_new_session=True,
    )
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)
    shutting_down = False
    explained = anyio.Event()
    stdout_done = anyio.Event()
    writer_done = anyio.Event()

    async def end_stream() -> None:
        """End the session's stream, after the exit (if any) was explained."""
        if not shutting_down:
            with anyio.move_on_after(EXIT_REPORT_TIMEOUT):
                await explained.wait()
        read_send.close()

    async def watch_exit() -> None:
        returncode = await wait_for_exit(process)
        try:
            if not shutting_down:
                await on_exit(returncode)
        finally:
            explained.set()
        if not shutting_down:
            # Let the reader pass on what the server wrote last; a child holding stdout open cannot stall us.
            with anyio.move_on_after(EXIT_REPORT_TIMEOUT):
                await stdout_done.wait()
            read_send.close()

    async def read_stdout() -> None:
        assert process.stdout is not None
        # Pieces that end at line boundaries: the split below stays linear for long lines.
        stdout = LineChunks(process.stdout, encoding="utf-8", errors="replace")
        delivering = True
        buffer = ""
        try:
            async for chunk in stdout:
                lines = (buffer + chunk).split("\n")
                buffer = lines.pop()
                for line in lines:
                    if not delivering or not line.strip():
                        continue  # after the session left, keep draining so the server never blocks
                    try:
                        await read_send.send(parse_line(line))
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        delivering = False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError, OSError):
            pass  # our shutdown closed the pipe, or it broke: the stream ends either way
        finally:
            stdout_done.set()
        await end_stream()

    async def write_stdin() -> None:
        assert process.stdin is not None
        try:
            async with write_recv:
                async for message in write_recv:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    # An unpaired surrogate (a request's "\ud800", which the gateway refuses in a call's
                    # arguments, may still come in another field) is written as the JSON escape it came
                    # as, rather than end the session of every call on this server.
                    await process.stdin.send(data.encode("utf-8", "backslashreplace"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await end_stream()  # the server stopped reading: the session must not wait forever
        finally:
            writer_done.set()

    async def stop_process() -> None:
        """Close stdin, give the server its grace period, then SIGTERM and SIGKILL its group."""
        assert process.stdin is not None and process.stdout is not None
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
        # Waited for here, not through the watcher: a cancelled caller has cancelled that task too.
        with anyio.move_on_after(PROCESS_TERMINATION_TIMEOUT):
            await wait_for_exit(process)
        if process.returncode is None:
            await terminate_posix_process_tree(process, FORCE_KILL_TIMEOUT)
            with anyio.move_on_after(KILL_REAP_TIMEOUT):
                await wait_for_exit(process)
            if process.returncode is None:
                logger.warning("MCP server process %d is still alive after SIGKILL; abandoning it", process.pid)
        else:
            # The server is gone; children it left in its process group go with it. (A group id
            # stays reserved while a member lives, so this cannot hit an unrelated process group.)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdout.aclose()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_exit)
            tg.start_soon(read_stdout)
            tg.start_soon(write_stdin)
            try:
                yield read_recv, write_send
            finally:
                shutting_down = True
                with anyio.CancelScope(shield=True):
                    read_recv.close()
                    write_send.close()
                    with anyio.move_on_after(WRITER_FLUSH_TIMEOUT):
                        await writer_done.wait()
                    await stop_process()
                tg.cancel_scope.cancel()
    finally:
        for stream in (read_send, read_recv, write_send, write_recv):
            stream.close()
        if process.returncode is not None:
            # Reaped already, so this only releases the pipes and the event loop's transport.
            with anyio.CancelScope(shield=True):
                await process.aclose()


__all__ = ["parse_line", "process_stdio_client", "wait_for_exit"]
