"""Upstreams that misbehave give their callers a clear error in bounded time, recover by themselves
where they can, and never disturb calls to other servers.

A real gateway runs real upstream processes: the chaos server (``tests/observe/chaos_server.py``,
FastMCP over stdio) whose tools crash the process mid-call, hang, write garbage onto the protocol
stream, flood notifications, answer after the timeout or answer 50 MB; a copy of it that exits at
start; and the healthy notes server, which a steady caller keeps calling throughout: every one of
its calls must succeed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.observe.chaos_server import CANCELLED_LINE, EXIT_LINE
from tests.observe.support import chaos_entry, metric, scrape
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway

from mcpproxy.upstream.base import ServerStatus, UpstreamState

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 120.0
CHAOS_TIMEOUT = 1.5
"""The chaos server's call_timeout: hangs and late answers end after this."""
BOUND = 15.0
"""Every failing call must have its answer within this (it fails the test, never asserts a time)."""

TABLE: list[tuple[str, str, float, float | None]] = []
"""The chaos table: fault, what the caller saw, seconds to that answer, seconds until the server
answered again (printed after the module; measured, never asserted)."""


@pytest.fixture(scope="module", autouse=True)
def print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if not TABLE or reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # shown even when the tests pass
        reporter.write_line("")
        reporter.write_line("chaos: fault, what the caller saw, answered after, server answering again after")
        for fault, saw, answered, recovered in TABLE:
            again = f"{recovered:.2f} s" if recovered is not None else "-"
            reporter.write_line(f"  {fault:<34} {saw:<40} {answered:6.2f} s   {again}")


def seen(response: httpx2.Response) -> str:
    """What a caller saw, in a few words: the status and the error kind (or the result)."""
    body = response.json()
    if response.status_code == 200:
        return "200, tool error" if body.get("isError") else "200, result"
    return f"{response.status_code} {body.get('error')}"


async def back_again(api: httpx2.AsyncClient, since: float) -> float:
    """Seconds from ``since`` until ``chaos:ok`` answers (retried, bounded by the caller)."""
    while (await call(api, "chaos:ok", {"text": "again"})).status_code != 200:  # noqa: ASYNC110
        await anyio.sleep(0.05)  # retrying until the server is back
    return time.monotonic() - since


class Steady:
    """Calls notes:add one after another until stopped; every call must succeed."""

    def __init__(self, api: httpx2.AsyncClient) -> None:
        self.api = api
        self.calls = 0
        self.errors: list[str] = []
        self._stop = anyio.Event()

    async def run(self) -> None:
        for i in range(100_000):
            if self._stop.is_set():
                return
            with anyio.fail_after(BOUND):
                response = await self.api.post("/call", json={"name": "notes:add", "args": {"a": i, "b": 1}})
            body = response.json()
            if response.status_code != 200 or body.get("isError"):
                self.errors.append(f"{response.status_code} {response.text[:200]}")
            self.calls += 1

    def stop(self) -> None:
        self._stop.set()


@asynccontextmanager
async def steady_notes(api: httpx2.AsyncClient) -> AsyncIterator[Steady]:
    steady = Steady(api)
    async with anyio.create_task_group() as tg:
        tg.start_soon(steady.run)
        try:
            yield steady
        finally:
            steady.stop()
    assert steady.errors == [], steady.errors[:3]
    assert steady.calls > 0


async def call(api: httpx2.AsyncClient, name: str, args: dict[str, Any] | None = None) -> httpx2.Response:
    with anyio.fail_after(BOUND):
        return await api.post("/call", json={"name": name, "args": args or {}})


def text(response: httpx2.Response) -> str:
    return "".join(block.get("text", "") for block in response.json().get("content", []))


async def wait_log_line(path: Path, line: str) -> None:
    """Wait (bounded by the caller) until the server's log file holds ``line``."""
    delay = 0.02
    file = anyio.Path(path)
    while not (await file.exists() and line in await file.read_text(encoding="utf-8", errors="replace")):
        await anyio.sleep(delay)  # polling a file another process writes: nothing to wait on
        delay = min(delay * 2, 0.2)


class ReadyCounter:
    """Counts transitions of a server into ``ready`` (a reconnect is one more)."""

    def __init__(self, gw: GatewayHandle, name: str) -> None:
        self.name = name
        self.count = 0
        self._changed = anyio.Event()
        gw.gateway.state_listeners.append(self._on_state)

    def _on_state(self, status: ServerStatus) -> None:
        if status.name == self.name and status.state is UpstreamState.READY:
            self.count += 1
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_beyond(self, count: int) -> None:
        while self.count <= count:
            await self._changed.wait()


