"""Health, readiness, drain, client rate limits, and the request id in logs, on a real gateway."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from mcpproxy.gateway import CallRecord
from mcpproxy.observe.logfiles import rotate_if_larger, rotate_server_logs
from mcpproxy.observe.logging import setup_logging
from mcpproxy.store.activity import ActivityFilter
from mcpproxy.upstream.base import UpstreamState
from tests.observe.support import flush_activity, metric, scrape
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway, stdio_entry
from tests.support.paths import fixture_argv

pytestmark = pytest.mark.anyio

WAIT = 60.0
SECRET = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


def rest(gw: GatewayHandle, **headers: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=gw.base_url + "/api/v1", headers={**gw.api_headers, **headers}, timeout=30.0
    )


async def test_healthz_is_alive_and_readyz_waits_for_every_server_to_be_attempted_and_for_no_drain(
    tmp_path: Path,
) -> None:
    hanging = stdio_entry(fixture_argv("broken_server", "--mode", "hang-at-start"), connect_timeout=3.0)
    servers = {"notes": fixture_entry("notes_server"), "slow": hanging}
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, servers, backoff_initial=30.0) as gw, httpx2.AsyncClient(
            base_url=gw.base_url, timeout=30.0
        ) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "ok" and health.json()["draining"] is False
            not_ready = await http.get("/readyz")  # the servers are still starting
            assert not_ready.status_code == 503
            body = not_ready.json()
            assert body["ready"] is False
            assert body["checks"]["servers"]["ok"] is False
            assert "slow" in body["checks"]["servers"]["not_yet_attempted"]
            assert body["checks"]["store"]["ok"] and body["checks"]["index"]["ok"]
            await gw.wait_ready("notes")

            # A server that never answers is attempted once its connect timeout passes: then ready.
            await gw.wait_state("slow", UpstreamState.ERROR, UpstreamState.BACKOFF)
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True

            # The status names what to do about each server.
            async with rest(gw) as api:
                listed = {s["name"]: s for s in (await api.get("/status")).json()["servers"]}
            assert listed["notes"]["health"] == "ok" and listed["notes"]["action"] is None
            assert listed["slow"]["health"] == "down"
            assert "raise connect_timeout" in listed["slow"]["action"]
            assert listed["notes"]["circuit"] == "closed"

            # Draining: not ready, still alive, and new calls are refused with a clear error.
            gw.gateway.ops.begin_drain()
            draining = await http.get("/readyz")
            assert draining.status_code == 503 and draining.json()["checks"]["draining"] == {"ok": False}
            assert (await http.get("/healthz")).json()["draining"] is True
            async with rest(gw) as api:
                refused = await api.post("/call", json={"name": "notes:add", "args": {"a": 1, "b": 1}})
            assert refused.status_code == 503
            assert refused.json()["error"] == "overloaded" and "shutting down" in refused.json()["message"]


async def test_a_client_past_its_rate_gets_429_with_retry_after_and_other_clients_are_not_slowed(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}, rate_limit=0.5, rate_limit_burst=3) as gw:
            async with rest(gw) as api:
                statuses = [(await api.get("/status")).status_code for _ in range(3)]
                assert statuses == [200, 200, 200]
                limited = await api.get("/status", headers={"X-Request-Id": "too-fast"})
                assert limited.status_code == 429
                assert int(limited.headers["retry-after"]) >= 1
                assert limited.headers["x-request-id"] == "too-fast"
                body = limited.json()
                assert body["error"] == "rate_limited" and body["data"]["retry_after"] > 0
                assert "retry after" in body["message"]

            async with httpx2.AsyncClient(base_url=gw.base_url, timeout=30.0) as http:
                # Another client (no credential: keyed by its address) has its own bucket.
                mcp_headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
                ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
                answers = [await http.post("/mcp", json=ping, headers=mcp_headers) for _ in range(4)]
                assert [a.status_code for a in answers[:3]] != [429, 429, 429]
                refused = answers[3]
                assert refused.status_code == 429
                assert refused.json()["id"] == 7
                assert refused.json()["error"]["code"] == -32088
                # Health, readiness and metrics are never limited.
                for _ in range(10):
                    assert (await http.get("/healthz")).status_code == 200

            samples = await scrape(gw.base_url)
            assert metric(samples, "mcpproxy_rate_limited_total") == 2
            await flush_activity(gw)
            recorder = gw.gateway.ops.activity
            assert recorder is not None  # read directly: this client's REST calls are rate limited too
            policy = await recorder.store.query(ActivityFilter(kind="policy"))
            decisions = [r for r in policy if r.detail and r.detail["check"] == "rate_limit"]
            assert len(decisions) == 2 and {r.status for r in decisions} == {"deny"}


class _LoggingObserver:
    """Writes one log line at the start and one at the end of every call."""

    def call_started(self, record: CallRecord) -> None:
        logging.getLogger("tests.call").warning("call %s starting with %s", record.name, SECRET)

    def call_finished(self, record: CallRecord) -> None:
        logging.getLogger("tests.call").warning("call %s finished", record.name)


@contextmanager
def main_log(log_dir: Path, max_bytes: int = 10 * 1024 * 1024) -> Iterator[Path]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    setup_logging(level="info", fmt="json", log_dir=log_dir, max_bytes=max_bytes, backups=2)
    try:
        yield log_dir / "main.log"
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


async def test_every_log_line_of_a_call_carries_its_request_id_and_no_secret(tmp_path: Path) -> None:
    with main_log(tmp_path / "logs") as log_file, anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            await gw.wait_for(lambda: gw.gateway.catalog.get("notes", "add") is not None, what="notes tools")
            gw.gateway.observers.append(_LoggingObserver())
            async with rest(gw, **{"X-Request-Id": "trace-me-1"}) as api:
                ok = await api.post("/call", json={"name": "notes:add", "args": {"a": 1, "b": 2}})
                assert ok.status_code == 200 and ok.headers["x-request-id"] == "trace-me-1"
        lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    of_the_call = [line for line in lines if line.get("logger") == "tests.call"]
    assert len(of_the_call) == 2
    assert {line["request_id"] for line in of_the_call} == {"trace-me-1"}
    assert all(line.get("call_id") for line in of_the_call)
    assert SECRET not in log_file.read_text(encoding="utf-8")
    assert "[REDACTED:github_token]" in of_the_call[0]["event"]


def test_logs_rotate_by_size_and_keep_the_configured_count(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    with main_log(log_dir, max_bytes=4096) as log_file:
        for i in range(400):
            logging.getLogger("tests.rotation").warning("line %d %s", i, "x" * 40)
    assert log_file.exists() and (log_dir / "main.log.1").exists() and (log_dir / "main.log.2").exists()
    assert not (log_dir / "main.log.3").exists()
    assert log_file.stat().st_size <= 4096 + 400

    server_log = log_dir / "upstream-notes.log"
    server_log.write_text("old line\n" * 1000, encoding="utf-8")
    # At session start a big log is moved aside; while a server runs it is copied and emptied in place.
    assert rotate_if_larger(server_log, 1024, 2)
    assert not server_log.exists() and (log_dir / "upstream-notes.log.1").read_text().startswith("old line")
    with server_log.open("a", encoding="utf-8") as running_server:
        running_server.write("new line\n" * 500)
        running_server.flush()
        assert rotate_server_logs(log_dir, 1024, 2) == ["upstream-notes.log"]
        running_server.write("after rotation\n")
        running_server.flush()
    assert server_log.read_text(encoding="utf-8") == "after rotation\n"
    assert (log_dir / "upstream-notes.log.1").read_text().startswith("new line")
    assert (log_dir / "upstream-notes.log.2").read_text().startswith("old line")
    assert rotate_server_logs(log_dir, 1024, 2) == []
