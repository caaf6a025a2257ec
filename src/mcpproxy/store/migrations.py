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
    # security: server approvals (quarantine), tool pins (rug-pull protection) with scanner
    # verdicts, and agent tokens (stored hashed).
    """
    CREATE TABLE server_approvals (
        server     TEXT PRIMARY KEY,
        status     TEXT NOT NULL,      -- quarantined | approved
        reason     TEXT,
        updated_at REAL NOT NULL,
        updated_by TEXT
    );

    CREATE TABLE tool_pins (
        server        TEXT NOT NULL,
        name          TEXT NOT NULL,
        status        TEXT NOT NULL,   -- pending | approved | changed | blocked
        reason        TEXT,
        approved_hash TEXT,
        approved_json TEXT,
        current_hash  TEXT NOT NULL,
        current_json  TEXT NOT NULL,
        risk          INTEGER NOT NULL DEFAULT 0,
        verdict       TEXT NOT NULL DEFAULT 'allow',
        findings_json TEXT NOT NULL DEFAULT '[]',
        first_seen    REAL NOT NULL,
        changed_at    REAL,
        decided_at    REAL,
        decided_by    TEXT,
        PRIMARY KEY (server, name)
    ) WITHOUT ROWID;

    CREATE TABLE agent_tokens (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        token_hash  TEXT NOT NULL UNIQUE,
        tier        TEXT NOT NULL,     -- read | write | destructive
        servers     TEXT,              -- JSON array, NULL = every server
        created_at  REAL NOT NULL,
        expires_at  REAL,
        revoked_at  REAL,
        last_used   REAL
    );
    """,
    # activity log: one row per tool call, policy decision and server state change
    # (mcpproxy.store.activity), indexed for the filters of `mcpproxy activity`.
    """
    CREATE TABLE activity (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        ts           REAL NOT NULL,
        kind         TEXT NOT NULL,
        via          TEXT,
        request_id   TEXT,
        client       TEXT,
        token        TEXT,
        parent_id    TEXT,
        server       TEXT,
        tool         TEXT,
        tier         TEXT,
        arguments    TEXT,
        args_size    INTEGER,
        status       TEXT NOT NULL,
        error_kind   TEXT,
        error        TEXT,
        duration_ms  REAL,
        upstream_ms  REAL,
        result_size  INTEGER,
        detail       TEXT
    );
    CREATE INDEX activity_ts ON activity (ts);
    CREATE INDEX activity_server_ts ON activity (server, ts);
    CREATE INDEX activity_status_ts ON activity (status, ts);
    CREATE INDEX activity_client_ts ON activity (client, ts);
    CREATE INDEX activity_kind_ts ON activity (kind, ts);
    CREATE INDEX activity_request ON activity (request_id);
    CREATE INDEX activity_parent ON activity (parent_id);
    """,
    # search: tool vectors of hybrid search by model and tool hash (computed once per tool
    # version), and per-client counts of tools called after a search (the usage signal).
    """
    CREATE TABLE search_vectors (
        model      TEXT NOT NULL,
        hash       TEXT NOT NULL,      -- tool_hash of the tool the vector was computed from
        text_hash  TEXT NOT NULL,      -- sha256 of the text embedded
        vector     BLOB NOT NULL,      -- float32, little-endian
        created_at REAL NOT NULL,
        PRIMARY KEY (model, hash)
    ) WITHOUT ROWID;

    CREATE TABLE search_usage (
        client     TEXT NOT NULL,
        server     TEXT NOT NULL,
        name       TEXT NOT NULL,
        calls      INTEGER NOT NULL DEFAULT 0,
        last_used  REAL NOT NULL,
        PRIMARY KEY (client, server, name)
    ) WITHOUT ROWID;
    """,
    # tasks: the task handles mcpproxy gave clients, each mapped to the upstream task it stands
    # for (mcpproxy.store.tasks), so a handle still reaches its task after a restart.
    """
    CREATE TABLE task_handles (
        handle      TEXT PRIMARY KEY,  -- what the client holds: random, unguessable
        owner       TEXT NOT NULL,     -- who may use it: an agent token id, or '' (API key / no auth)
        server      TEXT NOT NULL,
        tool        TEXT NOT NULL,     -- the upstream tool's own name
        upstream_id TEXT NOT NULL,     -- the upstream's taskId
        via         TEXT NOT NULL,
        status      TEXT NOT NULL,     -- last status seen upstream
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        expires_at  REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX task_handles_owner ON task_handles (owner, created_at);
    CREATE INDEX task_handles_expiry ON task_handles (expires_at);
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