def api_client(gw: GatewayHandle) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=60.0)


async def test_each_failure_mode_gets_a_clear_error_in_bounded_time_and_other_servers_never_notice(
    tmp_path: Path,
) -> None:
    servers = {
        "chaos": chaos_entry(call_timeout=CHAOS_TIMEOUT),
        "bulky": chaos_entry(call_timeout=60),
        "dead": chaos_entry("--exit-at-start"),
        "notes": fixture_entry("notes_server"),
    }
    with anyio.fail_after(WAIT):
        async with running_gateway(
            tmp_path, servers, backoff_initial=0.2, backoff_max=1.0, breaker_failures=0, isolation="none"
        ) as gw, api_client(gw) as api:
            await gw.wait_ready("chaos", "bulky", "notes")
            await gw.wait_for(lambda: gw.gateway.catalog.get("chaos", "hang") is not None, what="chaos tools")
            await gw.wait_for(lambda: gw.gateway.catalog.get("bulky", "big") is not None, what="bulky tools")
            await gw.wait_for(lambda: gw.gateway.catalog.get("notes", "add") is not None, what="notes tools")
            chaos_log = gw.gateway.server_log("chaos")
            readies = ReadyCounter(gw, "chaos")

            async with steady_notes(api):
                # Hangs: a timeout error after the server's call_timeout, and the cancellation reaches it.
                started = time.monotonic()
                hung = await call(api, "chaos:hang")
                answered = time.monotonic() - started
                assert hung.status_code == 504
                assert hung.json()["error"] == "upstream_timeout"
                assert f"within {CHAOS_TIMEOUT:g} s" in hung.json()["message"]
                with anyio.fail_after(BOUND):
                    await wait_log_line(chaos_log, CANCELLED_LINE)
                    TABLE.append(("hangs", seen(hung), answered, await back_again(api, started + answered)))

                # Answers after the timeout: the caller got its timeout; the late answer goes nowhere.
                started = time.monotonic()
                late = await call(api, "chaos:late", {"seconds": CHAOS_TIMEOUT + 1.5})
                answered = time.monotonic() - started
                assert late.status_code == 504
                after_late = await call(api, "chaos:ok", {"text": "after late"})
                assert after_late.status_code == 200 and text(after_late) == "after late"
                TABLE.append(("answers after the timeout", seen(late), answered, time.monotonic() - started - answered))

                # Garbage on the protocol stream is skipped; the session keeps working.
                started = time.monotonic()
                garbage = await call(api, "chaos:garbage")
                TABLE.append(("writes garbage to stdout", seen(garbage), time.monotonic() - started, None))
                assert garbage.status_code == 200 and text(garbage) == "after garbage"
                assert text(await call(api, "chaos:ok", {"text": "still fine"})) == "still fine"

                # A flood of notifications: the call answers (or times out clearly), and the server recovers.
                started = time.monotonic()
                flood = await call(api, "chaos:flood", {"count": 5000})
                answered = time.monotonic() - started
                assert flood.status_code in (200, 504)
                if flood.status_code == 200:
                    assert text(flood) == "flooded 5000"
                with anyio.fail_after(BOUND):
                    drained = await back_again(api, started + answered)
                TABLE.append(("floods 5,000 notifications", seen(flood), answered, drained))

                # 50 MB in one answer: the caller gets the start and a way to page through the rest.
                started = time.monotonic()
                big = await call(api, "bulky:big", {"megabytes": 50})
                TABLE.append(("returns 50 MB", seen(big) + ", cut, rest paged", time.monotonic() - started, None))
                assert big.status_code == 200, big.text[:300]
                assert big.json()["isError"] is False
                assert len(big.content) < 1024 * 1024
                assert "read_cache" in big.text

                # A crash mid-call: a clear error at once, then the server is restarted by itself.
                before = readies.count
                started = time.monotonic()
                crashed = await call(api, "chaos:crash")
                answered = time.monotonic() - started
                assert crashed.status_code == 503
                assert crashed.json()["error"] == "upstream_unavailable"
                assert "mcpproxy reconnects by itself" in crashed.json()["hint"]
                with anyio.fail_after(BOUND):
                    await readies.wait_beyond(before)
                recovered = await call(api, "chaos:ok", {"text": "back"})
                assert recovered.status_code == 200 and text(recovered) == "back"
                TABLE.append(("crashes mid-call", seen(crashed), answered, time.monotonic() - started - answered))

                # A server that exits at start: its calls get a clear error naming its state; it keeps retrying.
                started = time.monotonic()
                dead = await call(api, "dead:ok", {"text": "anyone?"})
                TABLE.append(("exits at start", seen(dead) + " (keeps retrying)", time.monotonic() - started, None))
                assert dead.status_code in (503, 404)
                # The error names the server, its state and why (it exits at start).
                assert "dead" in dead.json()["message"], dead.json()
                assert any(state in dead.json()["message"] for state in ("error", "backoff", "connecting")), dead.json()
                with anyio.fail_after(BOUND):
                    await wait_log_line(gw.gateway.server_log("dead"), EXIT_LINE)
                status = {s.name: s for s in gw.gateway.statuses()}["dead"]
                assert status.state in (UpstreamState.ERROR, UpstreamState.BACKOFF, UpstreamState.CONNECTING)

            samples = await scrape(gw.base_url)
            assert metric(samples, "mcpproxy_tool_calls_total", server="chaos", tool="hang", status="refused") == 1
            assert metric(samples, "mcpproxy_upstream_reconnects_total", server="chaos") >= 1
            assert metric(samples, "mcpproxy_upstream_reconnects_total", server="dead") >= 1
            assert metric(samples, "mcpproxy_upstream_state", server="notes", state="ready") == 1


