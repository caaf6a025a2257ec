"""What ``mcpproxy doctor`` says about sandboxes: each backend, ``auto``'s pick, each stdio server.

Design. Read-only and gateway-free: it probes the backends (bounded; see ``auto.py``) and reads
the settings, and it never plans a real start (that would create the servers' private
directories). A row is ``(check, status, detail, action)``; ``status`` is ``ok``, ``warn``
(works, but worth knowing: a backend missing, a server that runs unconfined) or ``error``
(something needed is broken: a server configured for a backend that cannot run here, or no
sandbox at all while ``require_isolation`` is set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mcpproxy.sandbox.auto import STRENGTH_ORDER, backend_report
from mcpproxy.sandbox.base import Availability
from mcpproxy.settings import ServerSpec, Settings

Status = Literal["ok", "warn", "error"]

INSTALL_HINTS: Mapping[str, str] = {
    "bwrap": "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces",
    "landlock": "needs Linux 5.13+ with Landlock enabled, libseccomp2 and the pyseccomp package",
    "docker": "start a docker engine (only if you want containers)",
}


@dataclass(frozen=True, slots=True)
class SandboxRow:
    """One finding about sandboxes.

    Attributes:
        check: ``sandbox:BACKEND``, ``sandbox:auto`` or ``isolation:SERVER``.
        status: ``ok``, ``warn`` or ``error``.
        detail: What was found.
        action: What to do about it (``None`` when ok).
    """

    check: str
    status: Status
    detail: str
    action: str | None = None


def sandbox_rows(settings: Settings | None, report: Mapping[str, Availability] | None = None) -> list[SandboxRow]:
    """Every backend (works here, or why not), what ``auto`` picks, and how each stdio server runs.

    Args:
        settings: The gateway's settings, or ``None`` when the config file is broken.
        report: Backend availability (default: probe this machine now; blocking, a few seconds at most).
    """
    report = backend_report() if report is None else report
    rows: list[SandboxRow] = []
    for name in STRENGTH_ORDER:
        if name == "none":
            continue
        state = report[name]
        if state.ok:
            rows.append(SandboxRow(f"sandbox:{name}", "ok", state.reason))
        else:
            rows.append(SandboxRow(f"sandbox:{name}", "warn", f"unavailable: {state.reason}", INSTALL_HINTS[name]))
    auto = next((name for name in STRENGTH_ORDER if report[name].ok), "none")
    require = settings is not None and settings.require_isolation
    if auto == "none":
        detail = "no sandbox works here: stdio servers run unconfined"
        rows.append(SandboxRow("sandbox:auto", "error" if require else "warn", detail, INSTALL_HINTS["bwrap"]))
    else:
        rows.append(SandboxRow("sandbox:auto", "ok", f"picks {auto}"))
    if settings is not None:
        for spec in sorted(settings.servers.values(), key=lambda s: s.name):
            if spec.transport == "stdio" and spec.enabled:
                rows.append(_server_row(spec, settings, report, auto))
    return rows


def _server_row(spec: ServerSpec, settings: Settings, report: Mapping[str, Availability], auto: str) -> SandboxRow:
    check = f"isolation:{spec.name}"
    mode = settings.isolation_for(spec)
    if mode == "none":
        why = "opted out (isolation: none)" if spec.isolation.mode == "none" else "the global isolation is none"
        return SandboxRow(check, "warn", f"runs unconfined: {why}", "remove the opt-out if the server does not need it")
    if mode == "auto":
        if auto == "none":
            status: Status = "error" if settings.require_isolation else "warn"
            return SandboxRow(check, status, "runs unconfined: no sandbox works here", INSTALL_HINTS["bwrap"])
        return SandboxRow(check, "ok", f"runs under {auto} (auto){_network(spec)}")
    state = report.get(mode)
    if state is None or not state.ok:
        reason = state.reason if state is not None else "unknown backend"
        return SandboxRow(check, "error", f"configured for {mode}, which cannot run here: {reason}",
                          INSTALL_HINTS.get(mode, "choose another isolation mode"))  # fmt: skip
    return SandboxRow(check, "ok", f"runs under {mode}{_network(spec)}")


def _network(spec: ServerSpec) -> str:
    iso = spec.isolation
    if iso.network is not None:
        return f", network {iso.network}"
    return ", network allow" if iso.allow_domains else ""
