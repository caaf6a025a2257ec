"""The code service: one per gateway, running programs on the engines under limits.

``CodeService(gw)`` owns the engines (the embedded interpreter pool for ``python``, warm
sandboxed workers for ``python-full`` and ``typescript``) and the admission control.
``async with service.running():`` starts them (the HTTP app does this in its lifespan, and
registers the service for the gateway with :func:`attach`); a gateway served without it (a
library user, the stdio mode) gets a service started for the one call and stopped after it —
slower, never different.

One execution, in order (``execute``):

1. the request is checked; ``allowed_tools`` entries that match no tool the caller may use
   are reported at once, before anything runs;
2. the execution is recorded like a call (``code_execution``, ``via`` of the caller): it is
   the parent of every tool call the program makes, in the activity log and in traces;
3. a slot is taken (``Admission``: bounded concurrency and queue, ``Overloaded`` at once
   past them);
4. the program runs on its engine with a wall-time limit; output past the output limit stops
   it; on timeout what it printed so far is returned with a ``TimeoutError``;
5. the result: value, output, error with its line, one line per tool call, duration.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio

from mcpproxy.codemode.bridge import Bridge
from mcpproxy.codemode.engine import Engine, Job, Outcome, OutputLimitExceeded
from mcpproxy.codemode.model import (
    ExecError,
    ExecutionRequest,
    ExecutionResult,
    Limits,
    Output,
    ToolCallLog,
    enabled_languages,
    json_safe,
)
from mcpproxy.codemode.pool import Admission
from mcpproxy.codemode.sandboxing import WorkerSandbox, select_worker_sandbox
from mcpproxy.codemode.scope import ToolScope
from mcpproxy.codemode.stubs import mentioned, namespaces, python_prelude, typescript_prelude
from mcpproxy.errors import InvalidArguments, PolicyDenied
from mcpproxy.gateway import CallContext, CallRecord, Gateway

logger = logging.getLogger(__name__)

_SERVICES: weakref.WeakKeyDictionary[Gateway, CodeService] = weakref.WeakKeyDictionary()

ARGUMENTS_KEPT = 8000
"""Characters of a program kept in its activity record."""


class Listener(Protocol):
    """Hears an execution as it runs (progress notifications, the CLI)."""

    def line(self, stream: str, text: str) -> None:
        """One complete line of the program's output (may be called from another thread)."""

    def tool_call(self, call: ToolCallLog) -> None:
        """One finished tool call."""


