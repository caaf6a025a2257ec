"""The bubblewrap backend: namespaces for isolation, the launcher for limits and seccomp.

Design. The sandbox starts from an empty root (bubblewrap's tmpfs) and sees only what is
bound in: the system trees read-only, a curated ``/etc``, a fresh ``/proc``, a minimal
``/dev``, a private ``/tmp``, the policy's paths, and the launcher with its interpreter.
Everything else on the host — the rest of home, the gateway's data directory, other
servers' files, host sockets — simply does not exist inside. All namespaces are unshared
(user, PID, IPC, UTS, cgroup, network); ``network=host`` shares only the network one, and
``network=allow`` keeps it private and binds the egress proxy's Unix socket in, where the
launcher's forwarder exposes it as ``127.0.0.1:3128``. The user namespace maps the
sandbox user to uid 65534 with every capability dropped, except that ``CAP_SYS_ADMIN`` and
``CAP_SETPCAP`` survive into the launcher, which uses them only to cap the PID namespace's
``pid_max`` and then drops them (``RLIMIT_NPROC`` alone does not hold for a root gateway).
``--die-with-parent`` and the PID namespace make the whole tree die with the outer process;
``--new-session`` keeps the sandbox off any terminal.

Paths are bound at the same location as on the host, so arguments and environment values
that name files keep working unchanged.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from mcpproxy.sandbox._host import (
    CPU_INFO,
    LAUNCHER_PATH,
    SYSTEM_RO,
    bytecode_for,
    etc_paths,
    launch_spec,
    launcher_command,
    launcher_python_roots,
    proxy_env,
    pyseccomp_file,
)
from mcpproxy.sandbox.base import (
    Availability,
    EgressEndpoint,
    PreparedCommand,
    SandboxPolicy,
    SandboxPolicyError,
    SandboxUnavailable,
    explain_exit,
)

INNER_LAUNCHER_DIR = "/run/mcpproxy/launcher"
INNER_LIB = "/run/mcpproxy/lib"
INNER_EGRESS_SOCKET = "/run/mcpproxy/egress.sock"
INNER_PROXY_PORT = 3128
SANDBOX_UID = 65534
PROBE_TIMEOUT = 5.0


class BubblewrapSandbox:
    """Runs commands under ``bwrap`` (bubblewrap 0.8 or newer).

    Args:
        bwrap_path: The ``bwrap`` binary; found on ``PATH`` when ``None``.
    """

    name = "bwrap"

    def __init__(self, bwrap_path: str | None = None) -> None:
        self._bwrap = bwrap_path

    @property
    def bwrap(self) -> str | None:
        return self._bwrap or shutil.which("bwrap")

    def available(self) -> Availability:
        """Whether ``bwrap`` exists and can create its namespaces here (one bounded probe)."""
        return _probe(self.bwrap)

    def prepare(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: SandboxPolicy,
        *,
        egress: EgressEndpoint | None = None,
    ) -> PreparedCommand:
        """Build ``bwrap [binds] -- python launch.py <spec> -- argv`` for ``policy``.

        Raises:
            SandboxUnavailable: ``bwrap`` is missing or cannot create namespaces.
            SandboxPolicyError: ``argv`` is empty, or ``network=allow`` without a Unix egress socket.
        """
        if not argv:
            raise SandboxPolicyError("nothing to run: the command is empty")
        state = self.available()
        bwrap = self.bwrap
        if not state.ok or bwrap is None:
            raise SandboxUnavailable(f"bubblewrap sandbox unavailable: {state.reason}", hint=INSTALL_HINT)
        final_env = policy.final_env(env)
        out: list[str] = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
        out += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--cap-drop", "ALL"]
        if policy.max_processes is not None:
            out += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        if policy.network == "host":
            out.append("--share-net")
        out += _system_binds()
        seccomp_file = pyseccomp_file()
        for root in launcher_python_roots():
            out += ["--ro-bind", root, root]
        out += _bind_module(LAUNCHER_PATH, INNER_LAUNCHER_DIR)
        if seccomp_file is not None:
            out += _bind_module(seccomp_file, INNER_LIB)
        out += _policy_binds(policy)
        env_set: dict[str, str] = {}
        forward = None
        if policy.network == "allow":
            if egress is None or egress.unix_path is None:
                raise SandboxPolicyError(
                    "network 'allow' needs a running egress proxy with a Unix socket",
                    hint="start mcpproxy.sandbox.egress.EgressProxy (or use sandboxed_command)",
                )
            out += ["--bind", egress.unix_path, INNER_EGRESS_SOCKET]
            forward = {"port": INNER_PROXY_PORT, "unix": INNER_EGRESS_SOCKET}
            env_set = proxy_env(f"http://127.0.0.1:{INNER_PROXY_PORT}")
        if policy.working_dir is not None:
            out += ["--chdir", policy.working_dir]
        # The root itself (and the mount points bwrap made in it) read-only: a write outside the
        # binds fails with EROFS instead of vanishing into a tmpfs.
        out += ["--remount-ro", "/"]
        seccomp = None
        if seccomp_file is not None:
            seccomp = {"required": True, "deny_inet": policy.network == "none", "tcp4_only": policy.network == "allow"}
        spec = launch_spec(
            policy,
            final_env,
            env_set=env_set,
            seccomp=seccomp,
            pid_max=policy.max_processes is not None,
            forward=forward,
        )
        lib_dirs = [INNER_LIB] if seccomp_file is not None else []
        out += ["--", *launcher_command(INNER_LAUNCHER_DIR, lib_dirs), spec, "--", *argv]
        return PreparedCommand(argv=tuple(out), env=final_env, cwd=None, backend=self.name, policy=policy)

    def explain_exit(self, policy: SandboxPolicy, returncode: int | None, stderr_tail: str) -> str | None:
        return explain_exit(policy, returncode, stderr_tail, backend=self.name)


INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or choose another sandbox"


def _bind_module(source: str, inner_dir: str) -> list[str]:
    """Bind one Python module, and its cached bytecode when there is one, into ``inner_dir``."""
    name = os.path.basename(source)
    out = ["--ro-bind", source, f"{inner_dir}/{name}"]
    cached = bytecode_for(source)
    if cached is not None:
        out += ["--ro-bind", cached, f"{inner_dir}/__pycache__/{os.path.basename(cached)}"]
    return out


def _system_binds() -> list[str]:
    out: list[str] = []
    for path in SYSTEM_RO:
        if os.path.islink(path):
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    for path in etc_paths():
        out += ["--ro-bind-try", path, path]
    # The sandbox's own /tmp: a fresh tmpfs, not the host's.
    out += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind-try", CPU_INFO, CPU_INFO]  # noqa: S108
    return out


def _policy_binds(policy: SandboxPolicy) -> list[str]:
    """Binds for the policy's paths, parents first, so the more specific path's mode wins."""
    writable = {*policy.writable_paths, *(p for p in (policy.home_dir, policy.tmp_dir) if p is not None)}
    readonly = set(policy.readonly_paths) - writable
    if policy.working_dir is not None and policy.working_dir not in writable:
        readonly.add(policy.working_dir)
    out: list[str] = []
    for path in sorted(writable | readonly, key=lambda p: (p.count("/"), p)):
        if path in writable:
            if not os.path.exists(path):
                raise SandboxPolicyError(f"writable sandbox path does not exist: {path}", key="writable_paths")
            out += ["--bind", path, path]
        else:
            out += ["--ro-bind-try", path, path]
    return out


@functools.cache
def _probe(bwrap: str | None) -> Availability:
    if bwrap is None:
        return Availability(False, "bwrap is not installed")
    try:
        result = subprocess.run(
            [
                bwrap,
                "--unshare-all",
                "--unshare-user",
                "--die-with-parent",
                "--ro-bind",
                "/usr",
                "/usr",
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
                "--",
                "/usr/bin/true",
            ],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability(False, f"bwrap could not run: {exc}")
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        last = detail[-1] if detail else f"exit code {result.returncode}"
        return Availability(False, f"bwrap cannot create namespaces here: {last}")
    extra = "" if pyseccomp_file() is not None else " (no seccomp filter: install pyseccomp and libseccomp2)"
    return Availability(True, f"bubblewrap works{extra}")
