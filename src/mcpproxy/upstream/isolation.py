"""Stdio servers in a sandbox: from a server's entry to a confined process, and from its death
to a sentence.

Design. ``plan_isolation`` decides, for one start of a stdio server, which sandbox runs it
and under which policy: the server's ``isolation.mode`` or the global ``isolation`` setting
picks the backend (``auto``: the strongest that works here, see ``mcpproxy.sandbox.auto``);
``default_policy_for`` derives the paths, environment and network from the entry (the paths
named in its arguments, environment and working directory are reachable, nothing else of the
home directory or of mcpproxy's data dir); the entry's ``isolation`` keys then add paths,
domains and limits. Falling back to no sandbox is never silent: the status, the server's log
and the main log say so, and ``require_isolation`` turns it into an error. Paths a human
lists explicitly are honoured, except mcpproxy's own data directory (or a directory holding
it): its config, database and API key stay out of every sandbox. Servers the model adds
cannot set ``isolation`` at all (``upstream_servers`` passes only command, args, env...).

``isolated_stdio_client`` is the stdio transport the session layer uses. It keeps the
sandbox's lifetime (the egress proxy of ``network: allow``) around the process, which
``stdio_process.process_stdio_client`` starts and speaks MCP to (the SDK's framing and
shutdown, with the process in hand). When the process dies on its own, its exit status and
the tail of its stderr (its log file) go through ``explain_exit``, and the sentence ("killed:
CPU time limit (5 s) exceeded", "denied by sandbox: PermissionError ...") is reported *before*
the session sees its stream end, so the server's state says why instead of "connection
closed"; it also goes to the server's log and the main log.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TextIO

import anyio
import anyio.abc
from mcp.client._transport import TransportStreams

from mcpproxy.sandbox.auto import Selection, select_sandbox
from mcpproxy.sandbox.base import PreparedCommand, Sandbox, SandboxPolicy, SandboxPolicyError, SandboxUnavailable
from mcpproxy.sandbox.defaults import default_policy_for
from mcpproxy.sandbox.docker import DockerSandbox
from mcpproxy.sandbox.egress import EgressDecision
from mcpproxy.sandbox.none import NoSandbox
from mcpproxy.sandbox.session import sandboxed_command
from mcpproxy.secrets.masking import mask_known
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.upstream.stdio_process import process_stdio_client

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
SELECTION_TTL = 30.0
"""Seconds a backend choice is reused: probing docker can take seconds, and hosts rarely change."""
STDERR_TAIL_BYTES = 8192
"""How much of the end of a dead server's stderr ``explain_exit`` reads."""
LOG_PREFIX = "mcpproxy:"
"""Lines mcpproxy writes into a server's log file start with this."""

_selections: dict[tuple[str, bool], tuple[float, Selection | SandboxUnavailable]] = {}


@dataclass(frozen=True, slots=True)
class IsolationPlan:
    """How one start of a stdio server runs.

    Attributes:
        backend: ``bwrap``, ``landlock``, ``docker`` or ``none``.
        sandbox: The backend object.
        policy: The policy it enforces (``None`` when the server runs unconfined).
        argv: The server's command line (before the sandbox wraps it).
        env: Environment handed to the sandbox (it keeps only what the policy allows).
        cwd: Working directory for an unconfined server.
        notes: Sentences about the plan: refused paths, why no sandbox is used.
    """

    backend: str
    sandbox: Sandbox
    policy: SandboxPolicy | None
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One line for listings: ``bwrap, network none`` or ``none (opted out)``."""
        if self.policy is None:
            return f"none ({self.notes[0]})" if self.notes else "none"
        network: str = self.policy.network
        if network == "allow":
            network += " " + (", ".join(self.policy.allowed_domains) or "nothing")
        return f"{self.backend}, network {network}"


def select_backend(mode: str, *, require: bool = False) -> Selection:
    """The backend for ``mode`` (``auto`` or a name), probed at most every ``SELECTION_TTL`` s.

    Blocking (the probes start processes): call it from a worker thread.

    Raises:
        SandboxUnavailable: The named backend (or, with ``require``, every isolating one) cannot run here.
        SandboxPolicyError: ``mode`` is not a backend.
    """
    key = (mode, require)
    now = time.monotonic()
    cached = _selections.get(key)
    if cached is not None and now - cached[0] < SELECTION_TTL:
        result = cached[1]
    else:
        try:
            result = select_sandbox(mode, require_isolation=require)
        except SandboxUnavailable as exc:
            result = exc
        _selections[key] = (now, result)
    if isinstance(result, SandboxUnavailable):
        raise result
    return result


def forget_backends() -> None:
    """Drop the cached backend choices (after installing one, or in tests)."""
    _selections.clear()


def _expand(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _extra_paths(paths: Sequence[str], data_dir: str, key: str) -> tuple[str, ...]:
    """Paths the entry lists explicitly, refused if they expose mcpproxy's data directory."""
    out: list[str] = []
    for raw in paths:
        path = _expand(raw)
        if _inside(path, data_dir) or _inside(data_dir, path):
            raise SandboxPolicyError(
                f"isolation.{key}: {raw} would expose mcpproxy's data directory ({data_dir}) to the server",
                key=f"isolation.{key}",
                hint="list a directory that neither is nor contains the data directory",
            )
        out.append(path)
    return tuple(out)


