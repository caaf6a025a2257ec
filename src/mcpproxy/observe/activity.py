"""The activity recorder: every call, policy decision and server state change, to SQLite.

Design. The recorder is a call observer and an event listener. On the call path it only
builds a row from what the call already knows and puts it on a bounded in-memory queue
(microseconds; a call never waits for the disk). One writer task takes rows off the queue in
batches of up to ``BATCH`` and writes each batch in one transaction; the arguments are
redacted (``mcpproxy.filters.secrets.redact_json``) and cut to ``ARGUMENTS_KEPT`` characters in
the store's worker thread, off the event loop. If the queue is ever full (the disk cannot keep
up for ``QUEUE_SIZE`` rows), new rows are dropped and counted
(``mcpproxy_activity_dropped``), never the call.

On shutdown the queue is closed and the writer drains it before the store closes, so a
graceful stop loses no record; after ``kill -9`` the rows still queued (at most a fraction of
a second's worth) are lost, and every committed row is intact (WAL).

While a call runs, its id is the current call (``current_call_var``) and its request id is
bound on every log line of the call (``structlog.contextvars``); a call made from inside it
(code execution) records it as its parent. Retention: rows older than
``activity_retention_days`` and all but the newest ``activity_max_records`` are pruned at
start and every ``PRUNE_INTERVAL`` seconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import structlog

from mcpproxy.errors import ProxyError
from mcpproxy.filters.secrets import redact, redact_json
from mcpproxy.jsonvalues import encodable, storable
from mcpproxy.observe.events import (
    OpsEvent,
    client_addr_var,
    current_call_var,
    new_id,
    request_id_var,
    token_var,
)
from mcpproxy.store.activity import ActivityRow, ActivityStore

if TYPE_CHECKING:
    from mcpproxy.gateway import CallRecord

logger = logging.getLogger(__name__)

QUEUE_SIZE = 20_000
"""Rows waiting for the writer at most."""
BATCH = 500
"""Rows written in one transaction at most."""
ARGUMENTS_KEPT = 4096
"""Characters of a call's redacted arguments kept in the log."""
ERROR_KEPT = 2000
"""Characters of an error message kept."""
PRUNE_INTERVAL = 600.0
"""Seconds between retention passes."""
LINGER = 0.05
"""Seconds the writer waits for more rows before writing a batch."""
FLUSH_TIMEOUT = 15.0
"""Seconds a shutdown waits for the queue to drain at most."""


class _Pending:
    __slots__ = ("arguments", "row")

    def __init__(self, row: ActivityRow, arguments: Mapping[str, Any] | None) -> None:
        self.row = row
        self.arguments = arguments


def result_size(result: types.CallToolResult | None) -> int | None:
    """Characters in a result's content (text, or the encoded data of images, audio and resources)."""
    if result is None:
        return None
    size = 0
    for item in result.content:
        if isinstance(item, types.TextContent):
            size += len(item.text)
        elif isinstance(item, types.ImageContent | types.AudioContent):
            size += len(item.data)
        elif isinstance(item, types.EmbeddedResource):
            res = item.resource
            size += len(res.text) if isinstance(res, types.TextResourceContents) else len(res.blob)
    return size


