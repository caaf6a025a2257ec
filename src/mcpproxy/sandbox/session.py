"""One sandboxed start, with everything it needs alive around it.

Design. A prepared command may depend on something running in the gateway — today the
egress proxy for ``network=allow``. ``sandboxed_command`` owns that lifetime: it starts
the proxy (on a Unix socket for bubblewrap, on a 127.0.0.1 port for landlock), prepares the
command against it, yields it, and on exit stops the proxy and runs the command's cleanup.
The caller starts and stops the process *inside* the ``async with`` block, so the proxy
outlives the process and nothing leaks when either side fails (structured concurrency:
the proxy's tasks live in a task group scoped to this block).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from mcpproxy.sandbox.base import PreparedCommand, Sandbox, SandboxPolicy
from mcpproxy.sandbox.egress import DEFAULT_PORTS, EgressDecision, EgressProxy, Resolver


@asynccontextmanager
async def sandboxed_command(
    sandbox: Sandbox,
    argv: Sequence[str],
    env: Mapping[str, str],
    policy: SandboxPolicy,
    *,
    egress_ports: Sequence[int] | None = DEFAULT_PORTS,
    resolver: Resolver | None = None,
    allow_private: bool = False,
    on_egress: Callable[[EgressDecision], None] | None = None,
) -> AsyncIterator[PreparedCommand]:
    """Prepare ``argv`` under ``policy`` and keep its egress proxy running for the block.

    Args:
        sandbox: The backend.
        argv: Command and arguments.
        env: Environment the server would get (filtered by the policy).
        policy: What the process may do.
        egress_ports: Destination ports the egress proxy allows (``None``: any).
        resolver: Name-resolution hook for the egress proxy (tests map names to loopback).
        allow_private: Let the egress proxy reach non-public addresses.
        on_egress: Receives every egress decision.

    Yields:
        The prepared command; start it inside the block and stop it before leaving.

    Raises:
        SandboxUnavailable: The backend cannot run here.
        SandboxPolicyError: The policy cannot be expressed by the backend.
    """
    if policy.network != "allow" or sandbox.name in ("none", "docker"):
        prepared = sandbox.prepare(argv, env, policy)
        try:
            yield prepared
        finally:
            prepared.cleanup()
        return
    proxy = EgressProxy(
        policy.allowed_domains,
        unix=sandbox.name != "landlock",
        tcp=sandbox.name == "landlock",
        ports=egress_ports,
        resolver=resolver,
        allow_private=allow_private,
        on_decision=on_egress,
    )
    async with proxy:
        prepared = sandbox.prepare(argv, env, policy, egress=proxy.endpoint)
        try:
            yield prepared
        finally:
            prepared.cleanup()