def plan_isolation(spec: ServerSpec, settings: Settings, env: Mapping[str, str]) -> IsolationPlan:
    """Decide how ``spec`` runs: which sandbox, which policy (blocking: run it in a thread).

    Args:
        spec: A stdio server entry, secret references already resolved.
        settings: Global settings (``isolation``, ``require_isolation``, ``data_dir``).
        env: The environment the server would get without a sandbox (``stdio_environment``).

    Raises:
        SandboxUnavailable: The configured sandbox cannot run here (or none can, and one is required).
        SandboxPolicyError: The entry's isolation settings cannot be applied.
    """
    assert spec.command is not None
    argv = (spec.command, *spec.args)
    cwd = os.path.expanduser(spec.working_dir) if spec.working_dir else None
    mode = settings.isolation_for(spec)
    if mode == "none":
        why = "opted out" if spec.isolation.mode == "none" else "isolation is off"
        return IsolationPlan("none", NoSandbox(), None, argv, env, cwd, (why,))
    selection = select_backend(mode, require=settings.require_isolation)
    if selection.sandbox.name == "none":
        skipped = "; ".join(f"{name}: {reason}" for name, reason in selection.skipped.items())
        note = f"no sandbox works here ({skipped}); `mcpproxy doctor` says what to install"
        return IsolationPlan("none", selection.sandbox, None, argv, env, cwd, (note,))
    sandbox = selection.sandbox
    iso = spec.isolation
    program = os.path.join(cwd, spec.command) if cwd and "/" in spec.command else spec.command
    if sandbox.name != "docker" and shutil.which(program, path=env.get("PATH")) is None:
        # Said plainly here, as an unconfined start would, rather than by the sandbox's launcher.
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), spec.command)
    if sandbox.name == "docker" and iso.image is not None:
        sandbox = DockerSandbox(image=iso.image)
    data_dir = _expand(str(settings.data_path))
    notes: list[str] = []
    network = iso.network or ("allow" if iso.allow_domains else None)
    policy = default_policy_for(
        spec.command,
        spec.args,
        spec.env,
        cwd,
        data_dir,
        name=spec.name,
        network=network,
        allowed_domains=iso.allow_domains,
        notes=notes,
    )
    writable = _extra_paths(iso.writable, data_dir, "writable")
    readonly = _extra_paths(iso.readonly, data_dir, "readonly")
    policy = dataclasses.replace(
        policy,
        writable_paths=tuple(dict.fromkeys((*policy.writable_paths, *writable))),
        readonly_paths=tuple(dict.fromkeys(p for p in (*policy.readonly_paths, *readonly) if p not in writable)),
        memory_bytes=iso.memory_mb * MIB if iso.memory_mb is not None else None,
        cpu_seconds=iso.cpu_seconds,
        max_processes=iso.max_processes,
        max_open_files=iso.max_open_files,
        env_allowlist=tuple(dict.fromkeys((*policy.env_allowlist, *iso.env_allowlist))),
    )
    # The sandbox keeps only the policy's variables; the host's allowlisted ones come from here.
    host_env = {**{k: v for k, v in os.environ.items() if k in iso.env_allowlist}, **env}
    return IsolationPlan(sandbox.name, sandbox, policy, argv, host_env, None, tuple(notes))