async def test_a_full_queue_is_refused_at_once_and_failures_in_a_row_open_the_circuit_until_a_probe_succeeds(
    tmp_path: Path,
) -> None:
    servers = {"chaos": chaos_entry(call_timeout=CHAOS_TIMEOUT), "notes": fixture_entry("notes_server")}
    with anyio.fail_after(WAIT):
        async with running_gateway(
            tmp_path,
            servers,
            max_concurrent_calls=2,
            max_queued_calls=1,
            breaker_failures=2,
            breaker_cooldown=5.0,
            isolation="none",
        ) as gw, api_client(gw) as api:
            await gw.wait_ready("chaos", "notes")
            await gw.wait_for(lambda: gw.gateway.catalog.get("chaos", "hang") is not None, what="chaos tools")
            await gw.wait_for(lambda: gw.gateway.catalog.get("notes", "add") is not None, what="notes tools")
            guard = gw.gateway.ops.guard("chaos")
            hung: list[httpx2.Response] = []

            async def hang() -> None:
                hung.append(await call(api, "chaos:hang"))

            async with steady_notes(api):
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(hang)
                    with anyio.fail_after(BOUND):
                        while not (guard.limiter.running == 2 and guard.limiter.waiting == 1):  # noqa: ASYNC110
                            await anyio.sleep(0.01)  # polling the limiter the calls above fill
                    # Two running, one waiting: the next call is refused at once with a clear error.
                    refused = await call(api, "chaos:ok", {"text": "no room"})
                    assert refused.status_code == 503
                    assert refused.json()["error"] == "overloaded"
                    assert "2 calls running and 1 waiting" in refused.json()["message"]
                # The two running calls time out; the waiting one gets a slot as they end and times
                # out too, or (its queue wait bounded by the same timeout) is refused as overloaded.
                statuses = sorted(r.status_code for r in hung)
                assert statuses in ([504, 504, 504], [503, 504, 504])
                if statuses[0] == 503:
                    assert next(r for r in hung if r.status_code == 503).json()["error"] == "overloaded"

                # Failures in a row opened the circuit: calls fail fast, saying for how long.
                paused = await call(api, "chaos:ok", {"text": "paused?"})
                assert paused.status_code == 503
                assert paused.json()["error"] == "circuit_open"
                assert 0 <= paused.json()["data"]["retry_after"] <= 5.0
                samples = await scrape(gw.base_url)
                assert metric(samples, "mcpproxy_circuit_state", server="chaos") == 2
                assert metric(samples, "mcpproxy_circuit_opens", server="chaos") == 1
                # The call refused above, and the waiting one if its queue wait ran out.
                refusals = 1 + statuses.count(503)
                assert metric(samples, "mcpproxy_upstream_overload_refusals", server="chaos") == refusals
                assert metric(samples, "mcpproxy_circuit_state", server="notes") == 0

                # After the cooldown one probe goes through; it succeeds and closes the circuit.
                with anyio.fail_after(BOUND):
                    while (probe := await call(api, "chaos:ok", {"text": "probe"})).status_code != 200:
                        assert probe.json()["error"] == "circuit_open"
                        await anyio.sleep(0.1)  # retrying until the cooldown has passed
                assert text(probe) == "probe"
                assert metric(await scrape(gw.base_url), "mcpproxy_circuit_state", server="chaos") == 0
