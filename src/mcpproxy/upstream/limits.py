"""Keeping one slow or failing upstream (or one greedy client) from taking the gateway down.

Three small mechanisms, each per key and each answering at once when it says no:

* :class:`ConcurrencyLimiter`: at most ``limit`` calls to a server run at once; up to
  ``queue`` more wait in order (each for a bounded time); past that a call is refused
  immediately with ``Overloaded``, so a hung server fills its own queue and nobody else's.
  (Its :class:`SlotLimiter` also admits code executions, ``codemode.pool.Admission``.)
* :class:`CircuitBreaker`: after ``threshold`` consecutive failures of a server (timeouts,
  lost connections, protocol errors; not a tool saying ``isError``), calls to it fail fast
  with ``CircuitOpen`` for ``cooldown`` seconds; then one probe call goes through: success
  closes the circuit, failure opens it again. A fresh session (the server reconnected)
  closes it too.
* :class:`TokenBuckets`: a token bucket per client (``rate`` per second, ``burst`` deep),
  answering how long to wait when empty; idle buckets are forgotten.

All are plain objects used from the event loop's thread; no locks are needed.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from mcpproxy.errors import CircuitOpen, Overloaded


class SlotLimiter:
    """At most ``limit`` holders at once and up to ``queue`` waiting in order; the next is refused
    at once with the ``Overloaded`` that ``refusal`` builds (subclasses say what is limited).

    Args:
        limit: Slots held at once.
        queue: Waiters at most; the next one is refused.
    """

    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self.queue = queue
        self.running = 0
        self._waiters: deque[anyio.Event] = deque()
        self.refused = 0

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def refusal(self, *, timed_out: float | None) -> Overloaded:
        """The error for a refused caller: the queue was full, or no slot came in ``timed_out`` s."""
        raise NotImplementedError

    @asynccontextmanager
    async def slot(self, wait_at_most: float) -> AsyncIterator[None]:
        """Hold one slot for the block.

        Raises:
            Overloaded: The queue is full, or no slot came free within ``wait_at_most`` seconds.
        """
        await self.acquire(wait_at_most)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, wait_at_most: float) -> None:
        if self.running < self.limit and not self._waiters:
            self.running += 1
            return
        if len(self._waiters) >= self.queue:
            self.refused += 1
            raise self.refusal(timed_out=None)
        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            with anyio.fail_after(wait_at_most):
                await granted.wait()
        except BaseException as exc:
            if granted.is_set():
                self.release()  # the slot was handed to us as we gave up: pass it on
            else:
                self._waiters.remove(granted)
            if isinstance(exc, TimeoutError):
                self.refused += 1
                raise self.refusal(timed_out=wait_at_most) from None
            raise
        # The releaser left ``running`` as it was: its slot is ours now.

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self.running -= 1


class ConcurrencyLimiter(SlotLimiter):
    """The calls to one server: a :class:`SlotLimiter` whose refusals name the server.

    Args:
        name: The server (for messages).
        limit: Calls running at once.
        queue: Calls waiting at most; the next one is refused.
    """

    def __init__(self, name: str, limit: int, queue: int) -> None:
        super().__init__(limit, queue)
        self.name = name

    def refusal(self, *, timed_out: float | None) -> Overloaded:
        data = {"server": self.name, "running": self.running, "waiting": self.waiting}
        if timed_out is None:
            return Overloaded(
                f"server '{self.name}' is overloaded: {self.running} calls running and {self.waiting} waiting",
                hint="retry in a moment; raise max_concurrent_calls / max_queued_calls if the server can take more",
                data=data,
            )
        return Overloaded(
            f"server '{self.name}' is overloaded: no call slot came free within {timed_out:g} s",
            hint="retry later; the server is slow to answer the calls before this one",
            data=data,
        )


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one server.

    Args:
        name: The server (for messages).
        threshold: Consecutive failures that open the circuit (0: never opens).
        cooldown: Seconds the circuit stays open before one probe is let through.
    """

    def __init__(self, name: str, threshold: int, cooldown: float) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.opens = 0
        self._probing = False

    def before_call(self) -> bool:
        """Let a call through (returns whether it is the probe) or raise ``CircuitOpen``."""
        if self.state is CircuitState.CLOSED:
            return False
        now = time.monotonic()
        if self.state is CircuitState.OPEN and now - self.opened_at >= self.cooldown:
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        retry_after = max(0.0, self.cooldown - (now - self.opened_at))
        raise CircuitOpen(
            f"calls to server '{self.name}' are paused after {self.failures} failures in a row",
            hint=f"mcpproxy tries it again in {retry_after:.0f} s; `mcpproxy upstream logs {self.name}` says why",
            data={"server": self.name, "retry_after": round(retry_after, 1), "failures": self.failures},
        )

    def succeeded(self, probe: bool) -> None:
        if probe:
            self._probing = False
        self.failures = 0
        self.state = CircuitState.CLOSED

    def failed(self, probe: bool) -> None:
        if probe:
            self._probing = False
        self.failures += 1
        if self.threshold and (probe or self.failures >= self.threshold) and self.state is not CircuitState.OPEN:
            self.state = CircuitState.OPEN
            self.opened_at = time.monotonic()
            self.opens += 1

    def abandoned(self, probe: bool) -> None:
        """The call ended without a verdict (cancelled): a probe slot is freed."""
        if probe:
            self._probing = False

    def reset(self) -> None:
        """A fresh session: forget past failures."""
        self.failures = 0
        self.state = CircuitState.CLOSED
        self._probing = False


class TokenBuckets:
    """Token buckets by key (a token fingerprint or a client address).

    Args:
        rate: Tokens added per second (requests per second allowed on average).
        burst: Bucket size (requests allowed at once after a pause).
        max_keys: Buckets kept; the least recently used are forgotten past this.
    """

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is there."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), moment))
        tokens = min(float(self.burst), tokens + (moment - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, moment)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