def describe_exit(prepared: PreparedCommand, returncode: int | None, stderr_tail: str) -> str:
    """Why a stdio server's process ended, in one sentence (never a bare "connection closed").

    The sandbox's explanation when it has one (a limit, a denial), else the exit status and
    the last line the server wrote to stderr.
    """
    reason = prepared.explain_exit(returncode, stderr_tail)
    last = _last_line(stderr_tail)
    if reason is None:
        if returncode is None:
            reason = "the process ended"
        elif returncode < 0:
            reason = f"killed by {_signal_name(-returncode)}"
        else:
            reason = f"exited with status {returncode}"
        if last is not None:
            reason += f": {last}"
    return mask_known(reason)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line and not line.startswith(LOG_PREFIX):
            return line[:300]
    return None


def _read_tail(path: str, start: int) -> str:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(start, size - STDERR_TAIL_BYTES) if size >= start else max(0, size - STDERR_TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@asynccontextmanager
async def _prepared(plan: IsolationPlan, on_egress: Callable[[EgressDecision], None]) -> AsyncIterator[PreparedCommand]:
    if plan.policy is None:
        policy = SandboxPolicy(memory_bytes=None, max_processes=None, max_open_files=None, env_allowlist=())
        yield PreparedCommand(argv=plan.argv, env=dict(plan.env), cwd=plan.cwd, backend="none", policy=policy)
        return
    async with sandboxed_command(plan.sandbox, plan.argv, plan.env, plan.policy, on_egress=on_egress) as prepared:
        yield prepared


def _log_line(errlog: TextIO, text: str) -> None:
    """A line of mcpproxy's own in the server's log file (between the server's stderr lines)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with suppress(OSError, ValueError):
        errlog.write(f"{LOG_PREFIX} {stamp} {mask_known(text)}\n")  # resolved secrets stay out of the file
        errlog.flush()


@asynccontextmanager
async def isolated_stdio_client(
    spec: ServerSpec,
    settings: Settings,
    *,
    env: Mapping[str, str],
    errlog: TextIO,
    on_plan: Callable[[IsolationPlan], None],
    on_exit: Callable[[str], None],
) -> AsyncIterator[TransportStreams]:
    """Start ``spec``'s server under its sandbox and speak MCP to it over stdin/stdout.

    Args:
        spec: The stdio server entry (secret references resolved).
        settings: Global settings.
        env: Its environment without a sandbox (``stdio_environment``).
        errlog: Its log file (a real file: the process writes its stderr there).
        on_plan: Hears the plan before the process starts (for the server's status).
        on_exit: Hears why the process ended, when it ended on its own, before the stream ends.

    Raises:
        SandboxUnavailable: The configured sandbox cannot run here.
        SandboxPolicyError: The isolation settings cannot be applied.
        OSError: The process could not be started.
    """
    plan = await anyio.to_thread.run_sync(plan_isolation, spec, settings, env)
    on_plan(plan)
    _log_line(errlog, f"starting {mask_known(' '.join(plan.argv))[:200]} (sandbox: {plan.summary})")
    for note in plan.notes:
        _log_line(errlog, note)
    if plan.policy is None and spec.isolation.mode != "none" and settings.isolation_for(spec) != "none":
        logger.warning("upstream %s runs without a sandbox: %s", spec.name, plan.notes[0] if plan.notes else "")

    def on_egress(decision: EgressDecision) -> None:
        if not decision.allowed:
            _log_line(errlog, f"egress denied: {decision.host}:{decision.port} ({decision.reason})")

    async with _prepared(plan, on_egress) as prepared:
        errlog.flush()
        start = os.fstat(errlog.fileno()).st_size

        async def exited(returncode: int | None) -> None:
            tail = await anyio.to_thread.run_sync(_read_tail, errlog.name, start)
            reason = describe_exit(prepared, returncode, tail)
            _log_line(errlog, f"server stopped: {reason}")
            logger.warning("upstream %s stopped: %s", spec.name, reason)
            on_exit(reason)

        async with process_stdio_client(
            prepared.argv, env=prepared.env, cwd=prepared.cwd, errlog=errlog, on_exit=exited
        ) as streams:
            yield streams


__all__ = [
    "IsolationPlan",
    "describe_exit",
    "forget_backends",
    "isolated_stdio_client",
    "plan_isolation",
    "select_backend",
]
