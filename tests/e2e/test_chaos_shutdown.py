"""Stopping ``mcpproxy serve`` under load loses no call and no record; killing it corrupts nothing.

A real ``mcpproxy serve`` process with two real upstreams (the notes server, and the chaos server
for calls that take a while or never finish) takes concurrent REST calls, each with its own
request id, on fresh connections. In the middle of it:

* SIGTERM: every call the gateway took gets an answer (its result, or a clear ``overloaded``
  error for a call that could not finish within ``shutdown_grace``), every answered call has its
  activity record, no call the gateway records went unanswered, the process completes its
  shutdown in bounded time, and the database checks clean.
* SIGKILL: a new ``mcpproxy serve`` on the same files starts clean, serves calls, and its activity
  log (with the records written before the kill) reads through the CLI; the database checks clean.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.observe.support import chaos_entry
from tests.support.gateway import fixture_entry, mcpproxy_argv, mcpproxy_process, write_config
from tests.support.procs import run_process

from mcpproxy.config.loader import load_settings
from mcpproxy.endpoints.rest import API_KEY_FILE
from mcpproxy.gateway import DB_FILE_NAME

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

WAIT = 120.0
GRACE = 2.0
WORKERS = 12
CALLS_PER_WORKER = 400


def servers() -> dict[str, Any]:
    return {"notes": fixture_entry("notes_server"), "chaos": chaos_entry(call_timeout=60)}


@dataclass
class Outcome:
    """What the client saw of one call."""

    request_id: str
    name: str
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    transport_error: str | None = None


class Load:
    """Workers calling through fresh connections until the gateway goes away."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key
        self.outcomes: list[Outcome] = []
        self.answered = 0
        self._answers = anyio.Event()

    async def reached(self, count: int) -> None:
        while self.answered < count:
            await self._answers.wait()

    def _answered(self) -> None:
        self.answered += 1
        self._answers.set()
        self._answers = anyio.Event()

    async def worker(self, number: int, plan: list[tuple[str, dict[str, Any]]]) -> None:
        limits = httpx2.Limits(max_keepalive_connections=0)
        async with httpx2.AsyncClient(
            base_url=self.base_url + "/api/v1", headers={"X-API-Key": self.key}, timeout=60.0, limits=limits
        ) as api:
            for i in range(CALLS_PER_WORKER):
                name, args = plan[i % len(plan)]
                outcome = Outcome(f"w{number}-{i}", name)
                self.outcomes.append(outcome)
                try:
                    response = await api.post(
                        "/call", json={"name": name, "args": args}, headers={"X-Request-Id": outcome.request_id}
                    )
                except httpx2.ConnectError as exc:
                    outcome.transport_error = f"connect: {exc}"
                    return  # the listener is closed: the gateway is stopping
                except httpx2.TransportError as exc:
                    outcome.transport_error = f"{type(exc).__name__}: {exc}"
                    return
                outcome.status = response.status_code
                outcome.body = response.json()
                self._answered()


PLANS: list[list[tuple[str, dict[str, Any]]]] = [
    [("notes:add", {"a": 1, "b": 2})],
    [("chaos:slow_ok", {"seconds": 0.3}), ("notes:echo", {"text": "hi"})],
    [("chaos:hang", {})],
]


def database_is_intact(database: Path) -> bool:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def activity_rows(database: Path) -> dict[str, dict[str, Any]]:
    connection = sqlite3.connect(database)
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute("SELECT * FROM activity WHERE kind = 'call'").fetchall()
    finally:
        connection.close()
    return {row["request_id"]: dict(row) for row in rows}


async def wait_ready(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10.0) as http:
        delay = 0.05
        while (await http.get(base_url + "/readyz")).status_code != 200:
            await anyio.sleep(delay)  # polling the readiness endpoint: it is what operators watch too
            delay = min(delay * 2, 0.5)


