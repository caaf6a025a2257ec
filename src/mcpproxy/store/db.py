"""The SQLite database: one writer, a few readers, numbered migrations.

This is the only module that opens SQLite connections. The database runs in WAL mode, so
readers never block the writer nor each other. All writes go through one connection used
by one worker thread at a time (``anyio.to_thread.run_sync`` with a ``CapacityLimiter(1)``),
which serialises them inside the process: tasks queue on the limiter instead of racing for
SQLite's lock, so "database is locked" cannot happen between our own writers. Each write
is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction around a caller's function. Reads use a
small pool of ``query_only`` connections in worker threads, each read in one transaction so
it sees a consistent snapshot. ``busy_timeout`` covers another process holding the lock.

``synchronous=NORMAL``: in WAL mode a committed transaction is in the WAL file, written
with ``write()`` before ``COMMIT`` returns, so it survives the process being killed (``kill
-9``) at any moment; the database is never corrupted either way. What NORMAL gives up is
the last few commits on power loss or an OS crash, which FULL would keep at the price of an
``fsync`` per commit. The data here (tool snapshots, states, counters) is rebuilt or
re-counted from live servers, so NORMAL is the right trade; a table that must survive power
loss can run ``PRAGMA synchronous=FULL`` in its write.

The file holds operational history, so it and its directory are private (0600 / 0700).
Migrations run when the store opens; see :mod:`mcpproxy.store.migrations`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import anyio
import anyio.to_thread

from mcpproxy.errors import StoreError
from mcpproxy.store.migrations import migrate, user_version

T = TypeVar("T")

FILE_MODE = 0o600
DIR_MODE = 0o700


class Store:
    """An open mcpproxy database.

    Use as ``async with Store(path) as store:``; the file and its parent directories are
    created when missing and the schema is migrated on open.

    Args:
        path: The database file.
        readers: Most reads running at the same time (one connection each).
        busy_timeout: Seconds to wait for a lock held by another process.
    """

    def __init__(self, path: Path, *, readers: int = 4, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(readers)
        self._writer: sqlite3.Connection | None = None
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create or open the file and migrate it.

        Raises:
            StoreError: The file cannot be opened, is not a database, or was written by a
                newer mcpproxy.
        """
        if self._writer is not None or self._closed:
            raise StoreError("the store is already open or was closed")
        self._writer = await anyio.to_thread.run_sync(self._open_writer, limiter=self._write_limiter)

    async def aclose(self) -> None:
        """Close all connections, after the writes already queued have run."""
        with anyio.CancelScope(shield=True):
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is not None:
                await anyio.to_thread.run_sync(_close_writer, writer, limiter=self._write_limiter)
            with self._readers_lock:
                idle, self._idle_readers = self._idle_readers, []
            for conn in idle:
                conn.close()

    async def execute_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in one write transaction, after any queued writes.

        ``fn`` runs in a worker thread (never two at once), so it must not touch the event
        loop. The transaction commits when ``fn`` returns and rolls back when it raises.

        Returns:
            What ``fn`` returned.

        Raises:
            StoreError: SQLite failed, or the store is closed.
        """
        return await anyio.to_thread.run_sync(partial(self._run_write, fn), limiter=self._write_limiter)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a read transaction on a reader connection.

        Returns:
            What ``fn`` returned.

        Raises:
            StoreError: SQLite failed (writes are refused), or the store is closed.
        """
        return await anyio.to_thread.run_sync(partial(self._run_read, fn), limiter=self._read_limiter)

    async def integrity_check(self) -> bool:
        """Whether ``PRAGMA quick_check`` finds the database intact."""
        rows = await self.read(lambda conn: conn.execute("PRAGMA quick_check").fetchall())
        return rows == [("ok",)]

    async def schema_version(self) -> int:
        """The database's ``user_version``."""
        return await self.read(user_version)

    # -- worker-thread side ------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves instead of the module's
        # implicit transactions, whose rules differ between Python versions.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, FILE_MODE))
            os.chmod(self.path, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot create database {self.path}: {exc.strerror or exc}") from exc
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"database {self.path} cannot use WAL mode (got {mode!r})")
            migrate(conn, self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(exc, self.path) from exc
        except StoreError:
            conn.close()
            raise
        return conn

    def _run_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._writer
        if conn is None:
            raise StoreError("the store is closed")
        try:
            return _in_transaction(conn, "BEGIN IMMEDIATE", fn, commit=True)
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path) from exc

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed or self._writer is None:
            raise StoreError("the store is closed")
        with self._readers_lock:
            conn = self._idle_readers.pop() if self._idle_readers else None
        try:
            if conn is None:
                conn = self._connect()
                conn.execute("PRAGMA query_only = ON")
            return _in_transaction(conn, "BEGIN", fn, commit=False)
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path) from exc
        finally:
            if conn is not None:
                with self._readers_lock:
                    keep = not self._closed
                    if keep:
                        self._idle_readers.append(conn)
                if not keep:
                    conn.close()


def _in_transaction(conn: sqlite3.Connection, begin: str, fn: Callable[[sqlite3.Connection], T], *, commit: bool) -> T:
    conn.execute(begin)
    try:
        result = fn(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if commit else "ROLLBACK")
    return result


def _close_writer(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()


def _store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    message = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in message:
        return StoreError(f"{path} is not an mcpproxy database", hint="move the file away and restart")
    if "locked" in message or "busy" in message:
        return StoreError(
            f"database {path} is locked: {message}", hint="is another mcpproxy using the same data directory?"
        )
    return StoreError(f"database error in {path}: {message}")
