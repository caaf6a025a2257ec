"""The limiter, the circuit breaker, the token buckets and time parsing, on their own."""

from __future__ import annotations

import anyio
import pytest

from mcpproxy.errors import CircuitOpen, Overloaded
from mcpproxy.observe.when import iso, parse_when
from mcpproxy.upstream.limits import CircuitBreaker, CircuitState, ConcurrencyLimiter, TokenBuckets

pytestmark = pytest.mark.anyio


async def test_the_limiter_runs_up_to_its_limit_queues_in_order_and_refuses_past_the_queue() -> None:
    limiter = ConcurrencyLimiter("s", limit=1, queue=2)
    order: list[int] = []
    release = anyio.Event()

    async def user(number: int) -> None:
        async with limiter.slot(wait_at_most=30):
            order.append(number)
            await release.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for number in range(3):
                tg.start_soon(user, number)
                await anyio.wait_all_tasks_blocked()
            assert (limiter.running, limiter.waiting) == (1, 2)
            with pytest.raises(Overloaded, match="1 calls running and 2 waiting"):
                await limiter.acquire(wait_at_most=30)
            assert limiter.refused == 1
            release.set()
    assert order == [0, 1, 2]
    assert (limiter.running, limiter.waiting) == (0, 0)


async def test_a_caller_that_waits_too_long_or_gives_up_leaves_the_queue_as_it_was() -> None:
    limiter = ConcurrencyLimiter("s", limit=1, queue=5)
    await limiter.acquire(wait_at_most=1)
    with pytest.raises(Overloaded, match="no call slot came free"):
        await limiter.acquire(wait_at_most=0.01)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire(wait_at_most=30)
    assert (limiter.running, limiter.waiting) == (1, 0)
    limiter.release()
    assert limiter.running == 0


def test_the_circuit_opens_after_failures_in_a_row_lets_one_probe_through_and_closes_on_success() -> None:
    breaker = CircuitBreaker("s", threshold=3, cooldown=0.0)
    for _ in range(2):
        breaker.failed(breaker.before_call())
    breaker.succeeded(breaker.before_call())  # a success resets the count
    for _ in range(3):
        breaker.failed(breaker.before_call())
    assert breaker.state.value == "open" and breaker.opens == 1
    probe = breaker.before_call()  # cooldown 0: half-open, this call is the probe
    assert probe and breaker.state.value == "half_open"
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()  # only one probe at a time
    assert refused.value.data["server"] == "s"
    breaker.succeeded(probe)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0


def test_a_failed_probe_opens_the_circuit_again_and_a_reset_forgets_everything() -> None:
    breaker = CircuitBreaker("s", threshold=1, cooldown=60.0)
    breaker.failed(breaker.before_call())
    with pytest.raises(CircuitOpen) as paused:
        breaker.before_call()
    assert 59 <= paused.value.data["retry_after"] <= 60
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    never = CircuitBreaker("s", threshold=0, cooldown=1.0)
    for _ in range(100):
        never.failed(never.before_call())
    assert never.state is CircuitState.CLOSED


def test_token_buckets_allow_a_burst_then_the_rate_per_key() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", now=100.0) == pytest.approx(0.5)
    assert buckets.take("b", now=100.0) == 0.0  # another client has its own bucket
    assert buckets.take("a", now=100.6) == 0.0  # 0.6 s refilled 1.2 tokens
    small = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    for key in ("x", "y", "z"):
        small.take(key, now=0.0)
    assert small.take("x", now=0.0) == 0.0  # "x" was forgotten: a fresh bucket


def test_moments_are_read_as_durations_ago_iso_dates_or_unix_times() -> None:
    assert parse_when("90s", now=1000.0) == 910.0
    assert parse_when("2h", now=10_000.0) == 2800.0
    assert parse_when("1d", now=100_000.0) == 13_600.0
    assert parse_when("1700000000") == 1_700_000_000.0
    assert parse_when("2024-01-02T03:04:05Z") == parse_when("2024-01-02T03:04:05") == 1704164645.0
    assert iso(1704164645.25) == "2024-01-02T03:04:05.250Z"
    with pytest.raises(ValueError, match="not a time"):
        parse_when("yesterday")