def prepare_row(row: ActivityRow, arguments: Mapping[str, Any] | None) -> None:
    """Redact and size the arguments, redact the error text, and make every value storable (runs
    in the store's thread).

    A record is written whatever the call held: an unpaired surrogate in a name or an argument,
    ``NaN``, nesting a thousand levels deep (``mcpproxy.jsonvalues.storable``). Such a call is
    refused, and its record is what shows who sent it.
    """
    for column in fields(row):
        value = getattr(row, column.name)
        if isinstance(value, str):
            setattr(row, column.name, encodable(value))
    if arguments is not None:
        kept = storable(arguments)
        full = json.dumps(kept, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        row.args_size = len(full.encode("utf-8"))
        redacted, _ = redact_json(kept)
        text = json.dumps(redacted, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        row.arguments = text if len(text) <= ARGUMENTS_KEPT else text[:ARGUMENTS_KEPT] + "…"
    if row.error:
        row.error = redact(row.error[:ERROR_KEPT]).text
    if row.detail:
        row.detail = storable(row.detail)


def _status(record: CallRecord) -> str:
    if record.error is not None and isinstance(record.error, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return record.status


def _error_text(error: BaseException | None) -> tuple[str | None, str | None]:
    if error is None:
        return None, None
    if isinstance(error, ProxyError):
        return error.kind, error.message
    if isinstance(error, anyio.get_cancelled_exc_class()):
        return "cancelled", "the call was cancelled"
    return type(error).__name__, str(error) or type(error).__name__


class ActivityRecorder:
    """Observer and event listener writing the activity log.

    Args:
        store: The activity table.
        retention_days: Age past which rows are pruned (0: no age limit).
        max_records: Rows kept at most (0: no count limit).
    """

    def __init__(self, store: ActivityStore, *, retention_days: float, max_records: int) -> None:
        self.store = store
        self.retention_days = retention_days
        self.max_records = max_records
        self._send, self._receive = anyio.create_memory_object_stream[_Pending](QUEUE_SIZE)
        self._bindings: dict[str, tuple[Any, Mapping[str, Any]]] = {}
        self._done = anyio.Event()
        self.dropped = 0
        self.written = 0
        self.pruned = 0
        self._accepted = 0
        self._settled = 0
        self._progress = anyio.Event()

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    # -- call observer ---------------------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        parent = record.ctx.parent_id or current_call_var.get()
        if parent is not None and record.parent_id is None:
            record.parent_id = parent
        call_token = current_call_var.set(record.id)
        log_tokens = structlog.contextvars.bind_contextvars(request_id=self._request_id(record), call_id=record.id)
        self._bindings[record.id] = (call_token, log_tokens)

    def call_finished(self, record: CallRecord) -> None:
        bound = self._bindings.pop(record.id, None)
        if bound is not None:
            call_token, log_tokens = bound
            try:
                current_call_var.reset(call_token)
                structlog.contextvars.reset_contextvars(**log_tokens)
            except ValueError:  # finished in another context than it started: nothing to undo there
                pass
        ctx = record.ctx
        entry = record.entry
        error_kind, error = _error_text(record.error)
        server, tool = (entry.server, entry.name) if entry is not None else (None, record.name)
        request_id = self._request_id(record)
        client = ctx.client or client_addr_var.get()
        token = self._token(record)
        tier = ctx.tier.label if ctx.tier is not None else None
        row = ActivityRow(
            id=record.id,
            ts=record.started,
            kind="call",
            status=_status(record),
            via=ctx.via,
            request_id=request_id,
            client=client,
            token=token,
            parent_id=record.parent_id,
            server=server,
            tool=tool,
            tier=tier,
            error_kind=error_kind,
            error=error,
            duration_ms=round(record.duration_ms, 3),
            upstream_ms=round(record.upstream_ms, 3) if record.upstream_ms is not None else None,
            result_size=result_size(record.result),
        )
        self._put(row, record.arguments)
        if record.status == "refused" and isinstance(record.error, ProxyError) and record.error.http_status == 403:
            self.on_event(
                OpsEvent(
                    kind="policy",
                    action="deny",
                    check=_check_of(record.error.kind),
                    server=server,
                    tool=tool,
                    message=error,
                    request_id=request_id,
                    client=client,
                    token=token,
                    call_id=record.id,
                )
            )
        for event in getattr(ctx, "events", ()) or ():
            self.on_event(_call_event(event, record, server, tool, request_id, client, token))

    # -- event listener --------------------------------------------------------------------

    def on_event(self, event: OpsEvent) -> None:
        row = ActivityRow(
            id=new_id(),
            ts=event.time,
            kind=event.kind,
            status=event.action,
            request_id=event.request_id,
            client=event.client,
            token=event.token,
            parent_id=event.call_id,
            server=event.server,
            tool=event.tool,
            error=event.message,
            detail={**({"check": event.check} if event.check else {}), **event.detail} or None,
        )
        self._put(row, None)

    # -- writing -----------------------------------------------------------------------------

    def _request_id(self, record: CallRecord) -> str:
        return request_id_var.get() or record.ctx.request_id

    def _token(self, record: CallRecord) -> str | None:
        agent = getattr(record.ctx, "token", None)
        if agent is not None:
            return f"token:{getattr(agent, 'id', agent)}"
        return token_var.get()

    def _put(self, row: ActivityRow, arguments: Mapping[str, Any] | None) -> None:
        try:
            self._send.send_nowait(_Pending(row, arguments))
            self._accepted += 1
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
            logger.debug("activity record after shutdown dropped: %s %s", row.kind, row.tool or row.server)

    async def run(self) -> None:
        """The writer: batches from the queue to the store until the queue is closed and empty."""
        try:
            async with self._receive:
                async for first in self._receive:
                    batch = [first]
                    # Gather what arrives within LINGER: one commit for many rows, not one per call.
                    with anyio.move_on_after(LINGER):
                        while len(batch) < BATCH:
                            try:
                                batch.append(await self._receive.receive())
                            except anyio.EndOfStream:
                                break
                    await self._write(batch)
        finally:
            self._done.set()

    async def _write(self, batch: list[_Pending]) -> None:
        def prepare(item: _Pending) -> ActivityRow:
            prepare_row(item.row, item.arguments)
            return item.row

        try:
            await self.store.insert_many(batch, prepare=prepare)
            self.written += len(batch)
        except Exception as exc:  # noqa: BLE001 - handled below: each row tried alone, the rest logged
            # One row the store refuses must not cost the batch, nor stop the writer (it runs in the
            # gateway's task group: an error here would stop the gateway): row by row, then.
            await self._write_one_by_one(batch, prepare, exc)
        finally:
            self._settled += len(batch)
            self._progress.set()
            self._progress = anyio.Event()

    async def _write_one_by_one(
        self, batch: list[_Pending], prepare: Callable[[_Pending], ActivityRow], error: Exception
    ) -> None:
        dropped: list[tuple[str, Exception]] = []
        for item in batch:
            try:
                await self.store.insert_many([item], prepare=prepare)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - counted and logged below, with the first error
                dropped.append((item.row.id, exc))
        self.dropped += len(dropped)
        if dropped:
            record_id, first = dropped[0]
            logger.error(
                "activity log: %d of %d records not written (%s: %s); the first: %s",
                len(dropped), len(batch), type(error).__name__, error, record_id, exc_info=first,
            )

    async def flush(self) -> None:
        """Wait until every record accepted so far is written (bound it with ``anyio.fail_after``)."""
        target = self._accepted
        while self._settled < target and not self._done.is_set():
            await self._progress.wait()

    async def close(self) -> None:
        """Stop taking rows and wait (bounded) until the queued ones are written."""
        self._send.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(FLUSH_TIMEOUT):
            await self._done.wait()
        if not self._done.is_set():
            logger.error("activity log: %d records not written within %g s of shutdown", self.queued, FLUSH_TIMEOUT)

    async def prune_forever(self) -> None:
        """Apply the retention settings now and every ``PRUNE_INTERVAL`` seconds."""
        while True:
            await self.prune_once()
            await anyio.sleep(PRUNE_INTERVAL)

    async def prune_once(self) -> int:
        older_than = time.time() - self.retention_days * 86400 if self.retention_days > 0 else None
        keep = self.max_records if self.max_records > 0 else None
        try:
            deleted = await self.store.prune(older_than=older_than, keep=keep)
        except ProxyError as exc:
            logger.warning("activity retention pass failed: %s", exc)
            return 0
        self.pruned += deleted
        if deleted:
            logger.info("activity log: pruned %d old records", deleted)
        return deleted


_CHECKS = {"tier_mismatch": "tier", "quarantined": "quarantine", "policy_denied": "policy"}


def _check_of(kind: str) -> str:
    return _CHECKS.get(kind, kind)


def _call_event(
    event: Mapping[str, Any],
    record: CallRecord,
    server: str | None,
    tool: str | None,
    request_id: str,
    client: str | None,
    token: str | None,
) -> OpsEvent:
    """A decision a filter or check reported on ``ctx.events`` (``{"decision": ..., ...}``)."""
    check = str(event.get("check") or event.get("decision") or "policy")
    action = str(event.get("action") or event.get("mode") or event.get("decision") or "note")
    detail = {k: v for k, v in event.items() if k not in ("check", "action", "tool")}
    return OpsEvent(
        kind="policy",
        action=action,
        check=check,
        server=server,
        tool=tool,
        detail=detail,
        request_id=request_id,
        client=client,
        token=token,
        call_id=record.id,
    )
