"""A sandboxed worker process and the protocol the gateway speaks with it.

Design. A worker is one process (``python-full``: CPython; ``typescript``: Deno) started in
the OS sandbox, with three pipes and nothing else: its stdin carries the gateway's frames
(the job, then answers), its stdout the worker's frames, its stderr whatever the program or
the runtime writes there. Frames are JSON objects, one per line, each at most
``MAX_FRAME_BYTES``::

    worker -> gateway   {"t": "ready"}
                        {"t": "out", "s": "stdout" | "stderr", "d": "text"}
                        {"t": "req", "id": 1, "cap": "...", "op": "call", "a": {...}}
                        {"t": "done", "ok": true, "value": ...}
                        {"t": "done", "ok": false, "error": {"type", "message", "line"}}
    gateway -> worker   {"t": "job", "cap": "...", "code": ..., "input": ..., "prelude": ..., ...}
                        {"t": "res", "id": 1, "r": {...}}

A line that is not a frame (a program writing to the raw file descriptor) is program output.
Requests are served concurrently (``Promise.all`` in TypeScript), at most ``MAX_IN_FLIGHT`` at
once per execution; each is checked against the execution's capability by the bridge, and a
request without it ends the program. A worker serves exactly one job and is then killed
(process group, SIGKILL; with bubblewrap its PID namespace takes every descendant along), so
nothing a program leaves behind — threads, files in ``/tmp``, a patched runtime — survives it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from mcpproxy.codemode.bridge import Bridge, CapabilityError
from mcpproxy.codemode.engine import Outcome, OutputLimitExceeded
from mcpproxy.codemode.model import ExecError, Output
from mcpproxy.errors import UpstreamUnavailable
from mcpproxy.sandbox.base import PreparedCommand

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 32 * 1024 * 1024
"""Largest frame either side may send (a tool result handed to a program is one frame)."""

MAX_IN_FLIGHT = 32
"""Requests of one program served at once; more wait (the worker blocks on its pipe)."""

STDERR_TAIL_LINES = 40
KILL_WAIT = 5.0
"""Seconds to wait for a killed worker to be reaped."""


class WorkerFailed(Exception):
    """The worker broke the protocol or died; the message says why."""


class Worker:
    """One started worker process (see the module docstring).

    Args:
        process: The process (started in its own session).
        prepared: How it was started (for exit explanations and cleanup).
        language: The language it runs.
    """

    def __init__(self, process: Process, prepared: PreparedCommand, language: str) -> None:
        assert process.stdout is not None and process.stdin is not None and process.stderr is not None
        self.process = process
        self.prepared = prepared
        self.language = language
        self._frames = BufferedByteReceiveStream(process.stdout)
        self._send_lock = anyio.Lock()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._killed = False

    @classmethod
    async def start(cls, prepared: PreparedCommand, language: str, *, ready_timeout: float) -> Worker:
        """Start the worker and wait for its ``ready`` frame.

        Raises:
            UpstreamUnavailable: It could not start, died, or did not get ready in time.
        """
        try:
            process = await anyio.open_process(
                list(prepared.argv), env=dict(prepared.env), cwd=prepared.cwd, start_new_session=True
            )
        except OSError as exc:
            prepared.cleanup()
            raise UpstreamUnavailable(f"the {language} worker cannot start: {exc}") from exc
        worker = cls(process, prepared, language)
        try:
            with anyio.fail_after(ready_timeout):
                frame = await worker.receive()
            if not isinstance(frame, dict) or frame.get("t") != "ready":
                raise WorkerFailed(f"unexpected first frame {str(frame)[:200]!r}")
        except (WorkerFailed, TimeoutError) as exc:
            why = "did not get ready in time" if isinstance(exc, TimeoutError) else str(exc)
            await worker.kill()
            detail = await worker.explain()
            raise UpstreamUnavailable(
                f"the {language} worker failed to start: {why}" + (f" ({detail})" if detail else ""),
                hint="`mcpproxy doctor` checks the sandbox; the gateway log has the worker's stderr",
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await worker.kill()
            raise
        return worker

    @property
    def alive(self) -> bool:
        return not self._killed and self.process.returncode is None

    async def send(self, frame: dict[str, Any]) -> None:
        data = (json.dumps(frame, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        assert self.process.stdin is not None
        async with self._send_lock:
            await self.process.stdin.send(data)

    async def receive(self) -> dict[str, Any] | str | None:
        """The next frame, a raw output line (``str``), or ``None`` at the end of the stream.

        Raises:
            WorkerFailed: A line longer than ``MAX_FRAME_BYTES``.
        """
        try:
            line = await self._frames.receive_until(b"\n", MAX_FRAME_BYTES)
        except anyio.DelimiterNotFound:
            raise WorkerFailed(f"the worker sent a line longer than {MAX_FRAME_BYTES} bytes") from None
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return None
        text = line.decode("utf-8", errors="replace")
        if text.startswith('{"t":'):
            try:
                frame = json.loads(text)
            except ValueError:
                return text + "\n"
            if isinstance(frame, dict):
                return frame
        return text + "\n"

    async def pump_stderr(self, output: Output | None, on_exceeded: Callable[[], None]) -> None:
        """Copy the worker's stderr into ``output`` (and keep its tail) until it closes."""
        stream = self.process.stderr
        assert stream is not None
        try:
            async for chunk in stream:
                text = chunk.decode("utf-8", errors="replace")
                for line in text.splitlines()[-STDERR_TAIL_LINES:]:
                    self.stderr_tail.append(line)
                if output is not None and not output.write("stderr", text):
                    on_exceeded()
                    return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return

    def signal_kill(self) -> None:
        """Send SIGKILL to the worker's process group now (``reap`` collects it); idempotent."""
        if not self._killed:
            self._killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """Kill the worker's process group and reap it (bounded); idempotent."""
        self.signal_kill()
        await self.reap()

    async def reap(self) -> None:
        """Wait (bounded) for the killed worker to exit, then release its resources."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(KILL_WAIT):
                await self.process.wait()
            await self.process.aclose()
        self.prepared.cleanup()

    async def explain(self) -> str | None:
        """Why the worker died, from its exit and stderr tail (after ``kill`` or its own death)."""
        with anyio.move_on_after(1.0):
            stream = self.process.stderr
            if stream is not None:
                try:
                    async for chunk in stream:
                        self.stderr_tail.extend(chunk.decode("utf-8", errors="replace").splitlines())
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
        tail = "\n".join(self.stderr_tail)
        return self.prepared.explain_exit(self.process.returncode, tail)


def _death_error(worker: Worker, explanation: str | None) -> ExecError:
    text = explanation or f"the {worker.language} worker exited (code {worker.process.returncode})"
    tail = "\n".join(worker.stderr_tail)
    if "memory" in text.lower() or "out of memory" in tail.lower():
        return ExecError("MemoryError", "")  # the service says which limit
    if "CPU" in text:
        return ExecError("TimeoutError", text)
    return ExecError("WorkerDied", text)


async def run_job(worker: Worker, job: dict[str, Any], bridge: Bridge, output: Output) -> Outcome:
    """Send ``job`` to ``worker`` and serve it until its ``done`` frame or its death.

    The caller kills the worker afterwards, whatever happened.

    Raises:
        OutputLimitExceeded: The program wrote more than the output limit.
    """
    limiter = anyio.CapacityLimiter(MAX_IN_FLIGHT)
    exceeded = False

    async def serve(frame: dict[str, Any], borrower: object) -> None:
        try:
            answer = await bridge.handle(frame.get("cap"), frame.get("op"), frame.get("a"))
        finally:
            limiter.release_on_behalf_of(borrower)
        try:
            await worker.send({"t": "res", "id": frame.get("id"), "r": answer})
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the worker is gone; its death is reported by the reader

    outcome: Outcome | None = None
    async with anyio.create_task_group() as tg:

        def on_exceeded() -> None:
            nonlocal exceeded
            exceeded = True
            tg.cancel_scope.cancel()

        tg.start_soon(worker.pump_stderr, output, on_exceeded)
        try:
            await worker.send(job)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await worker.kill()
            outcome = Outcome(ok=False, error=_death_error(worker, await worker.explain()))
        while outcome is None:
            try:
                frame = await worker.receive()
            except WorkerFailed as exc:
                outcome = Outcome(ok=False, error=ExecError("ProtocolError", str(exc)))
                break
            if frame is None:
                await worker.kill()
                outcome = Outcome(ok=False, error=_death_error(worker, await worker.explain()))
                break
            if isinstance(frame, str):
                if not output.write("stdout", frame):
                    exceeded = True
                    break
                continue
            kind = frame.get("t")
            if kind == "out":
                if not output.write(str(frame.get("s")), str(frame.get("d", ""))):
                    exceeded = True
                    break
            elif kind == "req":
                try:
                    bridge.check(frame.get("cap"))
                except CapabilityError as exc:
                    outcome = Outcome(ok=False, error=ExecError("CapabilityError", str(exc)))
                    break
                borrower = object()
                await limiter.acquire_on_behalf_of(borrower)
                tg.start_soon(serve, frame, borrower)
            elif kind == "done":
                if frame.get("ok"):
                    outcome = Outcome(ok=True, value=frame.get("value"))
                else:
                    error = frame.get("error")
                    raw: dict[str, Any] = error if isinstance(error, dict) else {}
                    line = raw.get("line")
                    outcome = Outcome(
                        ok=False,
                        error=ExecError(
                            str(raw.get("type") or "Error"),
                            str(raw.get("message") or ""),
                            line if isinstance(line, int) and not isinstance(line, bool) else None,
                        ),
                    )
        tg.cancel_scope.cancel()
    if exceeded:
        raise OutputLimitExceeded
    assert outcome is not None
    return outcome

