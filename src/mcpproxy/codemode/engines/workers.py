"""``python-full`` (CPython) and ``typescript`` (Deno): engines on sandboxed worker processes.

Design. Both run each program in a worker of its own, started in the OS sandbox
(``codemode.sandboxing``) and kept warm in a :class:`~mcpproxy.codemode.pool.WorkerPool`;
the worker speaks the frame protocol of :mod:`mcpproxy.codemode.worker` over its stdin and
stdout and is killed when the program ends, whatever the ending. What differs is the command
line and how the job is shaped:

- ``python-full``: the base interpreter of this Python (``-I -S -B``: no site packages, no
  environment, no bytecode written) running ``_worker/pyworker.py``, which adds its own
  seccomp filter against processes and sockets (``pyseccomp``, bound read-only) before it
  reads the program. Memory is ``RLIMIT_DATA``.
- ``typescript``: Deno (the ``deno`` wheel's binary, bound read-only) running
  ``_worker/denoworker.js`` with no permission flag, no config file, no lock file and no
  remote or npm modules. V8's heap is capped at ``code_memory_mb``; ``RLIMIT_DATA`` gets a
  further gigabyte because V8 reserves address space it never uses.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcpproxy.codemode.bridge import Bridge
from mcpproxy.codemode.engine import Job, Outcome
from mcpproxy.codemode.model import Output
from mcpproxy.codemode.pool import WorkerPool
from mcpproxy.codemode.runtime import PYTHON_RUNTIME, TYPESCRIPT_RUNTIME
from mcpproxy.codemode.sandboxing import WorkerSandbox, prepare_worker, worker_policy
from mcpproxy.codemode.worker import Worker, run_job
from mcpproxy.errors import UpstreamUnavailable
from mcpproxy.sandbox._host import launcher_python, pyseccomp_file
from mcpproxy.sandbox.base import PreparedCommand
from mcpproxy.settings import Settings

WORKER_DIR = Path(__file__).resolve().parent.parent / "_worker"
PY_WORKER = WORKER_DIR / "pyworker.py"
DENO_WORKER = WORKER_DIR / "denoworker.js"
READY_TIMEOUT = 30.0
"""Seconds a worker may take to start (a loaded machine is slow to start many at once)."""

DENO_HEAP_HEADROOM = 1024 * 1024 * 1024
"""Data-segment room for V8 on top of its heap limit (it reserves address space it never touches)."""


@functools.cache
def deno_binary() -> str | None:
    """The Deno executable of the ``deno`` wheel, or ``None`` when it is not installed."""
    try:
        import deno  # type: ignore[import-untyped]

        found = str(deno.find_deno_bin())
    except (ImportError, OSError, RuntimeError, FileNotFoundError):
        found = shutil.which("deno") or ""
    return os.path.realpath(found) if found and os.path.exists(found) else None


class WorkerEngine:
    """Shared machinery: the warm pool, starting a worker, running a job on it."""

    language = "worker"

    def __init__(self, settings: Settings, sandbox: WorkerSandbox) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.pool = WorkerPool(self.language, self.start_worker, settings.code_warm_workers)
        self._running = False

    def prepare(self) -> PreparedCommand:
        raise NotImplementedError

    async def start_worker(self) -> Worker:
        """Start one worker in the sandbox and wait until it is ready."""
        prepared = self.prepare()
        return await Worker.start(prepared, self.language, ready_timeout=READY_TIMEOUT)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep warm workers for the block (nothing is started when the sandbox is missing)."""
        if self.sandbox.sandbox is None:
            yield
            return
        async with self.pool.running():
            self._running = True
            try:
                yield
            finally:
                self._running = False

    def job_frame(self, job: Job, bridge: Bridge) -> dict[str, Any]:
        raise NotImplementedError

    async def execute(self, job: Job, bridge: Bridge, output: Output) -> Outcome:
        """Run ``job`` on a warm worker (or a new one), then kill the worker."""
        self.sandbox.require(self.language)
        worker = await (self.pool.take() if self._running else self.start_worker())
        try:
            return await run_job(worker, self.job_frame(job, bridge), bridge, output)
        finally:
            await self.pool.retire(worker)


