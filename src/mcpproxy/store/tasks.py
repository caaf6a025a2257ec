"""SQL for task handles: the handle a client holds, mapped to the upstream task it stands for.

A handle is written before the client is told about it, so a restart never loses one the
client already has; expired handles are swept on every new task. Every method is one
transaction on the store's single writer, or one read off the event loop.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mcpproxy.store.db import Store


@dataclass(slots=True)
class TaskHandle:
    """One task a client started through mcpproxy.

    Attributes:
        handle: The id the client holds (random, unguessable; never the upstream's id).
        owner: Who may use it: an agent token id, or ``""`` for the API key or no auth.
        server: The upstream that runs the task.
        tool: The upstream tool's own name.
        upstream_id: The upstream's own task id.
        via: The endpoint the task was started through (``mcp-direct``, ``mcp-server``).
        status: The last status seen upstream.
        created_at: ``time.time()`` when it was created.
        updated_at: When its status was last seen.
        expires_at: When the handle (and, by its ttl, the upstream task) is forgotten.
    """

    handle: str
    owner: str
    server: str
    tool: str
    upstream_id: str
    via: str
    status: str
    created_at: float
    updated_at: float
    expires_at: float


_COLUMNS = "handle, owner, server, tool, upstream_id, via, status, created_at, updated_at, expires_at"


def _row(row: tuple[str, str, str, str, str, str, str, float, float, float]) -> TaskHandle:
    return TaskHandle(*row)


class TaskStore:
    """Task handles in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, task: TaskHandle, *, now: float) -> None:
        """Keep ``task`` (and forget handles that expired before ``now``)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM task_handles WHERE expires_at < ?", (now,))
            conn.execute(
                f"INSERT INTO task_handles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - fixed columns
                (
                    task.handle,
                    task.owner,
                    task.server,
                    task.tool,
                    task.upstream_id,
                    task.via,
                    task.status,
                    task.created_at,
                    task.updated_at,
                    task.expires_at,
                ),
            )

        await self._store.execute_write(write)

    async def get(self, handle: str, owner: str, *, now: float) -> TaskHandle | None:
        """The live task ``handle`` of ``owner`` (``None``: unknown, expired or someone else's)."""

        def read(conn: sqlite3.Connection) -> TaskHandle | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM task_handles WHERE handle = ? AND owner = ? AND expires_at >= ?",  # noqa: S608
                (handle, owner, now),
            ).fetchone()
            return _row(row) if row is not None else None

        return await self._store.read(read)

    async def of_owner(self, owner: str, *, now: float, limit: int = 10_000) -> list[TaskHandle]:
        """The live tasks of ``owner``, oldest first."""

        def read(conn: sqlite3.Connection) -> list[TaskHandle]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM task_handles WHERE owner = ? AND expires_at >= ? "  # noqa: S608
                "ORDER BY created_at, handle LIMIT ?",
                (owner, now, limit),
            ).fetchall()
            return [_row(row) for row in rows]

        return await self._store.read(read)

    async def set_status(self, handle: str, status: str, *, now: float) -> None:
        """Remember the status last seen upstream."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE task_handles SET status = ?, updated_at = ? WHERE handle = ? AND status != ?",
                (status, now, handle, status),
            )

        await self._store.execute_write(write)
