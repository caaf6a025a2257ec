"""Choosing a sandbox backend: by name, or the strongest one that works here.

Design. ``auto`` tries ``bwrap`` (namespaces: the process sees only what is bound in), then
``landlock`` (access control on the host's view), then ``docker`` (a container per start;
slower, and needs an engine), and only then ``none``. Falling back to ``none`` is never
silent: ``select_sandbox`` returns the reasons every stronger backend was passed over, and
``require_isolation=True`` turns that fallback into a ``SandboxUnavailable`` error. A
backend named explicitly is returned only if it is available; a typo is a config error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mcpproxy.sandbox.base import Availability, Sandbox, SandboxPolicyError, SandboxUnavailable
from mcpproxy.sandbox.bwrap import BubblewrapSandbox
from mcpproxy.sandbox.docker import DockerSandbox
from mcpproxy.sandbox.landlock import LandlockSandbox
from mcpproxy.sandbox.none import NoSandbox

SandboxName = Literal["auto", "bwrap", "landlock", "docker", "none"]
SANDBOX_NAMES: tuple[SandboxName, ...] = ("auto", "bwrap", "landlock", "docker", "none")
STRENGTH_ORDER: tuple[str, ...] = ("bwrap", "landlock", "docker", "none")

_FACTORIES: dict[str, Callable[[], Sandbox]] = {
    "bwrap": BubblewrapSandbox,
    "landlock": LandlockSandbox,
    "docker": DockerSandbox,
    "none": NoSandbox,
}


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen backend and why the stronger ones were skipped (``name -> reason``)."""

    sandbox: Sandbox
    availability: Availability
    skipped: dict[str, str]


def make_sandbox(name: str) -> Sandbox:
    """The backend called ``name`` (not checked for availability).

    Raises:
        SandboxPolicyError: ``name`` is not a backend.
    """
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise SandboxPolicyError(
            f"unknown sandbox {name!r}", key="sandbox", hint=f"use one of: {', '.join(SANDBOX_NAMES)}"
        ) from None


def select_sandbox(name: str = "auto", *, require_isolation: bool = False) -> Selection:
    """Pick a backend: ``name`` itself, or for ``auto`` the strongest available.

    Args:
        name: ``auto``, ``bwrap``, ``landlock``, ``docker`` or ``none``.
        require_isolation: Refuse to settle on ``none``.

    Raises:
        SandboxPolicyError: Unknown name.
        SandboxUnavailable: The named backend (or, with ``require_isolation``, every isolating
            backend) is unavailable.
    """
    if name != "auto":
        sandbox = make_sandbox(name)
        state = sandbox.available()
        if not state.ok:
            raise SandboxUnavailable(f"sandbox {name!r} is unavailable: {state.reason}")
        if require_isolation and name == "none":
            raise SandboxUnavailable("sandbox 'none' does not isolate, but isolation is required")
        return Selection(sandbox, state, {})
    skipped: dict[str, str] = {}
    for candidate in STRENGTH_ORDER:
        if candidate == "none" and require_isolation:
            break
        sandbox = make_sandbox(candidate)
        state = sandbox.available()
        if state.ok:
            return Selection(sandbox, state, skipped)
        skipped[candidate] = state.reason
    reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    raise SandboxUnavailable(
        f"no isolating sandbox is available ({reasons})", hint="run scripts/install-sandbox-deps.sh"
    )


def backend_report() -> dict[str, Availability]:
    """Every backend's availability on this machine, strongest first (for ``mcpproxy doctor``).

    Blocking: it probes bubblewrap and the docker engine (each bounded by a few seconds).
    """
    return {name: make_sandbox(name).available() for name in STRENGTH_ORDER}

