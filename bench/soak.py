"""Soak: many calls at a steady concurrency through ``mcpproxy serve``; nothing may leak or fail.

    python bench/soak.py [--calls 100000] [--concurrency 50] [--upstream http|stdio] [--max-seconds 1800]

Starts a FastMCP upstream (``tests/fixtures/notes_server.py``) and ``mcpproxy serve`` in front of it
(real processes), warms up, then sends ``--calls`` stateless ``tools/call`` requests through
``/mcp/all`` with ``--concurrency`` callers. It prints the gateway process's resident memory, open
file descriptors, threads and event-loop tasks (from ``/proc`` and ``/metrics``) after warm-up, at
every tenth of the run and at the end, and the number of failed calls, dropped activity records
and the activity rows written. The run is bounded in count and in time (``--max-seconds``).

Verdict (printed; exit status 1 if it fails): no failed call, no dropped activity record, and at
the end no more than ``--slack`` over the warm-up values (memory in MiB; fds, threads, tasks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import FIXTURE, QUIET, free_port, process, stateless_call, wait_http


@dataclass
class Sample:
    """Resources of the gateway process at one moment."""

    calls: int
    rss_mib: float
    fds: int
    threads: int
    tasks: int

    def line(self) -> str:
        return (f"{self.calls:>8} calls  rss {self.rss_mib:7.1f} MiB  fds {self.fds:4d}  "
                f"threads {self.threads:3d}  tasks {self.tasks:4d}")


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def sample(pid: int, base: str, http: httpx2.AsyncClient, calls: int) -> tuple[Sample, str]:
    status = await anyio.Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    threads = int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    metrics = (await http.get(base + "/metrics")).text
    return Sample(calls, rss_kib / 1024, fds, threads, int(metric(metrics, "mcpproxy_event_loop_tasks"))), metrics


async def run(args: argparse.Namespace) -> int:
    up_port, proxy_port = free_port(), free_port()
    up_url = f"http://127.0.0.1:{up_port}/mcp"
    servers = (
        {"notes": {"url": up_url}}
        if args.upstream == "http"
        else {"notes": {"command": sys.executable, "args": [str(FIXTURE), "--transport", "stdio"], "env": QUIET}}
    )
    with (
        tempfile.TemporaryDirectory(dir=args.data_parent) as tmp,
        process([sys.executable, str(FIXTURE), "--transport", "http", "--port", str(up_port)]),
    ):
        wait_http(up_url)
        config = {"listen": f"127.0.0.1:{proxy_port}", "data_dir": tmp, "log_level": args.log_level,
                  "default_trust": "auto", "mcpServers": servers}
        config_path = Path(tmp) / "mcp_config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        argv = [sys.executable, "-m", "mcpproxy", "--config", str(config_path), "serve", "--no-watch"]
        with process(argv) as proxy:
            base = f"http://127.0.0.1:{proxy_port}"
            wait_http(base + "/healthz")
            pool = args.concurrency + 10
            limits = httpx2.Limits(max_connections=pool, max_keepalive_connections=pool)
            async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
                with anyio.fail_after(120):
                    while (await http.get(base + "/readyz")).status_code != 200:  # noqa: ASYNC110
                        await anyio.sleep(0.2)  # polling readiness
                call = stateless_call(http, base + "/mcp/all", "notes__add")
                failures: list[str] = []
                done = 0
                issued = 0
                deadline = time.monotonic() + args.max_seconds

                async def worker(total: int) -> None:
                    nonlocal done, issued
                    while issued < total and time.monotonic() < deadline:
                        issued += 1
                        try:
                            await call()
                        except Exception as exc:  # a failed call is what the soak looks for
                            failures.append(f"{type(exc).__name__}: {exc}"[:200])
                        done += 1

                async def phase(total: int) -> None:
                    nonlocal issued
                    async with anyio.create_task_group() as tg:
                        for _ in range(args.concurrency):
                            tg.start_soon(worker, total)

                await phase(args.warmup)
                warm, _ = await sample(proxy.pid, base, http, done)
                print(f"load average {os.getloadavg()}")
                print("after warm-up: " + warm.line(), flush=True)
                started = time.perf_counter()
                target = args.warmup + args.calls
                step = max(1, args.calls // 10)
                checkpoint = args.warmup + step
                while issued < target and time.monotonic() < deadline:
                    await phase(min(target, checkpoint))
                    now, _ = await sample(proxy.pid, base, http, done)
                    print("              " + now.line(), flush=True)
                    checkpoint += step
                elapsed = time.perf_counter() - started
                end, metrics = await sample(proxy.pid, base, http, done)
                # The writer batches: give the last batch a moment to land before counting (bounded).
                for _ in range(20):
                    if metric(metrics, "mcpproxy_activity_written") >= done:
                        break
                    await anyio.sleep(0.25)
                    _, metrics = await sample(proxy.pid, base, http, done)
                dropped = metric(metrics, "mcpproxy_activity_dropped")
                written = metric(metrics, "mcpproxy_activity_written")
            if failures and args.data_parent:
                log = (Path(tmp) / "logs" / "main.log").read_text(encoding="utf-8", errors="replace")
                (Path(args.data_parent) / "soak-main.log").write_text(log, encoding="utf-8")
    measured = done - args.warmup
    print(f"\n{measured} calls in {elapsed:.0f} s ({measured / elapsed:.0f} calls/s) at concurrency "
          f"{args.concurrency}, upstream over {args.upstream}; load average {os.getloadavg()}")
    print("start: " + warm.line())
    print("end:   " + end.line())
    print(f"failed calls: {len(failures)}  activity records written: {written:.0f}  dropped: {dropped:.0f}")
    for failure in failures[:5]:
        print("  " + failure)
    grew = [
        what
        for what, before, after, slack in (
            ("memory", warm.rss_mib, end.rss_mib, args.slack_mib),
            ("fds", warm.fds, end.fds, args.slack),
            ("threads", warm.threads, end.threads, args.slack),
            ("tasks", warm.tasks, end.tasks, args.slack),
        )
        if after > before + slack
    ]
    ok = not failures and not dropped and not grew and measured >= args.calls
    print("verdict: " + ("OK" if ok else f"FAILED {grew or ''} {'incomplete' if measured < args.calls else ''}"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--upstream", choices=["http", "stdio"], default="http")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--data-parent", default=None, help="where the gateway's temporary data dir goes")
    parser.add_argument("--log-level", default="warning", help="the gateway's log level")
    parser.add_argument("--slack", type=int, default=5, help="fds/threads/tasks allowed over warm-up")
    parser.add_argument("--slack-mib", type=float, default=20.0, help="MiB of memory allowed over warm-up")
    args = parser.parse_args()
    sys.exit(anyio.run(run, args))


if __name__ == "__main__":
    main()
