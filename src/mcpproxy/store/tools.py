"""Tool snapshots, server states and call statistics.

A snapshot is the last ``tools/list`` of each server, kept so the gateway can rebuild its
search index at start before any server has reconnected, and so a tool's definition can be
compared with what was seen before (pinning). Each tool is stored with :func:`tool_hash`, a
digest of the parts of its definition a model acts on. :class:`ToolStore` holds the SQL for
these three tables; every method is one transaction on the :class:`~mcpproxy.store.db.Store`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcpproxy.errors import StoreError
from mcpproxy.store.db import Store

HASHED_FIELDS = ("name", "description", "inputSchema", "outputSchema", "annotations")
"""The tool fields :func:`tool_hash` covers (wire names)."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tool_hash(tool: Mapping[str, Any]) -> str:
    """SHA-256 over a tool's ``HASHED_FIELDS``; an absent field and ``null`` are the same.

    Titles, icons and ``_meta`` are left out: they do not change what a call does.
    """
    subset = {key: tool[key] for key in HASHED_FIELDS if tool.get(key) is not None}
    return hashlib.sha256(canonical_json(subset).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ToolStats:
    """Call counters of one tool.

    Attributes:
        server: Server name.
        name: Tool name.
        calls: Calls made.
        errors: Calls that failed.
        total_ms: Sum of call durations in milliseconds.
        last_called: Epoch seconds of the last call.
    """

    server: str
    name: str
    calls: int
    errors: int
    total_ms: float
    last_called: float | None

    @property
    def mean_ms(self) -> float:
        """Mean call duration in milliseconds (0 before the first call)."""
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class ServerState:
    """What was last known of a server's connection.

    Attributes:
        server: Server name.
        last_state: Its last state (the upstream layer's state name).
        last_error: Text of its last failure, if any.
        last_ready: Epoch seconds when it was last ready.
        tool_count: Tools it offered when last ready.
    """

    server: str
    last_state: str
    last_error: str | None
    last_ready: float | None
    tool_count: int | None


class ToolStore:
    """Snapshots, states and statistics on top of a :class:`Store`.

    Args:
        store: An open store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save_tools(self, server: str, tools: Sequence[Mapping[str, Any]], *, now: float | None = None) -> None:
        """Replace ``server``'s snapshot with ``tools`` (its ``tools/list`` result, wire names).

        Tools seen before keep their ``first_seen``; tools no longer listed are dropped.

        Raises:
            StoreError: A tool has no name, or SQLite failed.
        """
        at = time.time() if now is None else now
        rows = []
        for position, tool in enumerate(tools):
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise StoreError(f"server {server!r} listed a tool without a name (index {position})")
            rows.append((server, name, position, canonical_json(dict(tool)), tool_hash(tool), at, at))
        names = [row[1] for row in rows]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM tool_snapshots WHERE server = ? AND name NOT IN (SELECT value FROM json_each(?))",
                (server, json.dumps(names)),
            )
            conn.executemany(
                "INSERT INTO tool_snapshots (server, name, position, tool_json, hash, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (server, name) DO UPDATE SET position = excluded.position,"
                " tool_json = excluded.tool_json, hash = excluded.hash, last_seen = excluded.last_seen",
                rows,
            )

        await self._store.execute_write(write)

    async def load_tools(self) -> dict[str, list[dict[str, Any]]]:
        """Every server's snapshot, tools in the order the server listed them."""

        def read(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            for server, tool_json in conn.execute(
                "SELECT server, tool_json FROM tool_snapshots ORDER BY server, position"
            ):
                out.setdefault(server, []).append(json.loads(tool_json))
            return out

        return await self._store.read(read)

    async def tool_hashes(self, server: str) -> dict[str, str]:
        """``tool name -> tool_hash`` of ``server``'s snapshot."""
        return await self._store.read(
            lambda conn: dict(conn.execute("SELECT name, hash FROM tool_snapshots WHERE server = ?", (server,)))
        )

    async def delete_server(self, server: str) -> None:
        """Forget everything about ``server``: snapshot, state and statistics."""

        def write(conn: sqlite3.Connection) -> None:
            for table in ("tool_snapshots", "server_state", "tool_stats"):
                conn.execute(f"DELETE FROM {table} WHERE server = ?", (server,))  # noqa: S608

        await self._store.execute_write(write)

    async def record_call(
        self, server: str, tool: str, ok: bool, duration_ms: float, *, now: float | None = None
    ) -> None:
        """Count one call of ``server:tool`` and its duration."""
        at = time.time() if now is None else now
        await self._store.execute_write(
            lambda conn: conn.execute(
                "INSERT INTO tool_stats (server, name, calls, errors, total_ms, last_called)"
                " VALUES (?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (server, name) DO UPDATE SET calls = calls + 1,"
                " errors = errors + excluded.errors, total_ms = total_ms + excluded.total_ms,"
                " last_called = excluded.last_called",
                (server, tool, 0 if ok else 1, float(duration_ms), at),
            )
        )

    async def record_calls(self, counts: Mapping[tuple[str, str], tuple[int, int, float]]) -> None:
        """Count many calls in one transaction: ``{(server, tool): (calls, errors, total_ms)}``."""
        at = time.time()
        rows = [(server, tool, calls, errors, float(ms), at) for (server, tool), (calls, errors, ms) in counts.items()]
        await self._store.execute_write(
            lambda conn: conn.executemany(
                "INSERT INTO tool_stats (server, name, calls, errors, total_ms, last_called)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (server, name) DO UPDATE SET calls = calls + excluded.calls,"
                " errors = errors + excluded.errors, total_ms = total_ms + excluded.total_ms,"
                " last_called = excluded.last_called",
                rows,
            )
        )

    async def tool_stats(self, server: str | None = None) -> list[ToolStats]:
        """Counters of every tool (of ``server`` only, if given), by server and name."""
        query = "SELECT server, name, calls, errors, total_ms, last_called FROM tool_stats"
        params: tuple[str, ...] = ()
        if server is not None:
            query += " WHERE server = ?"
            params = (server,)
        rows = await self._store.read(lambda conn: conn.execute(query + " ORDER BY server, name", params).fetchall())
        return [ToolStats(*row) for row in rows]

    async def set_server_state(
        self,
        server: str,
        state: str,
        *,
        error: str | None = None,
        ready_at: float | None = None,
        tool_count: int | None = None,
    ) -> None:
        """Record ``server``'s current state.

        Args:
            server: Server name.
            state: The state name.
            error: The failure text; ``None`` keeps the stored one, ``""`` clears it.
            ready_at: When it became ready; ``None`` keeps the stored time.
            tool_count: Its number of tools; ``None`` keeps the stored count.
        """
        await self._store.execute_write(
            lambda conn: conn.execute(
                "INSERT INTO server_state (server, last_state, last_error, last_ready, tool_count)"
                " VALUES (?1, ?2, NULLIF(?3, ''), ?4, ?5)"
                " ON CONFLICT (server) DO UPDATE SET last_state = ?2,"
                " last_error = CASE WHEN ?3 IS NULL THEN last_error ELSE NULLIF(?3, '') END,"
                " last_ready = COALESCE(?4, last_ready), tool_count = COALESCE(?5, tool_count)",
                (server, state, error, ready_at, tool_count),
            )
        )

    async def server_states(self) -> dict[str, ServerState]:
        """The last recorded state of every server, by name."""
        rows = await self._store.read(
            lambda conn: conn.execute(
                "SELECT server, last_state, last_error, last_ready, tool_count FROM server_state ORDER BY server"
            ).fetchall()
        )
        return {row[0]: ServerState(*row) for row in rows}
