"""Helpers for the sandbox tests: a fake host layout and a bounded process runner.

Processes run in a new session and are killed as a group when they end or overrun.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from mcpproxy.sandbox.base import PreparedCommand

RUN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Attempt:
    """One attack under one backend, for the summary table printed after the run."""

    attack: str
    backend: str
    outcome: str
    explanation: str | None


ATTEMPTS: list[Attempt] = []


@dataclass(frozen=True)
class FakeHost:
    """A throw-away host layout: a home with an SSH key, the gateway's data dir, a work dir."""

    root: Path
    home: Path
    data: Path
    work: Path
    outside: Path

    @property
    def ssh_key(self) -> Path:
        return self.home / ".ssh" / "id_rsa"

    @property
    def config(self) -> Path:
        return self.data / "mcp_config.json"

    @property
    def database(self) -> Path:
        return self.data / "config.db"


def make_host(tmp_path: Path) -> FakeHost:
    """Create the fake home (with an SSH key), data dir (config, database), work and outside dirs."""
    home, data, work, outside = (tmp_path / n for n in ("home", "data", "work", "outside"))
    for d in (home / ".ssh", data, work, outside):
        d.mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN FAKE KEY-----\nnot a real key\n-----END FAKE KEY-----\n")
    (data / "mcp_config.json").write_text('{"mcpServers": {"secret": {"env": {"API_KEY": "sk-fake"}}}}\n')
    (data / "config.db").write_bytes(b"SQLite format 3\x00fake database")
    return FakeHost(tmp_path, home, data, work, outside)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


async def run_prepared(prepared: PreparedCommand, timeout: float = RUN_TIMEOUT) -> Result:  # noqa: ASYNC109
    """Start ``prepared`` in a new session, collect its output, kill the group if it overruns."""
    return await run_argv(prepared.argv, prepared.env, prepared.cwd, timeout)


async def run_argv(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float = RUN_TIMEOUT,  # noqa: ASYNC109 - bounds the whole run, then kills the group
) -> Result:
    process = await anyio.open_process(
        list(argv), env=dict(env), cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL
    )
    out, err = bytearray(), bytearray()
    timed_out = False
    async with process:

        async def drain(stream: anyio.abc.ByteReceiveStream | None, sink: bytearray) -> None:
            if stream is None:
                return
            async for chunk in stream:
                sink.extend(chunk)

        try:
            with anyio.fail_after(timeout):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(drain, process.stdout, out)
                    tg.start_soon(drain, process.stderr, err)
                    await process.wait()
        except TimeoutError:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await process.wait()
    code = process.returncode if process.returncode is not None else -signal.SIGKILL
    return Result(code, out.decode(errors="replace"), err.decode(errors="replace"), timed_out)