class CPythonEngine(WorkerEngine):
    """``python-full``: CPython with its whole standard library, in the OS sandbox."""

    language = "python-full"

    def prepare(self) -> PreparedCommand:
        sandbox = self.sandbox.require(self.language)
        seccomp = pyseccomp_file()
        config = {
            "seccomp_dir": os.path.dirname(seccomp) if seccomp is not None else None,
            "seccomp_required": sandbox.name != "none",
        }
        readonly = [str(PY_WORKER), *([seccomp] if seccomp is not None else [])]
        policy = worker_policy(
            readonly=readonly,
            memory_bytes=self.settings.code_memory_mb * 1024 * 1024,
            cpu_seconds=self.settings.code_cpu_seconds,
            max_processes=16,
            env={"PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        argv = [launcher_python(), "-I", "-S", "-B", str(PY_WORKER), json.dumps(config)]
        return prepare_worker(sandbox, argv, os.environ, policy)

    def job_frame(self, job: Job, bridge: Bridge) -> dict[str, Any]:
        return {
            "t": "job",
            "cap": bridge.capability,
            "code": job.code,
            "input": job.input,
            "runtime": PYTHON_RUNTIME,
            "prelude": job.prelude,
        }


_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[\w*{}\s,]+\s+from\s+)?["'][^"'\n]+["']\s*;?\s*$""")


def typescript_source(code: str, prelude: str) -> tuple[str, int]:
    """The module Deno runs and the line offset of the program in it.

    The program becomes the body of ``export default async function (input)``: top-level
    ``await`` works and ``return`` gives the value. Its ``import`` lines are lifted to the
    module's top level (a blank line keeps the numbering).
    """
    lines = code.splitlines()
    imports = [line for line in lines if _IMPORT_RE.match(line)]
    body = ["" if _IMPORT_RE.match(line) else line for line in lines]
    head = TYPESCRIPT_RUNTIME + prelude + "\n".join(imports) + "\n"
    head += "export default async function __program(input: any): Promise<any> {\n"
    offset = head.count("\n")
    return head + "\n".join(body) + "\n}\n", offset


class DenoEngine(WorkerEngine):
    """``typescript``: Deno with no permissions, in the OS sandbox."""

    language = "typescript"

    def prepare(self) -> PreparedCommand:
        sandbox = self.sandbox.require(self.language)
        deno = deno_binary()
        if deno is None:
            raise UpstreamUnavailable(
                "'typescript' programs need Deno and it is not installed", hint="pip install deno"
            )
        heap_mb = self.settings.code_memory_mb
        scratch: str | None = None
        if sandbox.name == "bwrap":
            cache = "/tmp/deno"  # noqa: S108 - the sandbox's own private /tmp
            writable: list[str] = []
        else:
            scratch = tempfile.mkdtemp(prefix="mcpproxy-deno-")
            cache = scratch
            writable = [scratch]
        policy = worker_policy(
            readonly=[deno, str(DENO_WORKER)],
            memory_bytes=heap_mb * 1024 * 1024 + DENO_HEAP_HEADROOM,
            cpu_seconds=self.settings.code_cpu_seconds,
            max_processes=64,
            env={"DENO_DIR": cache, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"},
        )
        if writable:
            from dataclasses import replace

            policy = replace(policy, writable_paths=tuple(writable))
        argv = [
            deno, "run", "--no-prompt", "--no-config", "--no-lock", "--no-remote", "--no-npm", "--quiet",
            f"--v8-flags=--max-old-space-size={heap_mb}", str(DENO_WORKER),
        ]  # fmt: skip
        prepared = prepare_worker(sandbox, argv, os.environ, policy)
        if scratch is None:
            return prepared
        cleanup = prepared.cleanup
        scratch_dir = scratch

        def clean() -> None:
            cleanup()
            shutil.rmtree(scratch_dir, ignore_errors=True)

        return PreparedCommand(
            argv=prepared.argv, env=prepared.env, cwd=prepared.cwd, backend=prepared.backend,
            policy=prepared.policy, pass_fds=prepared.pass_fds, cleanup=clean,
        )  # fmt: skip

    def job_frame(self, job: Job, bridge: Bridge) -> dict[str, Any]:
        source, offset = typescript_source(job.code, job.prelude)
        return {"t": "job", "cap": bridge.capability, "source": source, "offset": offset, "input": job.input}
