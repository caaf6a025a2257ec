"""Warm pools of pre-started workers, and admission of executions.

Design. Starting a sandboxed interpreter costs tens to hundreds of milliseconds (bubblewrap,
the sandbox launcher, the interpreter itself); running a short program on one that is
already up costs a few. A :class:`WorkerPool` keeps ``size`` workers started and idle, each
waiting for its one job; taking one hands it over at once and wakes the filler task, which
starts a replacement in the background. When the pool is empty (a burst), the execution
starts a worker itself (cold). Workers are never reused: each is killed after its job.

:class:`Admission` bounds the executions of a gateway: ``limit`` run at once, up to
``queue`` wait in order, and the next one is refused at once with ``Overloaded`` — a flood
of programs gets a clear answer immediately and never a hang. A waiting execution waits at
most its own wall-time limit.

Both live in the code service's task group: leaving it cancels the filler and kills every
idle worker, so no process outlives the gateway.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

from mcpproxy.codemode.worker import Worker
from mcpproxy.errors import Overloaded, ProxyError
from mcpproxy.upstream.limits import SlotLimiter

logger = logging.getLogger(__name__)

RETRY_MAX = 30.0
"""Longest pause between attempts when workers keep failing to start."""


class WorkerPool:
    """Pre-started workers of one language.

    Args:
        language: For messages.
        start: Starts one worker (raises ``ProxyError`` when it cannot).
        size: Idle workers to keep ready (0: every worker starts on demand).
    """

    def __init__(self, language: str, start: Callable[[], Awaitable[Worker]], size: int) -> None:
        self.language = language
        self._start = start
        self.size = size
        self._ready: deque[Worker] = deque()
        self._wanted = anyio.Event()
        self._changed = anyio.Event()
        self._tg: TaskGroup | None = None
        self.started = 0
        self.cold_starts = 0
        self.last_error: str | None = None

    @property
    def idle(self) -> int:
        return len(self._ready)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep the pool filled for the block; kill the idle workers after it."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self.size > 0:
                    tg.start_soon(self._fill)
                try:
                    yield
                finally:
                    self._tg = None
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                while self._ready:
                    await self._ready.popleft().kill()

    async def _fill(self) -> None:
        failures = 0
        while True:
            while len(self._ready) < self.size:
                try:
                    worker = await self._start()
                except ProxyError as exc:
                    failures += 1
                    self.last_error = exc.message
                    delay = min(RETRY_MAX, 0.5 * 2**failures)
                    logger.warning("%s worker failed to start (retrying in %.1f s): %s", self.language, delay, exc)
                    await anyio.sleep(delay)
                    continue
                failures = 0
                self.started += 1
                self._ready.append(worker)
                self._changed.set()
                self._changed = anyio.Event()
            self._wanted = anyio.Event()
            await self._wanted.wait()

    async def retire(self, worker: Worker) -> None:
        """Kill a used worker at once; reap it in the background when the pool runs (so the
        program's caller does not wait for the process table)."""
        worker.signal_kill()
        if self._tg is not None:
            self._tg.start_soon(worker.reap)
        else:
            await worker.reap()

    async def wait_idle(self, count: int) -> None:
        """Return once at least ``count`` workers are idle (bound it with ``anyio.fail_after``)."""
        while len(self._ready) < count:
            await self._changed.wait()

    async def take(self) -> Worker:
        """A ready worker, or a freshly started one when none is idle.

        Raises:
            ProxyError: No worker could be started.
        """
        while self._ready:
            worker = self._ready.popleft()
            self._wanted.set()
            if worker.alive:
                return worker
            await worker.kill()
        self._wanted.set()
        self.cold_starts += 1
        return await self._start()


class Admission(SlotLimiter):
    """At most ``limit`` executions at once and ``queue`` waiting; the next is refused at once.

    Args:
        limit: Executions running at once.
        queue: Executions waiting at most.
    """

    def refusal(self, *, timed_out: float | None) -> Overloaded:
        why = (
            f"{self.running} programs running and {self.waiting} waiting"
            if timed_out is None
            else f"no slot came free within {timed_out:g} s"
        )
        return Overloaded(
            f"code execution is overloaded: {why}",
            hint="retry in a moment; the operator can raise code_max_concurrent / code_max_queued",
            data={"running": self.running, "waiting": self.waiting},
        )


