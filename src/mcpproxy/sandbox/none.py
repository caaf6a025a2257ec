"""The ``none`` backend: no sandbox at all, the command runs exactly as configured.

Design. It exists so that "no isolation" is an explicit, named choice that shows up in
listings and logs, never a silent fallback, and so tests have a control that proves each
attack works without a sandbox. The environment still goes through the policy's filter
(allowlist plus explicit variables), which is a hygiene measure, not isolation; nothing
else of the policy is enforced. ``explain_exit`` only names signals: with no sandbox, a
denial is never the sandbox's doing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcpproxy.sandbox.base import (
    Availability,
    EgressEndpoint,
    PreparedCommand,
    SandboxPolicy,
    SandboxPolicyError,
    explain_exit,
)


class NoSandbox:
    """Runs commands unconfined."""

    name = "none"

    def available(self) -> Availability:
        return Availability(True, "no isolation: the process runs with the gateway's rights")

    def prepare(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: SandboxPolicy,
        *,
        egress: EgressEndpoint | None = None,
    ) -> PreparedCommand:
        """Return ``argv`` unchanged with the policy's environment and working directory.

        Raises:
            SandboxPolicyError: ``argv`` is empty.
        """
        if not argv:
            raise SandboxPolicyError("nothing to run: the command is empty")
        return PreparedCommand(
            argv=tuple(argv), env=policy.final_env(env), cwd=policy.working_dir, backend=self.name, policy=policy
        )

    def explain_exit(self, policy: SandboxPolicy, returncode: int | None, stderr_tail: str) -> str | None:
        return explain_exit(policy, returncode, stderr_tail, backend=self.name)
