"""Latency of code execution per engine, cold and warm (p50, p99).

    python bench/code_latency.py [--warm 200] [--cold 20] [--json FILE]

Starts a real gateway in this process (its store in a temporary directory) with the notes
fixture (``tests/fixtures/notes_server.py``) as an upstream, and runs programs through the
code service, the way ``code_execution`` does (activity record, admission, scope, typed
functions, bridge, engine):

* ``trivial``: ``6 * 7`` — the engine's own cost;
* ``two calls``: two calls of ``notes:add`` — the same plus the bridge and the pipeline (the
  upstream's own time included); the same two calls made directly through the gateway's
  pipeline, without a program, are measured too, as the baseline.

*Warm*: the engines are running and, for ``python-full`` and ``typescript``, a pre-started
worker is idle when each program arrives (the run waits for the pool to refill between
programs, outside the measured time). *Cold*: a code service started for the program alone,
so the engine (the interpreter pool, or a sandboxed worker) starts inside the measured time.
Nothing is asserted: it prints figures (and writes them as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mcpproxy.codemode.engines.workers import WorkerEngine  # noqa: E402
from mcpproxy.codemode.model import ExecutionRequest  # noqa: E402
from mcpproxy.codemode.service import CodeService  # noqa: E402
from mcpproxy.gateway import CallContext, Gateway  # noqa: E402
from mcpproxy.settings import Settings  # noqa: E402
from mcpproxy.upstream.base import UpstreamState  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "notes_server.py"
QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off", "PYTHONUNBUFFERED": "1"}

PROGRAMS: dict[str, dict[str, str]] = {
    "trivial": {"python": "6 * 7", "python-full": "6 * 7", "typescript": "return 6 * 7;"},
    "two calls": {
        "python": "a = call_tool('notes:add', {'a': 1, 'b': 2})\ntools.notes.add(a=a, b=3)",
        "python-full": "a = call_tool('notes:add', {'a': 1, 'b': 2})\ntools.notes.add(a=a, b=3)",
        "typescript": "const a = await callTool('notes:add', { a: 1, b: 2 });\n"
        "return await tools.notes.add({ a, b: 3 });",
    },
}
LANGUAGES = ("python", "python-full", "typescript")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


async def start_gateway(data: Path) -> Gateway:
    settings = Settings.model_validate(
        {
            "data_dir": str(data),
            "default_trust": "auto",
            "code_warm_workers": 1,
            "mcpServers": {
                "notes": {
                    "command": sys.executable,
                    "args": [str(FIXTURE), "--transport", "stdio"],
                    "env": QUIET,
                }
            },
        }
    )
    return Gateway(settings, watch_config=False)


async def measure(service: CodeService, language: str, code: str, ctx: CallContext) -> float:
    started = time.perf_counter()
    result = await service.execute(ExecutionRequest(code=code, language=language), ctx)
    elapsed = (time.perf_counter() - started) * 1000
    if not result.ok or result.value != (42 if "6 * 7" in code else 6):
        raise RuntimeError(f"{language}: unexpected result {result.to_dict()}")
    return elapsed


async def main(warm_runs: int, cold_runs: int) -> dict[str, Any]:
    ctx = CallContext(via="bench")
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="mcpproxy-bench-") as tmp:
        gateway = await start_gateway(Path(tmp) / "data")
        async with gateway:
            with anyio.fail_after(60):
                while not any(s.name == "notes" and s.state is UpstreamState.READY for s in gateway.statuses()):
                    await gateway.wait_state_change()
            baseline = []
            for _ in range(warm_runs):
                started = time.perf_counter()
                first = await gateway.call_tool("notes:add", {"a": 1, "b": 2}, ctx)
                await gateway.call_tool("notes:add", {"a": 3, "b": 3}, ctx)
                baseline.append((time.perf_counter() - started) * 1000)
                assert not first.is_error
            figures["runs"]["the same two calls, made directly"] = summary(baseline)
            print(f"{'direct':12} -     two calls {summary(baseline)}", flush=True)
            async with CodeService(gateway).running() as service:
                for program, by_language in PROGRAMS.items():
                    for language in LANGUAGES:
                        code = by_language[language]
                        await measure(service, language, code, ctx)  # start the engine, warm the caches
                        times = []
                        runs = warm_runs if language == "python" else max(10, warm_runs // 2)
                        for _ in range(runs):
                            engine = service.engines[language]
                            if isinstance(engine, WorkerEngine):
                                with anyio.fail_after(60):
                                    await engine.pool.wait_idle(1)
                            times.append(await measure(service, language, code, ctx))
                        figures["runs"][f"{language} warm {program}"] = summary(times)
                        print(f"{language:12} warm  {program:9} {summary(times)}", flush=True)
            for language in LANGUAGES:
                code = PROGRAMS["trivial"][language]
                times = []
                for _ in range(cold_runs):
                    started = time.perf_counter()
                    async with CodeService(gateway, warm=False).running() as cold:
                        result = await cold.execute(ExecutionRequest(code=code, language=language), ctx)
                    times.append((time.perf_counter() - started) * 1000)
                    assert result.value == 42, result.to_dict()
                figures["runs"][f"{language} cold trivial"] = summary(times)
                print(f"{language:12} cold  trivial   {summary(times)}", flush=True)
    figures["machine"]["load_after"] = os.getloadavg()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=200, help="warm programs per engine (python-full/typescript: half)")
    parser.add_argument("--cold", type=int, default=20, help="cold programs per engine")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = anyio.run(main, args.warm, args.cold)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
