"""``python``: the embedded sandboxed interpreter (pydantic-monty), the fast path.

Design. Monty is a Python subset written in Rust: no file system, network, environment,
subprocess or import system beyond a small standard library, no ``__class__`` /
``__subclasses__`` / ``__builtins__`` / frames to climb, heap and execution-time limits
enforced inside the interpreter. Its workers are separate processes kept warm in a pool
(pydantic-monty's own), so a crash of the interpreter cannot take the gateway down.

The program's only way out is one external function, ``_mcp(op, payload)``: the engine
drives the program snapshot by snapshot (``feed_start`` / ``resume``), and at each call of
``_mcp`` awaits the bridge on the gateway's event loop, then resumes the program with the
answer — so ``call_tool`` is an ordinary blocking function inside the program. Any other
external function, OS call or unknown name is answered "not handled": Monty raises its own
error in the program. The runtime (``call_tool``...) and the typed ``tools`` are fed first in
the same session, so the program's line numbers are its own.

Never call ``MontyError.exception()``: with pydantic-monty 1.4 it aborts the process at exit
after a syntax error; ``display()`` and ``traceback()`` give everything needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio

from mcpproxy.codemode.bridge import Bridge, CapabilityError
from mcpproxy.codemode.engine import Job, Outcome, OutputLimitExceeded
from mcpproxy.codemode.model import ExecError, Output
from mcpproxy.codemode.runtime import PYTHON_RUNTIME
from mcpproxy.errors import Overloaded, UpstreamUnavailable
from mcpproxy.settings import Settings

MONTY_PRELUDE = "ToolError = RuntimeError\n" + PYTHON_RUNTIME
"""Monty has no class inheritance: ``ToolError`` is ``RuntimeError`` (its message starts with the error kind)."""

AWAIT_HINT = " (call_tool and the tools.* functions are ordinary functions in Python: call them without await)"


def _split_display(text: str) -> tuple[str, str]:
    kind, sep, message = text.partition(": ")
    if not sep or " " in kind.strip():
        return "Error", text
    return kind.strip(), message


def error_of(exc: Any) -> ExecError:
    """An ``ExecError`` from a ``MontyError`` (never through ``exception()``: see the module docstring)."""
    import pydantic_monty as pm

    if isinstance(exc, pm.MontyCrashedError):
        if exc.timed_out:
            return ExecError("TimeoutError", "the interpreter stopped answering and was killed")
        return ExecError("InterpreterCrashed", str(exc) or "the interpreter process died")
    if isinstance(exc, pm.MontySyntaxError | pm.MontyRuntimeError):
        kind, message = _split_display(exc.display("type-msg"))
        frames = exc.traceback()
        line = None
        if frames:
            program = frames[0].filename
            mine = [f for f in frames if f.filename == program]
            line = mine[-1].line if mine else None
        if "can't be awaited" in message or "can not be awaited" in message:
            message += AWAIT_HINT
        return ExecError(kind, message, line)
    return ExecError(type(exc).__name__, str(exc))


class MontyEngine:
    """Runs ``python`` jobs in pydantic-monty's warm worker pool.

    Args:
        settings: Concurrency, timeouts and warm workers.
    """

    language = "python"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the interpreter pool for the block."""
        from pydantic_monty import AsyncMonty

        s = self.settings
        pool = AsyncMonty(
            min_processes=max(1, min(s.code_warm_workers, s.code_max_concurrent)),
            max_processes=s.code_max_concurrent,
            checkout_timeout=30.0,  # admission already bounds checkouts: this only covers slow spawns
            # A backstop per host round trip; the program's own limits come first.
            request_timeout=s.code_max_timeout_ms / 1000.0 + 5.0,
            max_checkouts_per_worker=500,
        )
        try:
            await pool.__aenter__()
        except Exception as exc:
            raise UpstreamUnavailable(
                f"the python code engine cannot start: {exc}", hint="reinstall mcpproxy (pydantic-monty)"
            ) from exc
        self._pool = pool
        try:
            yield
        finally:
            self._pool = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await pool.__aexit__(None, None, None)

    async def execute(self, job: Job, bridge: Bridge, output: Output) -> Outcome:
        """Run one program (see the module docstring)."""
        import pydantic_monty as pm

        pool = self._pool
        if pool is None:
            raise UpstreamUnavailable("the python code engine is not running")
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        exceeded = threading.Event()
        with anyio.CancelScope() as scope:

            def stop() -> None:
                scope.cancel()

            def on_print(stream: Literal["stdout", "stderr"], text: str) -> None:
                # Called on pydantic-monty's I/O thread.
                with lock:
                    if not output.write(stream, text) and not exceeded.is_set():
                        exceeded.set()
                        loop.call_soon_threadsafe(stop)

            limits = job.limits
            try:
                async with pool.checkout(
                    script_name="program.py",
                    limits={
                        "max_feed_duration_secs": limits.timeout_s,
                        "max_memory": limits.memory_bytes,
                        "max_suspensions": limits.max_tool_calls * 2 + 10_000,
                    },
                    os_policy={"sleep": "system", "sleep_system_max": limits.timeout_s},
                ) as session:
                    await session.feed_run(MONTY_PRELUDE + job.prelude, print_callback=on_print)
                    snapshot = await session.feed_start(job.code, inputs={"input": job.input}, print_callback=on_print)
                    while not isinstance(snapshot, pm.MontyComplete):
                        snapshot = await self._answer(snapshot, bridge)
                    with lock:
                        return Outcome(ok=True, value=snapshot.output)
            except TimeoutError as exc:  # checkout_timeout: every interpreter is busy
                raise Overloaded(
                    "every python interpreter is busy", hint="retry in a moment; raise code_max_concurrent"
                ) from exc
            except CapabilityError as exc:
                return Outcome(ok=False, error=ExecError("CapabilityError", str(exc)))
            except pm.MontyError as exc:
                return Outcome(ok=False, error=error_of(exc))
        raise OutputLimitExceeded

    async def _answer(self, snapshot: Any, bridge: Bridge) -> Any:
        import pydantic_monty as pm

        if isinstance(snapshot, pm.AsyncFunctionSnapshot):
            if not snapshot.is_os_function and snapshot.function_name == "_mcp":
                op = snapshot.args[0] if snapshot.args else None
                payload = snapshot.args[1] if len(snapshot.args) > 1 else snapshot.kwargs.get("payload")
                answer = await bridge.handle(bridge.capability, op, payload)
                return await snapshot.resume({"return_value": answer})
            if snapshot.is_os_function:
                return await snapshot.resume_not_handled()
            name = str(snapshot.function_name)
            return await snapshot.resume({"exc_type": "NameError", "message": f"name '{name}' is not defined"})
        if isinstance(snapshot, pm.AsyncNameLookupSnapshot):
            return await snapshot.resume()
        # Futures only come from externals answered with a future, which this engine never does.
        return await snapshot.resume({})
