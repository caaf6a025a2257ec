"""Capacity of code execution: a bounded number of programs run, a bounded number wait, the rest
are refused at once; warm workers are ready before they are needed; every worker dies with
the gateway."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway

from mcpproxy.codemode.engines.workers import WorkerEngine
from mcpproxy.codemode.model import ExecutionRequest
from mcpproxy.codemode.service import CodeService, execute, service_for
from mcpproxy.errors import Overloaded
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CONCURRENT = 3
QUEUED = 5


def service(gw: GatewayHandle) -> CodeService:
    found = service_for(gw.gateway)
    assert found is not None
    return found


async def test_fifty_concurrent_executions_each_end_with_a_result_or_an_overload_error(tmp_path: Path) -> None:
    servers = {"notes": fixture_entry("notes_server")}
    async with running_gateway(
        tmp_path, servers, code_max_concurrent=CONCURRENT, code_max_queued=QUEUED, code_warm_workers=1
    ) as gw:
        await gw.wait_ready("notes")
        languages = ["python"] * 30 + ["python-full"] * 10 + ["typescript"] * 10
        programs = {
            "python": "call_tool('notes:slow', {'seconds': 0.3})\ninput * 2",
            "python-full": "call_tool('notes:slow', {'seconds': 0.3})\ninput * 2",
            "typescript": "await callTool('notes:slow', { seconds: 0.3 });\nreturn input * 2;",
        }
        outcomes: dict[int, tuple[str, Any]] = {}

        async def one(client: Client, index: int, language: str) -> None:
            result = await client.call_tool(
                "code_execution", {"code": programs[language], "language": language, "input": index}
            )
            data = result.structured_content or {}
            if result.is_error and data.get("error") == "overloaded":
                outcomes[index] = ("overloaded", data.get("message"))
            else:
                outcomes[index] = ("result", data.get("value"))

        async with Client(gw.base_url + "/mcp/code", mode="legacy") as client:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for index, language in enumerate(languages):
                        tg.start_soon(one, client, index, language)

        assert len(outcomes) == 50
        results = {i: value for i, (kind, value) in outcomes.items() if kind == "result"}
        refused = [i for i, (kind, _) in outcomes.items() if kind == "overloaded"]
        assert all(value == i * 2 for i, value in results.items()), results
        assert len(results) + len(refused) == 50
        assert len(refused) == service(gw).admission.refused, outcomes
        assert all("code execution is overloaded" in str(outcomes[i][1]) for i in refused), outcomes
        # The gateway still runs programs afterwards.
        async with Client(gw.base_url + "/mcp/code", mode="auto") as client:
            after = await client.call_tool("code_execution", {"code": "1 + 1"})
        assert (after.structured_content or {}).get("value") == 2


async def test_past_the_running_and_waiting_programs_the_next_is_refused_at_once(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {}, code_max_concurrent=CONCURRENT, code_max_queued=QUEUED) as gw:
        admission = service(gw).admission
        release = anyio.Event()
        outcomes: list[str] = []

        async def hold() -> None:
            async with admission.slot(60):
                await release.wait()
            outcomes.append("ran")

        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENT + QUEUED):
                tg.start_soon(hold)
            with anyio.fail_after(10):
                while admission.waiting < QUEUED:
                    await anyio.lowlevel.checkpoint()
            assert admission.running == CONCURRENT
            # Every slot is taken and the queue is full: a real program is refused at once, not queued.
            with pytest.raises(Overloaded, match="code execution is overloaded"):
                await service(gw).execute(ExecutionRequest(code="1"), CallContext(via="test"))
            release.set()
        assert outcomes == ["ran"] * (CONCURRENT + QUEUED)


async def test_warm_workers_are_started_before_they_are_needed_and_refilled_after_use(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {}, code_warm_workers=2) as gw:
        code_service = service(gw)
        ctx = CallContext(via="test")
        for language, code in (("python-full", "6 * 7"), ("typescript", "return 6 * 7;")):
            first = await code_service.execute(ExecutionRequest(code=code, language=language), ctx)
            assert first.value == 42
            engine = code_service.engines[language]
            assert isinstance(engine, WorkerEngine)
            with anyio.fail_after(60):
                await engine.pool.wait_idle(2)
            cold = engine.pool.cold_starts
            second = await code_service.execute(ExecutionRequest(code=code, language=language), ctx)
            assert second.value == 42
            assert engine.pool.cold_starts == cold  # it ran on a pre-started worker
            with anyio.fail_after(60):
                await engine.pool.wait_idle(2)


async def test_every_worker_dies_with_the_gateway(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {}, code_warm_workers=2) as gw:
        code_service = service(gw)
        ctx = CallContext(via="test")
        for language, code in (("python-full", "1"), ("typescript", "return 1;")):
            await code_service.execute(ExecutionRequest(code=code, language=language), ctx)
        for language in ("python-full", "typescript"):
            engine = code_service.engines[language]
            assert isinstance(engine, WorkerEngine)
            with anyio.fail_after(60):
                await engine.pool.wait_idle(2)
        pids = {pid for pid in _descendants(os.getpid()) if _is_worker(pid)}
        assert len(pids) >= 4
    with anyio.fail_after(10):
        while any(_alive(pid) for pid in pids):  # noqa: ASYNC110 - the process table has no event to wait on
            await anyio.sleep(0.05)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    out: set[int] = set()
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        out.add(pid)
        stack.extend(children.get(pid, []))
    return out


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    return b"pyworker.py" in cmdline or b"denoworker.js" in cmdline


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_gateway_without_the_http_app_runs_each_program_on_a_service_started_for_it(tmp_path: Path) -> None:
    # serve --stdio and library users: no warm pools, the same engines and pipeline.
    settings = Settings(data_dir=str(tmp_path / "data"))
    async with Gateway(settings, watch_config=False) as gateway:
        assert service_for(gateway) is None
        for language, code in (("python", "6 * 7"), ("python-full", "6 * 7"), ("typescript", "return 6 * 7;")):
            result = await execute(gateway, ExecutionRequest(code=code, language=language), CallContext(via="stdio"))
            assert result.ok and result.value == 42, result.to_dict()
    assert not [pid for pid in _descendants(os.getpid()) if _is_worker(pid)]
