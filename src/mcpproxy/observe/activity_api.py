"""REST routes of the activity log (mounted under ``/api/v1`` with the API key).

Routes::

    GET /api/v1/activity?server=&tool=&status=&kind=&client=&request_id=&parent_id=
                        &since=&until=&after=&before=&limit=&order=desc|asc
        {"records": [...], "next_before": SEQ|null, "last_seq": SEQ|null}
        since/until: Unix time, ISO 8601, or a duration ago (15m, 2h, 1d)
        after=SEQ: records newer than SEQ, oldest first (what `activity watch` polls)
    GET /api/v1/activity/export?format=jsonl|csv&<filters>&limit=N   (streamed, oldest first)
    GET /api/v1/activity/{id}   one record (a unique prefix of 8+ characters works) and the
                                calls made from inside it
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mcpproxy.errors import InvalidArguments, NotFound, ProxyError, StoreError
from mcpproxy.observe.when import parse_when
from mcpproxy.store.activity import CSV_COLUMNS, MAX_PAGE, ActivityFilter, rows_to_csv_lines

if TYPE_CHECKING:
    from mcpproxy.gateway import Gateway

EXPORT_MAX = 1_000_000
"""Records one export returns at most."""

SEQ_MAX = 2**63 - 1
"""Largest seq a filter may name: SQLite's integers are signed 64-bit (a larger one cannot be bound)."""


def activity_filter(request: Request) -> ActivityFilter:
    """The filter a request's query parameters describe."""
    q = request.query_params

    def when(name: str) -> float | None:
        raw = q.get(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_when(raw)
        except ValueError as exc:
            raise InvalidArguments(f"'{name}': {exc}") from None

    def seq(name: str) -> int | None:
        raw = q.get(name)
        if raw is None or raw == "":
            return None
        try:
            value: int | None = int(raw)
        except ValueError:
            value = None
        # A seq SQLite cannot hold would fail in the query (a 500, or an export cut part-way).
        if value is None or not 0 <= value <= SEQ_MAX:
            raise InvalidArguments(f"'{name}' must be a record's seq: an integer from 0 to {SEQ_MAX}")
        return value

    return ActivityFilter(
        server=q.get("server") or None,
        tool=q.get("tool") or None,
        status=q.get("status") or None,
        kind=q.get("kind") or None,
        client=q.get("client") or None,
        request_id=q.get("request_id") or None,
        parent_id=q.get("parent_id") or None,
        since=when("since"),
        until=when("until"),
        after=seq("after"),
        before=seq("before"),
    )


def _limit(request: Request, default: int, most: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        return max(1, min(most, int(raw)))
    except ValueError:
        raise InvalidArguments("'limit' must be an integer") from None


def build_activity_routes(gw: Gateway) -> list[Route]:
    """The activity routes for the REST API."""

    async def list_records(request: Request) -> Response:
        try:
            flt = activity_filter(request)
            limit = _limit(request, 50, MAX_PAGE)
            oldest_first = request.query_params.get("order") == "asc" or flt.after is not None
            recorder = gw.ops.activity
            if recorder is None:
                raise StoreError("the activity log is not open")
            rows = await recorder.store.query(flt, limit=limit, oldest_first=oldest_first)
        except ProxyError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.http_status)
        seqs = [r.seq for r in rows if r.seq is not None]
        return JSONResponse(
            {
                "records": [r.to_dict() for r in rows],
                "next_before": min(seqs) if seqs and len(rows) == limit else None,
                "last_seq": max(seqs) if seqs else flt.after,
            }
        )

    async def get_record(request: Request) -> Response:
        record_id = request.path_params["id"]
        try:
            recorder = gw.ops.activity
            if recorder is None:
                raise StoreError("the activity log is not open")
            row = await recorder.store.get(record_id)
            if row is None:
                raise NotFound(
                    f"no activity record '{record_id}'",
                    hint="`mcpproxy activity list` shows ids; a prefix must be 8+ characters and unique",
                )
            children = await recorder.store.children(row.id)
        except ProxyError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.http_status)
        return JSONResponse({**row.to_dict(), "children": [c.to_dict() for c in children]})

    async def export(request: Request) -> Response:
        fmt = request.query_params.get("format", "jsonl")
        try:
            if fmt not in ("jsonl", "csv"):
                raise InvalidArguments("'format' is jsonl or csv")
            flt = activity_filter(request)
            limit = _limit(request, EXPORT_MAX, EXPORT_MAX)
            recorder = gw.ops.activity
            if recorder is None:
                raise StoreError("the activity log is not open")
        except ProxyError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.http_status)
        activity = recorder.store

        async def body() -> AsyncIterator[bytes]:
            after = flt.after
            left = limit
            if fmt == "csv":
                yield _csv_line(list(CSV_COLUMNS))
            while left > 0:
                page_filter = replace(flt, after=after)
                page = await activity.query(page_filter, limit=min(MAX_PAGE, left), oldest_first=True)
                if not page:
                    return
                if fmt == "csv":
                    yield b"".join(_csv_line(cells) for cells in rows_to_csv_lines(page))
                else:
                    yield b"".join(json.dumps(r.to_dict(), ensure_ascii=False).encode() + b"\n" for r in page)
                left -= len(page)
                after = page[-1].seq

        media = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return StreamingResponse(body(), media_type=media)

    return [
        Route("/activity", list_records, methods=["GET"]),
        Route("/activity/export", export, methods=["GET"]),
        Route("/activity/{id}", get_record, methods=["GET"]),
    ]


def _csv_line(cells: list[object]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode()