async def test_sigterm_under_load_answers_every_call_in_flight_and_loses_no_record(tmp_path: Path) -> None:
    config = write_config(tmp_path, servers(), shutdown_grace=GRACE)
    data_dir = load_settings(config, env={}).data_path
    with anyio.fail_after(WAIT):
        async with mcpproxy_process(config) as (proc, base_url):
            await wait_ready(base_url)
            key = (data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()
            load = Load(base_url, key)
            async with anyio.create_task_group() as tg:
                for number in range(WORKERS):
                    tg.start_soon(load.worker, number, PLANS[number % len(PLANS)])
                await load.reached(60)
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
            # uvicorn re-raises the signal once it has shut down cleanly: "terminated by SIGTERM".
            assert code in (0, -signal.SIGTERM), proc.output_tail()
            assert "Application shutdown complete" in proc.output_tail(80)

    database = data_dir / DB_FILE_NAME
    assert database_is_intact(database)
    records = activity_rows(database)
    answered = [o for o in load.outcomes if o.status is not None]
    assert len(answered) >= 60
    for outcome in answered:
        # An answer is a result, or an error that says what happened.
        if outcome.status != 200:
            assert outcome.body.get("error") in ("overloaded", "upstream_unavailable"), (outcome, outcome.body)
        # Every answered call has its record, with the same outcome.
        record = records.get(outcome.request_id)
        assert record is not None, f"no activity record for answered call {outcome.request_id}"
        assert (record["status"] == "ok") == (outcome.status == 200), (outcome, record)
    # The calls that could never finish were cancelled with a clear error when the grace ran out.
    hung = [o for o in answered if o.name == "chaos:hang"]
    assert hung and all(o.status == 503 and "shutting down" in o.body["message"] for o in hung)
    # No call the gateway recorded went unanswered.
    unanswered = {o.request_id for o in load.outcomes if o.status is None}
    assert not unanswered & set(records), sorted(unanswered & set(records))


async def test_kill_9_under_load_restarts_clean_with_a_readable_activity_log(tmp_path: Path) -> None:
    config = write_config(tmp_path, servers())
    data_dir = load_settings(config, env={}).data_path
    with anyio.fail_after(WAIT):
        async with mcpproxy_process(config) as (proc, base_url):
            await wait_ready(base_url)
            key = (data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()
            load = Load(base_url, key)
            async with anyio.create_task_group() as tg:
                for number in range(WORKERS):
                    tg.start_soon(load.worker, number, PLANS[number % 2])
                await load.reached(100)
                proc.kill()
                assert await proc.wait() == -9

    database = data_dir / DB_FILE_NAME
    assert database_is_intact(database)
    before = activity_rows(database)
    with anyio.fail_after(WAIT):
        async with mcpproxy_process(config) as (_, base_url):
            await wait_ready(base_url)
            async with httpx2.AsyncClient(
                base_url=base_url + "/api/v1", headers={"X-API-Key": key}, timeout=30.0
            ) as api:
                after_restart = await api.post(
                    "/call", json={"name": "notes:add", "args": {"a": 2, "b": 3}}, headers={"X-Request-Id": "again"}
                )
                assert after_restart.status_code == 200
            done = await anyio.run_process(
                mcpproxy_argv("--config", str(config), "activity", "list", "--kind", "call", "-n", "1000", "--json"),
                check=False,
            )
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            listed = json.loads(done.stdout)
            ids = {r["request_id"] for r in listed}
            assert set(before) <= ids | {"again"}
    assert database_is_intact(database)
    assert "again" in activity_rows(database)


async def test_sigterm_stops_a_stdio_mode_gateway_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"notes": fixture_entry("notes_server")})
    argv = mcpproxy_argv("--config", str(config), "serve", "--stdio", "--no-watch")
    with anyio.fail_after(90):
        async with run_process(argv, stdin=True, ready_line="SIGTERM or SIGINT stops gracefully", timeout=60) as proc:
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0, proc.output_tail()
            await proc.wait_for_line("SIGTERM received: draining")
    assert database_is_intact(load_settings(config, env={}).data_path / DB_FILE_NAME)
