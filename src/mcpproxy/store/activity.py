"""The activity log's SQL: one row per tool call, policy decision or server state change.

Rows are written in batches by the recorder (``mcpproxy.observe.activity``), read by the REST
API and the CLI with filters, and pruned by age and count. ``seq`` (an ``AUTOINCREMENT`` key,
never reused) orders rows and is the cursor of ``watch`` and of paging; ``id`` is the record's
public name (``activity show ID``, ``parent_id`` of calls made from code). The table is created
by a migration in :mod:`mcpproxy.store.migrations`; the columns are :class:`ActivityRow`'s fields.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from mcpproxy.store.db import Store

T = TypeVar("T")

MAX_PAGE = 1000
"""Most rows one query returns."""


@dataclass(slots=True)
class ActivityRow:
    """One activity record (see the table's comments for the values).

    Attributes:
        id: Public id (time-ordered hex).
        ts: Unix time of the start (calls) or of the event.
        kind: ``call``, ``policy``, ``state``, ``auth``...
        status: Outcome of a call, a policy decision, or a server's new state.
        via: How a call came in.
        request_id: Correlation id.
        client: Client name or address.
        token: Token id or fingerprint.
        parent_id: The call this one was made from.
        server: Server name.
        tool: Tool name.
        tier: Tier the caller asked for.
        arguments: Redacted arguments as JSON text.
        args_size: Size in bytes of the arguments' JSON before redaction and cutting.
        error_kind: The error's kind (``upstream_timeout``...).
        error: The error's message.
        duration_ms: Whole time in the gateway.
        upstream_ms: Time waiting for the upstream.
        result_size: Characters of the result returned.
        detail: Extra JSON fields.
        seq: Position in the log (set when read).
    """

    id: str
    ts: float
    kind: str
    status: str
    via: str | None = None
    request_id: str | None = None
    client: str | None = None
    token: str | None = None
    parent_id: str | None = None
    server: str | None = None
    tool: str | None = None
    tier: str | None = None
    arguments: str | None = None
    args_size: int | None = None
    error_kind: str | None = None
    error: str | None = None
    duration_ms: float | None = None
    upstream_ms: float | None = None
    result_size: int | None = None
    detail: dict[str, Any] | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON (``arguments`` parsed back when it is whole JSON)."""
        out = asdict(self)
        if self.arguments is not None:
            try:
                out["arguments"] = _loads(self.arguments)
            except ValueError:
                out["arguments"] = self.arguments
        return out


def _loads(text: str) -> Any:
    """JSON text as stored; ``NaN`` and ``Infinity``, which rows written before they were made
    storable may hold, are read as strings, as they are stored now (a response cannot hold them)."""
    return json.loads(text, parse_constant=str)


_COLUMNS = tuple(f.name for f in fields(ActivityRow) if f.name != "seq")
# Column names are constants of this module; every value is a bound parameter.
_INSERT = f"INSERT OR IGNORE INTO activity ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
_SELECT = f"SELECT seq, {', '.join(_COLUMNS)} FROM activity"  # noqa: S608
CSV_COLUMNS: tuple[str, ...] = ("seq", *_COLUMNS)
"""Columns of an export, in order."""


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """Which rows a query returns; every field left ``None`` matches everything.

    Attributes:
        server: Server name.
        tool: Tool name.
        status: Status (``ok``, ``error``, ``refused``, ``failed``, ``cancelled``, or a decision).
        kind: Record kind.
        client: Client name or address.
        request_id: Correlation id.
        parent_id: Parent call id.
        since: Rows at or after this Unix time.
        until: Rows before this Unix time.
        after: Rows with ``seq`` greater than this (watching).
        before: Rows with ``seq`` less than this (paging back).
    """

    server: str | None = None
    tool: str | None = None
    status: str | None = None
    kind: str | None = None
    client: str | None = None
    request_id: str | None = None
    parent_id: str | None = None
    since: float | None = None
    until: float | None = None
    after: int | None = None
    before: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("server", "tool", "status", "kind", "client", "request_id", "parent_id"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until)
        if self.after is not None:
            clauses.append("seq > ?")
            params.append(self.after)
        if self.before is not None:
            clauses.append("seq < ?")
            params.append(self.before)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _row(values: Sequence[Any]) -> ActivityRow:
    seq, *rest = values
    data = dict(zip(_COLUMNS, rest, strict=True))
    raw_detail = data.pop("detail")
    detail = _loads(raw_detail) if raw_detail else None
    return ActivityRow(seq=seq, detail=detail, **data)


class ActivityStore:
    """The ``activity`` table of a :class:`~mcpproxy.store.db.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def insert_many(self, items: Sequence[T], *, prepare: Callable[[T], ActivityRow] | None = None) -> None:
        """Write rows in one transaction (a row whose id exists already is skipped).

        ``prepare`` turns each item into its row inside the store's worker thread (the
        recorder redacts arguments there, off the event loop); without it the items are rows.
        """

        def write(conn: sqlite3.Connection) -> None:
            rows: list[ActivityRow] = (
                [prepare(item) for item in items] if prepare is not None else list(items)  # type: ignore[arg-type]
            )
            params = [
                tuple(json.dumps(r.detail) if c == "detail" and r.detail else getattr(r, c) for c in _COLUMNS)
                for r in rows
            ]
            conn.executemany(_INSERT, params)

        await self.store.execute_write(write)

    async def query(self, flt: ActivityFilter, *, limit: int = 100, oldest_first: bool = False) -> list[ActivityRow]:
        """Rows matching ``flt``, newest first (or oldest first), at most ``limit`` (capped at ``MAX_PAGE``)."""
        where, params = flt.where()
        order = "ASC" if oldest_first else "DESC"
        sql = f"{_SELECT}{where} ORDER BY seq {order} LIMIT ?"
        params.append(max(1, min(limit, MAX_PAGE)))
        return await self.store.read(lambda conn: [_row(v) for v in conn.execute(sql, params).fetchall()])

    async def get(self, record_id: str) -> ActivityRow | None:
        """The row called ``record_id`` (a unique prefix of 8 characters or more works too)."""
        def read(conn: sqlite3.Connection) -> list[Any]:
            exact = conn.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchall()
            if exact or len(record_id) < 8:
                return exact
            return conn.execute(f"{_SELECT} WHERE id >= ? AND id < ? LIMIT 2", (record_id, record_id + "~")).fetchall()

        found = await self.store.read(read)
        return _row(found[0]) if len(found) == 1 else None

    async def children(self, record_id: str) -> list[ActivityRow]:
        """Calls made from inside call ``record_id`` (oldest first)."""
        return await self.query(ActivityFilter(parent_id=record_id), limit=MAX_PAGE, oldest_first=True)

    async def count(self, flt: ActivityFilter | None = None) -> int:
        where, params = (flt or ActivityFilter()).where()
        sql = "SELECT count(*) FROM activity" + where  # noqa: S608 - the clauses bind every value
        return await self.store.read(lambda conn: int(conn.execute(sql, params).fetchone()[0]))

    async def iterate(self, flt: ActivityFilter, *, limit: int) -> list[list[ActivityRow]]:
        """Pages of rows matching ``flt``, oldest first, ``limit`` rows in all (for exports)."""
        pages: list[list[ActivityRow]] = []
        after = flt.after
        left = limit
        while left > 0:
            page_filter = replace(flt, after=after)
            page = await self.query(page_filter, limit=min(MAX_PAGE, left), oldest_first=True)
            if not page:
                break
            pages.append(page)
            left -= len(page)
            after = page[-1].seq
        return pages

    async def prune(self, *, older_than: float | None, keep: int | None) -> int:
        """Delete rows before Unix time ``older_than`` and all but the newest ``keep``; returns how many."""

        def write(conn: sqlite3.Connection) -> int:
            deleted = 0
            if older_than is not None:
                deleted += conn.execute("DELETE FROM activity WHERE ts < ?", (older_than,)).rowcount
            if keep is not None:
                row = conn.execute("SELECT seq FROM activity ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
                if row is not None:
                    deleted += conn.execute("DELETE FROM activity WHERE seq <= ?", (row[0],)).rowcount
            return deleted

        return await self.store.execute_write(write)


def rows_to_csv_lines(rows: Sequence[ActivityRow]) -> Iterator[list[Any]]:
    """CSV cells of ``rows`` in ``CSV_COLUMNS`` order (``detail`` as JSON text)."""
    for row in rows:
        yield [
            json.dumps(row.detail) if c == "detail" and row.detail is not None else getattr(row, c)
            for c in CSV_COLUMNS
        ]
