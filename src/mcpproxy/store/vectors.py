"""Search data in the database: tool vectors of hybrid search, and the usage signal's counts.

A vector is computed once per tool version and kept: rows are keyed by the embedding model and the
tool's :func:`~mcpproxy.store.tools.tool_hash`, and also carry the SHA-256 of the exact text that
was embedded, so a vector is reused only for the same model and the same text. After a restart or a
re-listing, only tools whose definition changed are embedded again. Vectors are stored as
little-endian float32 bytes; this module does not need numpy (the caller converts).

Usage counts are per ``(client, server, tool)``: how often a client called a tool that a search had
just shown it. They are read back only for the same client.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mcpproxy.store.db import Store

__all__ = ["SearchStore", "StoredVector", "text_hash"]


def text_hash(text: str) -> str:
    """SHA-256 of an embedded text (hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredVector:
    """One stored vector.

    Attributes:
        hash: The tool hash it belongs to.
        text_hash: SHA-256 of the text it was computed from.
        vector: Little-endian float32 bytes.
    """

    hash: str
    text_hash: str
    vector: bytes


class SearchStore:
    """Vectors and usage counts on top of a :class:`Store`.

    Args:
        store: An open store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def vectors(self, model: str, hashes: Sequence[str]) -> dict[str, StoredVector]:
        """Stored vectors of ``model`` for the given tool hashes (those found)."""
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, StoredVector]:
            out: dict[str, StoredVector] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT hash, text_hash, vector FROM search_vectors WHERE model = ? AND hash IN ({marks})",  # noqa: S608
                    (model, *chunk),
                ):
                    out[row[0]] = StoredVector(row[0], row[1], bytes(row[2]))
            return out

        return await self._store.read(read)

    async def save_vectors(self, model: str, vectors: Iterable[StoredVector], *, now: float | None = None) -> None:
        """Store (or replace) vectors of ``model``."""
        at = time.time() if now is None else now
        rows = [(model, v.hash, v.text_hash, v.vector, at) for v in vectors]
        if not rows:
            return
        await self._store.execute_write(
            lambda conn: conn.executemany(
                "INSERT INTO search_vectors (model, hash, text_hash, vector, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (model, hash) DO UPDATE SET text_hash = excluded.text_hash,"
                " vector = excluded.vector, created_at = excluded.created_at",
                rows,
            )
        )

    async def prune_vectors(self, model: str, keep: Iterable[str]) -> int:
        """Delete vectors of ``model`` whose tool hash is not in ``keep``; returns how many."""
        kept = sorted(set(keep))

        def write(conn: sqlite3.Connection) -> int:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep_hashes (hash TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM keep_hashes")
            conn.executemany("INSERT OR IGNORE INTO keep_hashes (hash) VALUES (?)", [(h,) for h in kept])
            cursor = conn.execute(
                "DELETE FROM search_vectors WHERE model = ? AND hash NOT IN (SELECT hash FROM keep_hashes)", (model,)
            )
            conn.execute("DELETE FROM keep_hashes")
            return cursor.rowcount

        return await self._store.execute_write(write)

    async def record_usage(self, client: str, server: str, name: str, *, now: float | None = None) -> None:
        """Count one call of ``server:name`` by ``client`` after a search."""
        at = time.time() if now is None else now
        await self._store.execute_write(
            lambda conn: conn.execute(
                "INSERT INTO search_usage (client, server, name, calls, last_used) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (client, server, name) DO UPDATE SET calls = calls + 1, last_used = excluded.last_used",
                (client, server, name, at),
            )
        )

    async def usage(self) -> list[tuple[str, str, int]]:
        """Every ``(client, 'server:tool', calls)`` row."""
        rows = await self._store.read(
            lambda conn: conn.execute(
                "SELECT client, server, name, calls FROM search_usage ORDER BY client, server, name"
            ).fetchall()
        )
        return [(client, f"{server}:{name}", int(calls)) for client, server, name, calls in rows]

    async def forget_usage(self, client: str | None = None) -> None:
        """Delete the usage counts of ``client`` (of every client when ``None``)."""
        if client is None:
            await self._store.execute_write(lambda conn: conn.execute("DELETE FROM search_usage"))
        else:
            await self._store.execute_write(
                lambda conn: conn.execute("DELETE FROM search_usage WHERE client = ?", (client,))
            )

    async def forget_server(self, server: str) -> None:
        """Delete the usage counts of ``server``'s tools."""
        await self._store.execute_write(
            lambda conn: conn.execute("DELETE FROM search_usage WHERE server = ?", (server,))
        )

