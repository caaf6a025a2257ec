"""The OS sandbox around ``python-full`` and ``typescript`` workers.

Design. A worker runs code the model wrote, so it gets the least a language runtime needs:
the sandbox layer (``mcpproxy.sandbox``) with no network namespace route at all
(``network="none"``: no socket can reach the gateway's HTTP port or anything else), no home
directory, an environment of a few locale variables, the interpreter and the worker script
read-only, a private ``/tmp``, and rlimits on memory, CPU time, processes, open files and
file size. With bubblewrap the worker also gets an empty ``/etc`` (only the dynamic loader's
cache): the curated ``/etc`` stdio servers need (``passwd``, ``hosts``, ...) is not visible
to programs. ``auto`` takes bubblewrap, else Landlock (which leaves that curated ``/etc``
readable, as it does for servers); Docker is not used for workers (a container per
execution is too slow for a warm pool), and ``none`` is only ever an explicit choice.

The worker adds its own restrictions on top (its seccomp filter refuses process creation,
``execve`` and sockets; see ``_worker/pyworker.py``); those live inside the sandbox and are
defence in depth, not the boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mcpproxy.sandbox.auto import make_sandbox
from mcpproxy.sandbox.base import PreparedCommand, Sandbox, SandboxPolicy, SandboxUnavailable

logger = logging.getLogger(__name__)

MINIMAL_ETC = ("/etc/ld.so.cache",)
"""What a worker sees of ``/etc`` under bubblewrap."""

LOCALE_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")


@dataclass(frozen=True, slots=True)
class WorkerSandbox:
    """The backend workers run under, or why there is none.

    Attributes:
        sandbox: The backend (``None`` when none is usable).
        reason: Why this backend, or why none.
    """

    sandbox: Sandbox | None
    reason: str

    @property
    def name(self) -> str:
        return self.sandbox.name if self.sandbox is not None else "unavailable"

    def require(self, language: str) -> Sandbox:
        """The backend, or ``SandboxUnavailable`` saying why ``language`` cannot run here."""
        if self.sandbox is None:
            raise SandboxUnavailable(
                f"'{language}' programs need an OS sandbox and none works here: {self.reason}",
                hint="install bubblewrap (scripts/install-sandbox-deps.sh), or use language 'python'",
            )
        return self.sandbox


def select_worker_sandbox(mode: str) -> WorkerSandbox:
    """The backend for ``code_isolation`` = ``mode`` (``auto``, ``bwrap``, ``landlock``, ``none``)."""
    candidates = ("bwrap", "landlock") if mode == "auto" else (mode,)
    reasons = []
    for name in candidates:
        sandbox = make_sandbox(name)
        state = sandbox.available()
        if state.ok:
            if name == "none":
                logger.warning("code execution workers run without an OS sandbox (code_isolation=none)")
            return WorkerSandbox(sandbox, state.reason)
        reasons.append(f"{name}: {state.reason}")
    return WorkerSandbox(None, "; ".join(reasons))


def worker_policy(
    *,
    readonly: Sequence[str],
    memory_bytes: int,
    cpu_seconds: int,
    max_processes: int,
    env: Mapping[str, str] | None = None,
) -> SandboxPolicy:
    """The policy of one worker: no network, nothing writable but its private ``/tmp``."""
    return SandboxPolicy(
        network="none",
        readonly_paths=tuple(readonly),
        memory_bytes=memory_bytes,
        cpu_seconds=cpu_seconds,
        max_processes=max_processes,
        max_open_files=128,
        max_file_bytes=16 * 1024 * 1024,
        env_allowlist=LOCALE_ENV,
        env=dict(env or {}),
    )


def _minimal_etc(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Mount an empty ``/etc`` (plus the loader cache) over the curated one, after the other
    binds and before bubblewrap's final steps (``--remount-ro /``, ``--``)."""
    try:
        cut = argv.index("--")
    except ValueError:
        return argv
    for index in range(cut):
        if argv[index] == "--remount-ro":
            cut = index
            break
    extra = ["--tmpfs", "/etc"]
    for path in MINIMAL_ETC:
        extra += ["--ro-bind-try", path, path]
    return (*argv[:cut], *extra, *argv[cut:])


def prepare_worker(
    sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str], policy: SandboxPolicy
) -> PreparedCommand:
    """``argv`` prepared under ``policy``, with the worker-only hardening for bubblewrap."""
    prepared = sandbox.prepare(argv, env, policy)
    if prepared.backend != "bwrap":
        return prepared
    return PreparedCommand(
        argv=_minimal_etc(prepared.argv),
        env=prepared.env,
        cwd=prepared.cwd,
        backend=prepared.backend,
        policy=prepared.policy,
        pass_fds=prepared.pass_fds,
        cleanup=prepared.cleanup,
    )
