"""SQL for the security layer: server approvals, tool pins and agent tokens.

Every method is one transaction on the store's single writer (or one read off the event
loop). The policy layer (``mcpproxy.policy.security``) keeps the live state in memory and
writes each decision through here before it takes effect, so a restart sees exactly the
decisions that were announced.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcpproxy.store.db import Store


@dataclass(slots=True)
class ServerApproval:
    server: str
    status: str
    reason: str | None = None
    updated_at: float = 0.0
    updated_by: str | None = None


@dataclass(slots=True)
class ToolPin:
    """What the gateway knows of one tool's definition and the decision about it."""

    server: str
    name: str
    status: str
    current_hash: str
    current_json: str
    reason: str | None = None
    approved_hash: str | None = None
    approved_json: str | None = None
    risk: int = 0
    verdict: str = "allow"
    findings: list[dict[str, Any]] = field(default_factory=list)
    first_seen: float = 0.0
    changed_at: float | None = None
    decided_at: float | None = None
    decided_by: str | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.name,
            "name": self.key,
            "status": self.status,
            "reason": self.reason,
            "risk": self.risk,
            "verdict": self.verdict,
            "findings": self.findings,
            "first_seen": self.first_seen,
            "changed_at": self.changed_at,
            "decided_at": self.decided_at,
            "decided_by": self.decided_by,
        }


@dataclass(slots=True)
class AgentToken:
    id: str
    name: str
    token_hash: str
    tier: str
    servers: list[str] | None
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used: float | None = None

    def active(self, now: float | None = None) -> bool:
        moment = time.time() if now is None else now
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tier": self.tier,
            "servers": self.servers,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used": self.last_used,
            "active": self.active(),
        }


_SELECT_PINS = (
    "SELECT server, name, status, reason, approved_hash, approved_json, current_hash, current_json, risk, verdict,"
    " findings_json, first_seen, changed_at, decided_at, decided_by FROM tool_pins ORDER BY server, name"
)
_UPSERT_PIN = (
    "INSERT OR REPLACE INTO tool_pins (server, name, status, reason, approved_hash, approved_json, current_hash,"
    " current_json, risk, verdict, findings_json, first_seen, changed_at, decided_at, decided_by)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _pin(row: sqlite3.Row | tuple[Any, ...]) -> ToolPin:
    return ToolPin(
        server=row[0], name=row[1], status=row[2], reason=row[3], approved_hash=row[4], approved_json=row[5],
        current_hash=row[6], current_json=row[7], risk=row[8], verdict=row[9], findings=json.loads(row[10]),
        first_seen=row[11], changed_at=row[12], decided_at=row[13], decided_by=row[14],
    )


class SecurityStore:
    """Approvals, pins and tokens in the gateway's SQLite store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- approvals --------------------------------------------------------------------------

    async def approvals(self) -> dict[str, ServerApproval]:
        def read(conn: sqlite3.Connection) -> dict[str, ServerApproval]:
            rows = conn.execute("SELECT server, status, reason, updated_at, updated_by FROM server_approvals")
            return {r[0]: ServerApproval(*r) for r in rows}

        return await self._store.read(read)

    async def set_approval(self, approval: ServerApproval) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO server_approvals (server, status, reason, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (server) DO UPDATE SET status = excluded.status, reason = excluded.reason,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (approval.server, approval.status, approval.reason, approval.updated_at, approval.updated_by),
            )

        await self._store.execute_write(write)

    async def forget_server(self, server: str) -> None:
        """Drop every decision about ``server`` (it was removed; re-adding starts over)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM server_approvals WHERE server = ?", (server,))
            conn.execute("DELETE FROM tool_pins WHERE server = ?", (server,))

        await self._store.execute_write(write)

    # -- pins -------------------------------------------------------------------------------

    async def pins(self) -> list[ToolPin]:
        def read(conn: sqlite3.Connection) -> list[ToolPin]:
            return [_pin(r) for r in conn.execute(_SELECT_PINS)]

        return await self._store.read(read)

    async def save_pins(self, pins: Sequence[ToolPin]) -> None:
        rows = [
            (p.server, p.name, p.status, p.reason, p.approved_hash, p.approved_json, p.current_hash, p.current_json,
             p.risk, p.verdict, json.dumps(p.findings), p.first_seen, p.changed_at, p.decided_at, p.decided_by)
            for p in pins
        ]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT_PIN, rows)

        if rows:
            await self._store.execute_write(write)

    # -- tokens -----------------------------------------------------------------------------

    async def add_token(self, token: AgentToken) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO agent_tokens (id, name, token_hash, tier, servers, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token.id, token.name, token.token_hash, token.tier,
                 None if token.servers is None else json.dumps(token.servers), token.created_at, token.expires_at),
            )

        await self._store.execute_write(write)

    async def tokens(self) -> list[AgentToken]:
        def read(conn: sqlite3.Connection) -> list[AgentToken]:
            rows = conn.execute(
                "SELECT id, name, token_hash, tier, servers, created_at, expires_at, revoked_at, last_used"
                " FROM agent_tokens ORDER BY created_at"
            )
            return [
                AgentToken(r[0], r[1], r[2], r[3], None if r[4] is None else json.loads(r[4]), r[5], r[6], r[7], r[8])
                for r in rows
            ]

        return await self._store.read(read)

    async def revoke_token(self, token_id: str, when: float) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE agent_tokens SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                (when, token_id, token_id),
            )
            return cur.rowcount > 0

        return await self._store.execute_write(write)
