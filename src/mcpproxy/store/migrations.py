"""The database schema, as numbered migrations.

``MIGRATIONS[i]`` upgrades a database from ``PRAGMA user_version`` ``i`` to ``i + 1``, and
:func:`migrate` applies the missing ones. Migrations are append-only: a released one is
never edited, a change is a new entry. Each runs in one transaction together with the
``user_version`` bump, so a crash mid-migration leaves the previous version intact and the
next start simply runs it again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mcpproxy.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: the last known tools of each server, server health, and per-tool call counters.
    """
    CREATE TABLE tool_snapshots (
        server     TEXT NOT NULL,
        name       TEXT NOT NULL,
        position   INTEGER NOT NULL,   -- index in the server's tools/list, to keep its order
        tool_json  TEXT NOT NULL,
        hash       TEXT NOT NULL,
        first_seen REAL NOT NULL,
        last_seen  REAL NOT NULL,
        PRIMARY KEY (server, name)
    ) WITHOUT ROWID;

    CREATE TABLE server_state (
        server     TEXT PRIMARY KEY,
        last_state TEXT NOT NULL,
        last_error TEXT,
        last_ready REAL,
        tool_count INTEGER
    );

    CREATE TABLE tool_stats (
        server      TEXT NOT NULL,
        name        TEXT NOT NULL,
        calls       INTEGER NOT NULL DEFAULT 0,
        errors      INTEGER NOT NULL DEFAULT 0,
        total_ms    REAL NOT NULL DEFAULT 0,
        last_called REAL,
        PRIMARY KEY (server, name)
    ) WITHOUT ROWID;
    """,
)
"""SQL scripts; entry ``i`` takes the schema from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The ``user_version`` of a fully migrated database."""


def user_version(conn: sqlite3.Connection) -> int:
    """The database's ``PRAGMA user_version``."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def split_statements(script: str) -> list[str]:
    """Split an SQL script into statements; semicolons in strings and triggers stay put."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    return statements


def migrate(conn: sqlite3.Connection, path: Path, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Bring the database up to ``len(migrations)``, one transaction per migration.

    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Returns:
        The schema version before migrating.

    Raises:
        StoreError: The database is newer than ``migrations``.
        sqlite3.Error: A migration failed; it was rolled back.
    """
    before = user_version(conn)
    if before > len(migrations):
        raise StoreError(
            f"database {path} has schema version {before}, newer than this mcpproxy knows ({len(migrations)})",
            hint="upgrade mcpproxy, or use another data directory",
        )
    for index in range(before, len(migrations)):
        # IMMEDIATE takes the write lock first, so two processes cannot both apply it;
        # the version is re-read under the lock for the one that waited.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if user_version(conn) <= index:
                for statement in split_statements(migrations[index]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return before
