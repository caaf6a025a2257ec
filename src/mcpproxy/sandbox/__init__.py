"""Sandboxes for the processes the gateway starts (stdio upstream servers, code workers).

Design. A backend (``bwrap``, ``landlock``, ``docker``, ``none``) turns a command plus a
``SandboxPolicy`` into a ``PreparedCommand`` that the caller starts itself; ``auto``
picks the strongest backend available; ``default_policy_for`` derives a policy from a
server's configuration; ``sandboxed_command`` keeps the egress proxy alive around a start.
Names are exported lazily so that importing a submodule (the launcher runs with ``-m``)
does not pull in anyio or the backends.

Typical use by a caller that starts processes::

    selection = select_sandbox(settings_name)
    policy = default_policy_for(command, args, env, cwd, data_dir, name=server_name)
    async with sandboxed_command(selection.sandbox, [command, *args], os.environ, policy) as prepared:
        process = await anyio.open_process(prepared.argv, env=prepared.env, cwd=prepared.cwd,
                                           start_new_session=True)
        ...
        reason = prepared.explain_exit(process.returncode, stderr_tail)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpproxy.sandbox.auto import Selection, make_sandbox, select_sandbox
    from mcpproxy.sandbox.base import (
        Availability,
        EgressEndpoint,
        PreparedCommand,
        Sandbox,
        SandboxPolicy,
        SandboxPolicyError,
        SandboxUnavailable,
        explain_exit,
    )
    from mcpproxy.sandbox.defaults import default_policy_for
    from mcpproxy.sandbox.egress import EgressProxy
    from mcpproxy.sandbox.session import sandboxed_command

_EXPORTS = {
    "Availability": "base",
    "EgressEndpoint": "base",
    "PreparedCommand": "base",
    "Sandbox": "base",
    "SandboxPolicy": "base",
    "SandboxPolicyError": "base",
    "SandboxUnavailable": "base",
    "explain_exit": "base",
    "Selection": "auto",
    "make_sandbox": "auto",
    "select_sandbox": "auto",
    "default_policy_for": "defaults",
    "EgressProxy": "egress",
    "sandboxed_command": "session",
}

__all__ = [
    "Availability",
    "EgressEndpoint",
    "EgressProxy",
    "PreparedCommand",
    "Sandbox",
    "SandboxPolicy",
    "SandboxPolicyError",
    "SandboxUnavailable",
    "Selection",
    "default_policy_for",
    "explain_exit",
    "make_sandbox",
    "sandboxed_command",
    "select_sandbox",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mcpproxy.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mcpproxy.sandbox.{module}"), name)
