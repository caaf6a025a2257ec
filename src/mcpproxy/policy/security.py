"""Quarantine and tool pinning: what the model may see and call, decided by humans.

Design. Two layers of decisions, both durable (SQLite) and both enforced in two places of
the gateway: a *visibility* predicate (search, listings) and a *check* before dispatch (a
call to a held tool gets a structured explanation, never a silent failure).

* **Servers.** A server is ``approved`` or ``quarantined``. A new server (from the model,
  the CLI, the API or a file edit) starts quarantined unless its trust says otherwise:
  ``auto`` approves it, ``scan`` approves it when the scanner finds nothing above
  ``scan_warn_above`` in its first tool list, ``manual`` waits for a human
  (``mcpproxy upstream approve``). A quarantined server is still connected, so that a
  human (and, read-only, the model through ``quarantine_security``) can inspect its tools.
* **Tools.** Every tool is pinned by a hash of its name, description, input and output
  schema and annotations. First sight: ``pending``, or ``approved`` for a trusted server
  (``auto``, or ``scan`` when the scan is clean). Any later change of the hash: ``changed``
  (hidden and uncallable) until a human approves the new definition; the approved
  definition is kept, so ``mcpproxy tools diff`` can show what changed. ``blocked`` is a
  human's no. The scanner runs on every new or changed definition; a tool whose risk is
  above ``scan_quarantine_above`` is held as pending whatever the server's trust.

Nothing here can be decided by the model: approvals come only from the CLI and the REST API.

The decisions taken here without a human (a server quarantined or approved by its trust, a new
or changed tool held, a scanner finding) are returned as ``Decision`` values by the methods the
gateway calls on its own (``on_server_added``, ``on_tools``), so that it records each in the
activity log and the metrics; a human's decisions are recorded by the gateway's methods that
carry them out.
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from mcpproxy.errors import NotFound, Quarantined
from mcpproxy.policy.scanner import Catalog, ScanPolicy, ToolReport, scan_tools
from mcpproxy.routing.catalog import ToolEntry
from mcpproxy.settings import Settings, Trust
from mcpproxy.store.security import SecurityStore, ServerApproval, ToolPin
from mcpproxy.store.tools import canonical_json, tool_hash

logger = logging.getLogger(__name__)

APPROVED = "approved"
QUARANTINED = "quarantined"
PENDING = "pending"
CHANGED = "changed"
BLOCKED = "blocked"
SCAN_PENDING = "trust:scan (pending)"

DIFF_FIELDS = ("name", "description", "inputSchema", "outputSchema", "annotations")


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision the policy took on its own, for the activity log and the metrics.

    Attributes:
        check: ``quarantine`` (a server), ``pin`` (a tool's definition) or ``scanner`` (a finding).
        action: ``quarantine`` or ``approve`` (a server); ``pending``, ``changed`` or ``blocked`` (a
            tool held); ``warn`` or ``hold`` (a finding above ``scan_warn_above`` or
            ``scan_quarantine_above``).
        server: The server.
        tool: The tool (pin and scanner decisions).
        detail: The reason, the risk and the rules that fired, who decided.
    """

    check: str
    action: str
    server: str
    tool: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _server_decision(approval: ServerApproval) -> Decision:
    action = "approve" if approval.status == APPROVED else "quarantine"
    detail = {"reason": approval.reason, "by": approval.updated_by}
    return Decision("quarantine", action, approval.server, detail=detail)


