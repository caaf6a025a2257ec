"""What a sandbox is: a policy, a backend protocol, a prepared command, and exit explanations.

Design. A sandbox never starts a process itself. ``Sandbox.prepare`` turns the command a
server would run, plus a ``SandboxPolicy``, into a ``PreparedCommand``: the argv to execute
(``bwrap ... launcher ... argv``, ``docker run ...``, or the argv unchanged), the exact
environment, the working directory and a cleanup hook. The stdio upstream and the code
workers then start it their own way (``anyio.open_process``, the MCP SDK's stdio client),
with ``start_new_session=True`` so the whole group can be killed. Every restriction is
applied *after* ``exec`` by bubblewrap or by the small launcher (``_launch.py``), never in a
``preexec_fn`` (unsafe in a threaded program, and unavailable to the SDK's stdio client).
The launcher also re-filters the environment to exactly the keys the policy allows, so a
caller that merges extra variables into ``env`` cannot leak them in; secrets travel in the
environment, never on a command line (``/proc/PID/cmdline`` is world-readable).

The policy is a frozen, validated value: absolute paths only, domains in a strict form,
positive limits. ``explain_exit`` turns a death (signal or exit code plus the stderr tail)
into one sentence a user can act on, and is deliberately conservative: it names the
sandbox only when a limit was set or a denial marker is present.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mcpproxy.errors import ConfigError, UpstreamUnavailable

NetworkMode = Literal["none", "host", "allow"]
NETWORK_MODES: tuple[NetworkMode, ...] = ("none", "host", "allow")

DOMAIN_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
"""An allowed domain: a lower-case host name, optionally ``*.`` for every sub-domain, or an IP literal."""

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_ENV_ALLOWLIST: tuple[str, ...] = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
"""Host variables a sandboxed process may inherit when the caller passes them (nothing secret)."""

LAUNCHER_MARKER = "mcpproxy sandbox: "
"""Prefix of everything the launcher itself writes to stderr (setup failures, a command not found)."""

EGRESS_DENIED_MARKER = "mcpproxy sandbox: egress denied"
"""Text the egress proxy puts in every refusal, so ``explain_exit`` can recognise it in stderr."""


class SandboxPolicyError(ConfigError):
    """A sandbox policy (or a value a backend must validate, such as an image name) is invalid."""

    kind = "sandbox_policy_error"


class SandboxUnavailable(UpstreamUnavailable):
    """The configured sandbox backend cannot run on this machine; ``hint`` says what to install."""

    kind = "sandbox_unavailable"


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What a sandboxed process may do. Every path is absolute; ``None`` means no limit.

    Attributes:
        network: ``none`` (no network at all), ``host`` (the host's network) or ``allow``
            (only HTTP(S) through the egress proxy, to ``allowed_domains``).
        allowed_domains: Hosts reachable with ``allow``: exact names, ``*.suffix`` for every
            sub-domain of ``suffix``, or IP literals.
        writable_paths: Directories or files the process may read and write.
        readonly_paths: Directories or files the process may read (and execute).
        memory_bytes: Data-segment limit (``RLIMIT_DATA``; ``--memory`` for docker).
        cpu_seconds: CPU time after which the kernel sends SIGXCPU (SIGKILL one second later).
        max_processes: Processes and threads the sandbox may have at once.
        max_open_files: File descriptors per process.
        max_file_bytes: Largest file the process may write (``RLIMIT_FSIZE``).
        env_allowlist: Names of variables kept from the ``env`` the caller passes.
        env: Variables set explicitly; they win over the allowlisted ones.
        working_dir: Working directory (made reachable read-only unless listed writable).
        home_dir: Private directory used as ``HOME`` (writable); ``None`` uses a fresh tmpfs.
        tmp_dir: Private directory used as ``TMPDIR`` (writable); ``None`` uses the sandbox's.
    """

    network: NetworkMode = "none"
    allowed_domains: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    memory_bytes: int | None = 1024 * 1024 * 1024
    cpu_seconds: int | None = None
    max_processes: int | None = 128
    max_open_files: int | None = 1024
    max_file_bytes: int | None = None
    env_allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    home_dir: str | None = None
    tmp_dir: str | None = None

    def __post_init__(self) -> None:
        if self.network not in NETWORK_MODES:
            raise SandboxPolicyError(f"network must be one of {', '.join(NETWORK_MODES)}", key="network")
        for domain in self.allowed_domains:
            if not is_valid_domain(domain):
                raise SandboxPolicyError(
                    f"{domain!r} is not a valid allowed domain",
                    key="allowed_domains",
                    hint="use a lower-case host name, '*.example.com' for sub-domains, or an IP address",
                )
        paths = [*self.writable_paths, *self.readonly_paths]
        paths += [p for p in (self.working_dir, self.home_dir, self.tmp_dir) if p is not None]
        for path in paths:
            if not os.path.isabs(path) or "\x00" in path or "\n" in path:
                raise SandboxPolicyError(f"sandbox paths must be absolute: {path!r}", key="paths")
        for name in ("memory_bytes", "cpu_seconds", "max_processes", "max_open_files", "max_file_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise SandboxPolicyError(f"{name} must be a positive integer or null", key=name)
        for key in (*self.env_allowlist, *self.env):
            if not ENV_NAME_RE.fullmatch(key):
                raise SandboxPolicyError(f"{key!r} is not a valid environment variable name", key="env")
        object.__setattr__(self, "env", dict(self.env))

    def final_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The environment the sandboxed process sees: allowlisted ``env`` keys, then ``self.env``."""
        out = {k: env[k] for k in self.env_allowlist if k in env}
        out.update(self.env)
        if self.home_dir is not None:
            out["HOME"] = self.home_dir
        if self.tmp_dir is not None:
            out["TMPDIR"] = self.tmp_dir
        return out

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-ready data (environment values included: keep it off command lines)."""
        return {
            "network": self.network,
            "allowed_domains": list(self.allowed_domains),
            "writable_paths": list(self.writable_paths),
            "readonly_paths": list(self.readonly_paths),
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": self.cpu_seconds,
            "max_processes": self.max_processes,
            "max_open_files": self.max_open_files,
            "max_file_bytes": self.max_file_bytes,
            "env_allowlist": list(self.env_allowlist),
            "env": dict(self.env),
            "working_dir": self.working_dir,
            "home_dir": self.home_dir,
            "tmp_dir": self.tmp_dir,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxPolicy:
        """Build a policy from ``to_dict`` output (or config); unknown keys are an error.

        Raises:
            SandboxPolicyError: On an unknown key or an invalid value.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SandboxPolicyError(f"unknown sandbox policy keys: {', '.join(unknown)}", key=unknown[0])
        kwargs = dict(data)
        for key in ("allowed_domains", "writable_paths", "readonly_paths", "env_allowlist"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def is_valid_domain(domain: str) -> bool:
    """Whether ``domain`` is an allowed-domain entry: ``host``, ``*.host`` or an IP literal."""
    import ipaddress

    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return len(domain) <= 253 and DOMAIN_RE.fullmatch(domain) is not None
    return True


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend can run here, and why (or why not) in one sentence."""

    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class EgressEndpoint:
    """Where a running egress proxy listens, as the sandbox backends need it.

    Attributes:
        unix_path: Unix socket path (bound into bubblewrap sandboxes).
        tcp_port: Port on 127.0.0.1 (for backends that share the host network namespace).
    """

    unix_path: str | None = None
    tcp_port: int | None = None


def _noop() -> None:
    return None


@dataclass(frozen=True, slots=True)
class PreparedCommand:
    """A command ready to start: the caller runs ``argv`` with exactly ``env`` and ``cwd``.

    Start it with ``start_new_session=True`` and stop it by killing the process group; call
    ``cleanup()`` once the process is gone (it is idempotent).

    Attributes:
        argv: Program and arguments to execute.
        env: The complete environment to start it with (do not merge the host's into it).
        cwd: Working directory for the outer process, or ``None``.
        pass_fds: File descriptors the process must inherit.
        backend: Name of the sandbox that prepared it.
        policy: The policy it enforces.
        cleanup: Releases what ``prepare`` created (temporary files).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    backend: str
    policy: SandboxPolicy
    pass_fds: tuple[int, ...] = ()
    cleanup: Callable[[], None] = _noop

    def explain_exit(self, returncode: int | None, stderr_tail: str) -> str | None:
        """Why the process died, in one sentence, or ``None`` when nothing points at the sandbox."""
        return explain_exit(self.policy, returncode, stderr_tail, backend=self.backend)


class Sandbox(Protocol):
    """A sandbox backend. Implementations are cheap to build and hold no processes."""

    @property
    def name(self) -> str:
        """Backend name as configured (``bwrap``, ``landlock``, ``docker``, ``none``)."""

    def available(self) -> Availability:
        """Whether the backend works on this machine (bounded in time, cached when costly)."""

    def prepare(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: SandboxPolicy,
        *,
        egress: EgressEndpoint | None = None,
    ) -> PreparedCommand:
        """Wrap ``argv`` so it runs under ``policy``.

        Args:
            argv: The server's command and arguments.
            env: The environment the server would get (filtered through the policy).
            policy: What the process may do.
            egress: The running egress proxy, required when ``policy.network == "allow"``.

        Raises:
            SandboxUnavailable: The backend cannot run here.
            SandboxPolicyError: The policy or command cannot be expressed by this backend.
        """

    def explain_exit(self, policy: SandboxPolicy, returncode: int | None, stderr_tail: str) -> str | None:
        """Why a process prepared by this backend died (see ``PreparedCommand.explain_exit``)."""


def human_bytes(n: int) -> str:
    """``1073741824`` -> ``"1 GiB"``; used in messages."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def exit_signal(returncode: int | None) -> int | None:
    """The signal that killed a process, from a Popen code (``-N``) or a shell-style ``128+N``."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


_MEMORY_MARKERS = (
    "MemoryError",
    "JavaScript heap out of memory",
    "Cannot allocate memory",
    "std::bad_alloc",
    "Allocation failed",
    "Failed to reserve virtual memory",
    "out of memory",
)
_DENIED_MARKERS = ("Permission denied", "Operation not permitted", "EACCES", "EPERM", "Read-only file system")
_NET_MARKERS = ("Network is unreachable", "Connection refused", "ENETUNREACH", "ECONNREFUSED")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _first_line(stderr_tail: str, markers: Sequence[str]) -> str | None:
    for line in stderr_tail.splitlines():
        if any(m in line for m in markers):
            return line.strip()[:300]
    return None


def explain_exit(
    policy: SandboxPolicy, returncode: int | None, stderr_tail: str, *, backend: str = "sandbox"
) -> str | None:
    """Explain a sandboxed process's death in one sentence.

    Args:
        policy: The policy the process ran under.
        returncode: Exit code (negative for a signal, as ``subprocess`` reports it; bubblewrap
            and docker report ``128 + signal``), or ``None`` if unknown.
        stderr_tail: The last lines the process wrote to stderr.
        backend: Backend name; ``none`` never blames the sandbox for a denial.

    Returns:
        The explanation, or ``None`` when the exit does not look like the sandbox's doing.
    """
    if returncode == 0:
        return None
    sig = exit_signal(returncode)
    sandboxed = backend != "none"
    if sandboxed and policy.cpu_seconds is not None and sig == signal.SIGXCPU:
        return f"killed: CPU time limit ({policy.cpu_seconds} s) exceeded"
    if sandboxed and policy.max_file_bytes is not None and sig == signal.SIGXFSZ:
        return f"killed: file size limit ({human_bytes(policy.max_file_bytes)}) exceeded"
    if sandboxed and sig == signal.SIGSYS:
        return "killed: a system call the sandbox forbids (seccomp)"
    bwrap_line = _first_line(stderr_tail, ("bwrap: ",))
    if bwrap_line is not None:
        return f"sandbox failed to start: {bwrap_line}"
    launcher_line = next(
        (ln for ln in stderr_tail.splitlines() if LAUNCHER_MARKER in ln and EGRESS_DENIED_MARKER not in ln), None
    )
    if sandboxed and launcher_line is not None:
        return f"sandbox failed to start the server: {launcher_line.strip()[:300]}"
    if sandboxed and EGRESS_DENIED_MARKER in stderr_tail:
        line = _first_line(stderr_tail, (EGRESS_DENIED_MARKER,)) or EGRESS_DENIED_MARKER
        return f"denied by sandbox: {line} (allowed: {', '.join(policy.allowed_domains) or 'nothing'})"
    memory_line = _first_line(stderr_tail, _MEMORY_MARKERS)
    if sandboxed and policy.memory_bytes is not None and (memory_line is not None or sig == signal.SIGKILL):
        limits = f"memory limit ({human_bytes(policy.memory_bytes)})"
        if memory_line is not None:
            return f"stopped: {limits} exceeded: {memory_line}"
        cpu = f" or the CPU hard limit ({policy.cpu_seconds + 1} s)" if policy.cpu_seconds else ""
        return f"killed (SIGKILL): probably the {limits}{cpu} was exceeded, or the gateway stopped it"
    if sandboxed and policy.cpu_seconds is not None and sig == signal.SIGKILL:
        return f"killed (SIGKILL): CPU hard limit ({policy.cpu_seconds + 1} s) exceeded, or the gateway stopped it"
    fork_line = _first_line(stderr_tail, ("Resource temporarily unavailable", "Cannot fork", "EAGAIN"))
    if sandboxed and policy.max_processes is not None and fork_line is not None:
        return f"denied by sandbox: process limit ({policy.max_processes}) reached: {fork_line}"
    files_line = _first_line(stderr_tail, ("Too many open files", "EMFILE"))
    if sandboxed and policy.max_open_files is not None and files_line is not None:
        return f"denied by sandbox: open-file limit ({policy.max_open_files}) reached: {files_line}"
    denied_line = _first_line(stderr_tail, _DENIED_MARKERS)
    if sandboxed and denied_line is not None:
        return f"denied by sandbox: {denied_line}"
    net_line = _first_line(stderr_tail, _NET_MARKERS)
    if sandboxed and policy.network == "none" and net_line is not None:
        return f"denied by sandbox: network is disabled (network=none): {net_line}"
    if sandboxed and policy.network == "allow" and net_line is not None:
        return f"denied by sandbox: only the egress proxy is reachable (network=allow): {net_line}"
    missing_line = _first_line(stderr_tail, ("No such file or directory", "ENOENT"))
    if sandboxed and missing_line is not None:
        return f"not found inside the sandbox (paths outside the policy are hidden): {missing_line}"
    if sig is not None:
        return f"killed by {_signal_name(sig)}"
    return None
