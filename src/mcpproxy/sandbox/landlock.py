"""The landlock backend: Landlock + seccomp + rlimits, with no namespaces required.

Design. This is the fallback for hosts where bubblewrap is missing or user namespaces are
forbidden. The process keeps the host's view of the file system, so access is decided by a
Landlock ruleset (kernel 5.13+) that grants read/execute on the system trees, a curated
``/etc``, ``/proc`` and the interpreter, read/write on the policy's writable paths, and
nothing else — the rest of home and the gateway's data directory are refused with EACCES.
Landlock also scopes signals and abstract Unix sockets to the sandbox (ABI 6+), and from
ABI 4 it refuses every TCP ``connect``/``bind`` except to the egress proxy's port.
seccomp backs this up: no AF_INET/AF_INET6 sockets at all with ``network=none``, IPv4
stream sockets only with ``network=allow``, no ``socket(AF_UNIX)`` (host daemons' sockets
stay unreachable), and no ptrace, mount, namespace, BPF or kernel-module calls. The
launcher also drops every capability (a root gateway would otherwise hand them on) and,
where it can, moves the server into a PID namespace of its own whose ``pid_max`` bounds
the number of processes.

Known limits, documented in docs/sandbox.md: ``network=allow`` is enforced by port, not by
address (the process could reach another host on the proxy's port), and ``/proc`` shows
other processes' command lines (Landlock blocks their memory and environment).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence

from mcpproxy.sandbox._host import (
    CPU_INFO,
    DEVICES,
    LAUNCHER_DIR,
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

MIN_ABI = 1
NET_ABI = 4


class LandlockSandbox:
    """Runs commands under the launcher with Landlock and seccomp applied (Linux 5.13+)."""

    name = "landlock"

    def available(self) -> Availability:
        """Whether the kernel offers Landlock and libseccomp can be loaded."""
        return _probe()

    def prepare(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: SandboxPolicy,
        *,
        egress: EgressEndpoint | None = None,
    ) -> PreparedCommand:
        """Build ``python launch.py <spec> -- argv`` for ``policy``.

        Raises:
            SandboxUnavailable: Landlock or seccomp is missing.
            SandboxPolicyError: ``argv`` is empty, or ``network=allow`` without a TCP egress port.
        """
        if not argv:
            raise SandboxPolicyError("nothing to run: the command is empty")
        state = self.available()
        if not state.ok:
            raise SandboxUnavailable(f"landlock sandbox unavailable: {state.reason}", hint=INSTALL_HINT)
        final_env = policy.final_env(env)
        ro = [*SYSTEM_RO, *etc_paths(), "/proc", CPU_INFO, *launcher_python_roots(), LAUNCHER_PATH]
        seccomp_file = pyseccomp_file()
        ro += policy.readonly_paths
        rw = [*policy.writable_paths, *(p for p in (policy.home_dir, policy.tmp_dir) if p is not None)]
        if policy.working_dir is not None and policy.working_dir not in rw:
            ro.append(policy.working_dir)
        env_set: dict[str, str] = {}
        tcp_connect: list[int] | None = []
        if policy.network == "host":
            tcp_connect = None
        elif policy.network == "allow":
            if egress is None or egress.tcp_port is None:
                raise SandboxPolicyError(
                    "network 'allow' needs a running egress proxy with a TCP port on 127.0.0.1",
                    hint="start mcpproxy.sandbox.egress.EgressProxy with tcp=True (or use sandboxed_command)",
                )
            tcp_connect = [egress.tcp_port]
            env_set = proxy_env(f"http://127.0.0.1:{egress.tcp_port}")
        landlock = {
            "ro": ro,
            "rw": rw,
            "dev": list(DEVICES),
            "tcp_connect": tcp_connect,
            "min_abi": NET_ABI if policy.network == "allow" else MIN_ABI,
        }
        seccomp = {
            "required": True,
            "deny_inet": policy.network == "none",
            "tcp4_only": policy.network == "allow",
            "deny_unix": policy.network != "host",
        }
        lib_dirs = [os.path.dirname(seccomp_file)] if seccomp_file is not None else []
        bytecode_for(LAUNCHER_PATH)
        spec = launch_spec(policy, final_env, env_set=env_set, landlock=landlock, seccomp=seccomp, pidns=True)
        out = (*launcher_command(LAUNCHER_DIR, lib_dirs), spec, "--", *argv)
        return PreparedCommand(argv=out, env=final_env, cwd=policy.working_dir, backend=self.name, policy=policy)

    def explain_exit(self, policy: SandboxPolicy, returncode: int | None, stderr_tail: str) -> str | None:
        return explain_exit(policy, returncode, stderr_tail, backend=self.name)


INSTALL_HINT = "needs Linux 5.13+ with Landlock enabled, libseccomp2 and the pyseccomp package"


def landlock_abi() -> int:
    """The kernel's Landlock ABI (0 when unavailable), asked through the launcher's own binding."""
    from mcpproxy.sandbox import _launch

    return _launch.landlock_abi()


@functools.cache
def _probe() -> Availability:
    abi = landlock_abi()
    if abi < MIN_ABI:
        return Availability(False, "the kernel does not offer Landlock (Linux 5.13+ with lsm=landlock)")
    if pyseccomp_file() is None:
        return Availability(False, "seccomp unavailable: install libseccomp2 and the pyseccomp package")
    net = "TCP port rules" if abi >= NET_ABI else "no TCP port rules (network=allow unavailable)"
    return Availability(True, f"Landlock ABI {abi} with seccomp; {net}")
