"""What an engine is: something that runs one job against a bridge and says how it ended.

An engine owns its workers (a pool of embedded interpreters, or warm sandboxed processes)
for the lifetime of the code service, and runs each job in the caller's task: when the
caller is cancelled (the wall-time limit, the output limit, the client going away), the
engine stops the program and releases or kills its worker before ``execute`` returns.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from mcpproxy.codemode.bridge import Bridge
from mcpproxy.codemode.model import ExecError, Limits, Output


@dataclass(frozen=True, slots=True)
class Job:
    """One program to run.

    Attributes:
        code: The program as the model wrote it.
        input: The JSON value the program reads as ``input``.
        prelude: Generated source defining ``tools`` (typed functions) in the job's language.
        limits: What the program may use.
    """

    code: str
    input: Any
    prelude: str
    limits: Limits


@dataclass(slots=True)
class Outcome:
    """How a program ended: its value, or the error that stopped it."""

    ok: bool
    value: Any = None
    error: ExecError | None = None


class OutputLimitExceeded(Exception):
    """The program wrote more than the output limit; it was stopped."""


class Engine(Protocol):
    """A language runtime the code service can run jobs on."""

    @property
    def language(self) -> str:
        """The language name (``python``, ``python-full``, ``typescript``)."""

    def running(self) -> AbstractAsyncContextManager[None]:
        """Start the engine's workers for the block (warm pools); stop and kill them after."""

    async def execute(self, job: Job, bridge: Bridge, output: Output) -> Outcome:
        """Run ``job`` to its end; stop the program when cancelled.

        Raises:
            OutputLimitExceeded: The program wrote more than the output limit.
        """