class CodeService:
    """Runs programs for one gateway (see the module docstring).

    Args:
        gw: The gateway.
        warm: Keep warm workers (``False``: a service for one call).
    """

    def __init__(self, gw: Gateway, *, warm: bool = True) -> None:
        self.gw = gw
        settings = gw.settings
        self.languages = enabled_languages(settings)
        self.admission = Admission(settings.code_max_concurrent, settings.code_max_queued)
        self.sandbox: WorkerSandbox | None = None
        self.engines: dict[str, Engine] = {}
        self.warm = warm
        self.executions = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()

    def _make(self, language: str, sandbox: WorkerSandbox | None) -> Engine:
        settings = self.gw.settings
        if not self.warm:
            settings = settings.model_copy(update={"code_warm_workers": 0})
        if language == "python":
            from mcpproxy.codemode.engines.monty import MontyEngine

            return MontyEngine(settings)
        from mcpproxy.codemode.engines.workers import CPythonEngine, DenoEngine

        assert sandbox is not None
        return CPythonEngine(settings, sandbox) if language == "python-full" else DenoEngine(settings, sandbox)

    async def engine(self, language: str) -> Engine:
        """The running engine of ``language``, started on first use in the service's task group.

        Raises:
            PolicyDenied: The language is not offered.
            ProxyError: The engine cannot start here.
        """
        found = self.engines.get(language)
        if found is not None:
            return found
        if language not in self.languages or self._tg is None:
            raise PolicyDenied(
                f"language '{language}' is not offered here",
                hint=f"use one of: {', '.join(self.languages) or 'none (code execution is off)'}",
            )
        async with self._lock:
            found = self.engines.get(language)
            if found is not None:
                return found
            if language != "python" and self.sandbox is None:
                mode = self.gw.settings.code_isolation
                self.sandbox = await anyio.to_thread.run_sync(select_worker_sandbox, mode)
                if self.sandbox.sandbox is None:
                    logger.warning("code execution: no OS sandbox for worker languages: %s", self.sandbox.reason)
            engine = self._make(language, self.sandbox)
            await self._tg.start(self._host, engine)
            self.engines[language] = engine
            return engine

    async def _host(self, engine: Engine, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with engine.running():
            task_status.started()
            await anyio.sleep_forever()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CodeService]:
        """Run the service for the block: engines start on first use and stop (every worker
        killed) when the block ends."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    def status(self) -> dict[str, Any]:
        """Languages, sandbox and load, for diagnostics."""
        return {
            "languages": list(self.languages),
            "started": list(self.engines),
            "sandbox": self.sandbox.name if self.sandbox is not None else None,
            "sandbox_reason": self.sandbox.reason if self.sandbox is not None else None,
            "running": self.admission.running,
            "waiting": self.admission.waiting,
            "refused": self.admission.refused,
            "executions": self.executions,
        }

    # -- one execution -----------------------------------------------------------------------

    async def execute(
        self, request: ExecutionRequest, ctx: CallContext, listener: Listener | None = None
    ) -> ExecutionResult:
        """Run one program (see the module docstring).

        Raises:
            InvalidArguments: A bad request, or ``allowed_tools`` entries matching no tool.
            PolicyDenied: The language is not offered.
            Overloaded: Too many programs running and waiting.
            ProxyError: The engine cannot run here (no sandbox, no Deno...).
        """
        if request.language not in self.languages:
            raise PolicyDenied(
                f"language '{request.language}' is not offered here",
                hint=f"use one of: {', '.join(self.languages) or 'none (code execution is off)'}",
            )
        scope = ToolScope(self.gw, ctx.token, request.allowed_tools)
        unknown = scope.unknown()
        if unknown:
            raise InvalidArguments(
                f"allowed_tools entries match no tool you may use: {', '.join(unknown)}",
                hint="use names retrieve_tools returns ('server:tool') or 'server:*'",
                data={"unknown": unknown},
            )
        limits = Limits.from_settings(
            self.gw.settings, timeout_ms=request.timeout_ms, max_tool_calls=request.max_tool_calls
        )
        record = CallRecord(
            name="code_execution",
            arguments={
                "language": request.language,
                "code": request.code[:ARGUMENTS_KEPT],
                "allowed_tools": list(request.allowed_tools) if request.allowed_tools is not None else None,
            },
            ctx=ctx,
        )
        self._observe("call_started", record)
        result: ExecutionResult | None = None
        failure: BaseException | None = None
        try:
            async with self.admission.slot(limits.timeout_s):
                engine = await self.engine(request.language)
                result = await self._run(engine, request, ctx, scope, limits, record.id, listener)
            return result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            record.finish(result=result.to_call_result() if result is not None else None, error=failure)
            self._observe("call_finished", record)

    def _observe(self, event: str, record: CallRecord) -> None:
        for observer in self.gw.observers:
            try:
                getattr(observer, event)(record)
            except Exception:
                logger.exception("call observer %r failed on %s", observer, event)

    async def _run(
        self,
        engine: Engine,
        request: ExecutionRequest,
        ctx: CallContext,
        scope: ToolScope,
        limits: Limits,
        execution_id: str,
        listener: Listener | None,
    ) -> ExecutionResult:
        started = time.perf_counter()
        self.executions += 1
        spaces = namespaces(scope.entries())
        used = mentioned(request.code, spaces)
        prelude = typescript_prelude(used) if request.language == "typescript" else python_prelude(used)
        on_line: Callable[[str, str], None] | None = listener.line if listener is not None else None
        output = Output(limits.max_output_bytes, on_line)
        bridge = Bridge(
            self.gw,
            ctx,
            execution_id=execution_id,
            scope=scope,
            limits=limits,
            tier=request.tier,
            spaces=spaces,
            language=request.language,
            on_call=listener.tool_call if listener is not None else None,
        )
        job = Job(code=request.code, input=request.input, prelude=prelude, limits=limits)
        outcome: Outcome
        truncated = False
        try:
            with anyio.move_on_after(limits.timeout_s) as timer:
                outcome = await engine.execute(job, bridge, output)
            if timer.cancelled_caught:
                message = f"the program ran past its wall-time limit ({limits.timeout_s:g} s)"
                outcome = Outcome(ok=False, error=ExecError("TimeoutError", message))
        except OutputLimitExceeded:
            truncated = True
            outcome = Outcome(
                ok=False,
                error=ExecError(
                    "OutputLimitExceeded",
                    f"the program wrote more than {limits.max_output_bytes} bytes of output and was stopped",
                ),
            )
        finally:
            bridge.close()
            output.flush_lines()
        if outcome.error is not None and outcome.error.type == "MemoryError":
            limit = f"the program ran out of memory (limit {limits.memory_bytes // (1024 * 1024)} MiB)"
            detail = outcome.error.message
            outcome.error.message = limit + (f": {detail}" if detail and "limit" not in detail else "")
        value = json_safe(outcome.value)
        return ExecutionResult(
            execution_id=execution_id,
            language=request.language,
            ok=outcome.ok,
            value=value if outcome.ok else None,
            stdout=output.stdout,
            stderr=output.stderr,
            error=outcome.error,
            tool_calls=list(bridge.tool_calls),
            duration_ms=(time.perf_counter() - started) * 1000,
            output_truncated=truncated or output.exceeded,
        )


@asynccontextmanager
async def attach(gw: Gateway) -> AsyncIterator[CodeService]:
    """Run a code service with warm pools for ``gw`` for the block; ``service_for(gw)`` finds it.

    Nothing starts until a program runs: each engine (and its pool of warm workers) starts on
    the first program in its language, so a gateway that never runs code pays nothing.
    """
    service = CodeService(gw)
    async with service.running():
        _SERVICES[gw] = service
        try:
            yield service
        finally:
            _SERVICES.pop(gw, None)


def service_for(gw: Gateway) -> CodeService | None:
    """The running code service of ``gw``, if one is attached."""
    return _SERVICES.get(gw)


async def execute(
    gw: Gateway, request: ExecutionRequest, ctx: CallContext, listener: Listener | None = None
) -> ExecutionResult:
    """Run one program on ``gw``'s service, or on a service started for this call."""
    if not gw.settings.code_execution:
        raise PolicyDenied("code execution is turned off on this gateway", hint="the operator sets code_execution")
    service = service_for(gw)
    if service is not None:
        return await service.execute(request, ctx, listener)
    async with CodeService(gw, warm=False).running() as cold:
        return await cold.execute(request, ctx, listener)