class SecurityPolicy:
    """The live quarantine and pinning state of one gateway.

    Args:
        store: Where decisions are kept.
        settings: Thresholds and default trust (replaced on reload through ``settings``).
    """

    def __init__(self, store: SecurityStore, settings: Settings) -> None:
        self._store = store
        self.settings = settings
        self._approvals: dict[str, ServerApproval] = {}
        self._pins: dict[tuple[str, str], ToolPin] = {}
        self._lock = anyio.Lock()
        self._hashes: dict[tuple[str, str], tuple[object, str]] = {}

    async def load(self) -> None:
        self._approvals = await self._store.approvals()
        self._pins = {(p.server, p.name): p for p in await self._store.pins()}

    # -- what the gateway asks ----------------------------------------------------------------

    def server_status(self, server: str) -> str:
        approval = self._approvals.get(server)
        return approval.status if approval is not None else QUARANTINED

    def server_reason(self, server: str) -> str | None:
        approval = self._approvals.get(server)
        return approval.reason if approval is not None else "not yet reviewed"

    def pin(self, server: str, tool: str) -> ToolPin | None:
        return self._pins.get((server, tool))

    def visible(self, entry: ToolEntry) -> bool:
        """Only tools of approved servers whose current definition is approved."""
        if self.server_status(entry.server) != APPROVED:
            return False
        pin = self._pins.get((entry.server, entry.name))
        return pin is not None and pin.status == APPROVED and pin.current_hash == self._hash(entry)

    def _hash(self, entry: ToolEntry) -> str:
        # Catalog entries are immutable and replaced on every listing: hash each one once.
        key = (entry.server, entry.name)
        cached = self._hashes.get(key)
        if cached is not None and cached[0] is entry.tool:
            return cached[1]
        digest = tool_hash(entry.tool.model_dump(by_alias=True, mode="json", exclude_none=True))
        self._hashes[key] = (entry.tool, digest)
        return digest

    def check(self, entry: ToolEntry, args: Mapping[str, Any], ctx: object) -> None:
        """Raise ``Quarantined`` with an explanation unless the call may proceed."""
        if self.visible(entry):
            return
        server_status = self.server_status(entry.server)
        if server_status != APPROVED:
            raise Quarantined(
                f"server '{entry.server}' is quarantined: its tools cannot be called until a human approves it",
                hint=f"a human can review it (`mcpproxy upstream inspect {entry.server}`) and approve it with "
                f"`mcpproxy upstream approve {entry.server}`",
                data={"server": entry.server, "tool": entry.key, "status": server_status,
                      "reason": self.server_reason(entry.server)},
            )
        pin = self._pins.get((entry.server, entry.name))
        status = pin.status if pin is not None else PENDING
        if pin is not None and status == APPROVED:
            status = CHANGED  # the definition moved since the pin was taken
        why = {
            PENDING: "is new and waits for a human's approval",
            CHANGED: "changed since it was approved (a possible rug pull) and waits for a human's review",
            BLOCKED: "was blocked by a human",
        }.get(status, "is not approved")
        raise Quarantined(
            f"tool '{entry.key}' {why}",
            hint=f"`mcpproxy tools diff {entry.key}` shows the change; `mcpproxy tools approve {entry.key}` releases it"
            if status == CHANGED else f"`mcpproxy tools approve {entry.key}` releases it",
            data={"server": entry.server, "tool": entry.key, "status": status,
                  "reason": pin.reason if pin is not None else None},
        )

    # -- listings ------------------------------------------------------------------------------

    def quarantined_servers(self, servers: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {"server": s, "status": self.server_status(s), "reason": self.server_reason(s)}
            for s in sorted(servers)
            if self.server_status(s) != APPROVED
        ]

    def held_tools(self, server: str | None = None) -> list[ToolPin]:
        return [
            p for (s, _), p in sorted(self._pins.items())
            if p.status != APPROVED and (server is None or s == server)
        ]

    def pins_of(self, server: str) -> list[ToolPin]:
        return [p for (s, _), p in sorted(self._pins.items()) if s == server]

    # -- events from the gateway ---------------------------------------------------------------

    async def on_tools(
        self,
        server: str,
        trust: Trust,
        tools: Sequence[Mapping[str, Any]],
        others: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> list[Decision]:
        """Pin, scan and decide after a listing of ``server``; returns what was decided (``Decision``)."""
        async with self._lock:
            now = time.time()
            first_list = not any(s == server for (s, _) in self._pins)
            fresh = [t for t in tools if self._is_new_or_changed(server, t)]
            reports = await self._scan(server, fresh, others) if fresh else []
            by_name = {r.name: r for r in reports}
            changed_pins: list[ToolPin] = []
            for tool in fresh:
                name = str(tool.get("name", ""))
                report = by_name.get(name)
                changed_pins.append(self._decide(server, trust, tool, report, first_list, now))
            await self._store.save_pins(changed_pins)
            for pin in changed_pins:
                self._pins[(pin.server, pin.name)] = pin
            decisions = [d for r in reports if (d := self._scan_decision(server, r)) is not None]
            decisions += [
                Decision("pin", pin.status, server, pin.name, {"reason": pin.reason, "risk": pin.risk})
                for pin in changed_pins
                if pin.status != APPROVED
            ]
            approval = self._approvals.get(server)
            if approval is None or (first_list and trust == "scan" and approval.updated_by == SCAN_PENDING):
                decisions.append(_server_decision(await self._first_decision(server, trust, reports, now)))
            return decisions

    def _scan_decision(self, server: str, report: ToolReport) -> Decision | None:
        if report.risk <= self.settings.scan_warn_above:
            return None
        action = "hold" if report.risk > self.settings.scan_quarantine_above else "warn"
        return Decision("scanner", action, server, report.name, {"risk": report.risk, "rules": sorted(report.rules)})

    def _is_new_or_changed(self, server: str, tool: Mapping[str, Any]) -> bool:
        pin = self._pins.get((server, str(tool.get("name", ""))))
        return pin is None or pin.current_hash != tool_hash(tool)

    async def _scan(
        self, server: str, tools: Sequence[Mapping[str, Any]], others: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> list[ToolReport]:
        policy = ScanPolicy(warn_above=self.settings.scan_warn_above,
                            quarantine_above=max(self.settings.scan_quarantine_above, self.settings.scan_warn_above))
        catalog = Catalog.from_tools({name: list(ts) for name, ts in others.items() if name != server})
        return await anyio.to_thread.run_sync(
            lambda: scan_tools(list(tools), server=server, others=catalog, policy=policy)
        )

    def _decide(
        self, server: str, trust: Trust, tool: Mapping[str, Any], report: ToolReport | None, first_list: bool,
        now: float,
    ) -> ToolPin:
        name = str(tool.get("name", ""))
        digest = tool_hash(tool)
        definition = canonical_json({k: tool[k] for k in DIFF_FIELDS if tool.get(k) is not None})
        old = self._pins.get((server, name))
        risk = report.risk if report is not None else 0
        verdict = report.verdict.value if report is not None else "allow"
        findings = [f.to_dict() for f in report.findings] if report is not None else []
        risky = risk > self.settings.scan_quarantine_above
        clean = risk <= self.settings.scan_warn_above
        if old is None:
            trusted = trust == "auto" or (trust == "scan" and clean and first_list)
            status = APPROVED if trusted and not risky else PENDING
            reason = None if status == APPROVED else (
                f"scanner risk {risk} ({', '.join(sorted({f['rule'] for f in findings}))})" if risky else "new tool"
            )
            return ToolPin(
                server=server, name=name, status=status, reason=reason,
                approved_hash=digest if status == APPROVED else None,
                approved_json=definition if status == APPROVED else None,
                current_hash=digest, current_json=definition, risk=risk, verdict=verdict, findings=findings,
                first_seen=now, decided_at=now if status == APPROVED else None,
                decided_by=f"trust:{trust}" if status == APPROVED else None,
            )
        if old.approved_hash == digest and old.status == CHANGED:
            # Changed back to what a human approved: approved again.
            status, reason = APPROVED, None
        elif old.status == BLOCKED:
            status, reason = BLOCKED, old.reason
        elif old.approved_hash is None:
            status, reason = PENDING, old.reason or "new tool"
        else:
            status, reason = CHANGED, "definition changed since it was approved"
        logger.warning("tool %s:%s changed its definition; now %s", server, name, status)
        return ToolPin(
            server=server, name=name, status=status, reason=reason, approved_hash=old.approved_hash,
            approved_json=old.approved_json, current_hash=digest, current_json=definition, risk=risk,
            verdict=verdict, findings=findings, first_seen=old.first_seen, changed_at=now,
            decided_at=old.decided_at, decided_by=old.decided_by,
        )

    async def _first_decision(
        self, server: str, trust: Trust, reports: Sequence[ToolReport], now: float
    ) -> ServerApproval:
        if trust == "auto":
            approval = ServerApproval(server, APPROVED, None, now, "trust:auto")
        elif trust == "scan":
            worst = max((r for r in reports), key=lambda r: r.risk, default=None)
            if worst is None or worst.risk <= self.settings.scan_warn_above:
                approval = ServerApproval(server, APPROVED, None, now, "trust:scan")
            else:
                approval = ServerApproval(
                    server, QUARANTINED, f"scanner: tool '{worst.name}' risk {worst.risk}", now, "trust:scan"
                )
        else:
            approval = ServerApproval(server, QUARANTINED, "new server: waiting for a human's approval", now, None)
        await self._store.set_approval(approval)
        self._approvals[server] = approval
        logger.info("server %s is %s (%s)", server, approval.status, approval.reason or approval.updated_by)
        return approval

    async def on_server_added(self, server: str, trust: Trust) -> Decision | None:
        """Decide for a new server before it connects (auto is approved at once); ``None`` when known."""
        async with self._lock:
            if server in self._approvals:
                return None
            now = time.time()
            if trust == "auto":
                approval = ServerApproval(server, APPROVED, None, now, "trust:auto")
            else:
                reason = "new server: waiting for the scanner" if trust == "scan" else (
                    "new server: waiting for a human's approval")
                approval = ServerApproval(server, QUARANTINED, reason, now, SCAN_PENDING if trust == "scan" else None)
            await self._store.set_approval(approval)
            self._approvals[server] = approval
            return _server_decision(approval)

    async def on_server_removed(self, server: str) -> None:
        async with self._lock:
            await self._store.forget_server(server)
            self._approvals.pop(server, None)
            for key in [k for k in self._pins if k[0] == server]:
                del self._pins[key]

    # -- human decisions -----------------------------------------------------------------------

    async def approve_server(self, server: str, *, by: str) -> list[str]:
        """Approve a server and its tools pending review; returns the tools released."""
        async with self._lock:
            now = time.time()
            approval = ServerApproval(server, APPROVED, None, now, by)
            await self._store.set_approval(approval)
            self._approvals[server] = approval
            released = [p for p in self.pins_of(server) if p.status == PENDING]
            for pin in released:
                self._approve_pin(pin, now, by)
            await self._store.save_pins(released)
            return [p.key for p in released]

    async def quarantine_server(self, server: str, *, by: str, reason: str = "quarantined by a human") -> None:
        async with self._lock:
            approval = ServerApproval(server, QUARANTINED, reason, time.time(), by)
            await self._store.set_approval(approval)
            self._approvals[server] = approval

    async def decide_tool(self, server: str, tool: str, decision: str, *, by: str) -> ToolPin:
        """``approve`` or ``block`` the current definition of a tool."""
        async with self._lock:
            pin = self._pins.get((server, tool))
            if pin is None:
                raise NotFound(
                    f"no tool '{server}:{tool}' has been seen", hint="`mcpproxy security list` shows held tools"
                )
            now = time.time()
            if decision == "approve":
                self._approve_pin(pin, now, by)
            else:
                pin.status, pin.reason, pin.decided_at, pin.decided_by = BLOCKED, f"blocked by {by}", now, by
            await self._store.save_pins([pin])
            return pin

    @staticmethod
    def _approve_pin(pin: ToolPin, now: float, by: str) -> None:
        pin.status, pin.reason = APPROVED, None
        pin.approved_hash, pin.approved_json = pin.current_hash, pin.current_json
        pin.decided_at, pin.decided_by = now, by

    def diff(self, server: str, tool: str) -> dict[str, Any]:
        """Field-by-field difference between the approved and the current definition."""
        pin = self._pins.get((server, tool))
        if pin is None:
            raise NotFound(f"no tool '{server}:{tool}' has been seen")
        before = json.loads(pin.approved_json) if pin.approved_json else {}
        after = json.loads(pin.current_json)
        fields: list[dict[str, Any]] = []
        for key in DIFF_FIELDS:
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            item: dict[str, Any] = {"field": key, "before": old, "after": new}
            if key == "description" and isinstance(old, str | None) and isinstance(new, str | None):
                item["text_diff"] = "".join(difflib.unified_diff(
                    (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                    fromfile="approved", tofile="current",
                ))
            fields.append(item)
        return {"tool": pin.key, "status": pin.status, "approved": pin.approved_json is not None,
                "changes": fields, "risk": pin.risk, "findings": pin.findings}

