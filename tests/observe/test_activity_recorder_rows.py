"""Every call gets its record, whatever it held; one row the database refuses costs that row only.
On a real SQLite file, through the recorder the gateway runs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpproxy.observe.activity import ActivityRecorder
from mcpproxy.store.activity import ActivityFilter, ActivityRow, ActivityStore
from mcpproxy.store.db import Store

pytestmark = pytest.mark.anyio


def row(record_id: str, status: str = "refused", **fields: Any) -> ActivityRow:
    return ActivityRow(id=record_id, ts=time.time(), kind="call", status=status, **fields)


async def records(activity: ActivityStore) -> dict[str, dict[str, Any]]:
    rows = await activity.query(ActivityFilter(), limit=100, oldest_first=True)
    out = {r.id: r.to_dict() for r in rows}
    json.dumps(out, allow_nan=False).encode("utf-8")  # what the REST API answers must serialise
    return out


async def test_values_no_record_could_hold_are_stored_made_storable(tmp_path: Path) -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(2000):
        node.append([])
        node = node[0]
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        recorder = ActivityRecorder(activity, retention_days=0, max_records=0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder.run)
            recorder._put(row("surrogate", tool="\ud800", error="unknown tool '\udc00'"), {"text": "a\ud800"})
            recorder._put(row("numbers"), {"x": math.nan, "y": [math.inf, 1.5]})
            recorder._put(row("deep", detail={"why": -math.inf}), {"d": deep})
            recorder._put(row("fine", status="ok"), {"a": 1})
            await recorder.close()
        assert recorder.dropped == 0 and recorder.written == 4
        kept = await records(activity)
    assert kept["surrogate"]["tool"] == "\\ud800"
    assert kept["surrogate"]["error"] == "unknown tool '\\udc00'"
    assert kept["surrogate"]["arguments"] == {"text": "a\\ud800"}
    assert kept["numbers"]["arguments"] == {"x": "NaN", "y": ["Infinity", 1.5]}
    assert "[nested too deep]" in json.dumps(kept["deep"]["arguments"])
    assert kept["deep"]["detail"] == {"why": "-Infinity"}
    assert kept["fine"]["arguments"] == {"a": 1}


async def test_a_row_the_database_refuses_costs_that_row_only(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        recorder = ActivityRecorder(activity, retention_days=0, max_records=0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder.run)
            recorder._put(row("before"), None)
            # A row SQLite refuses (it cannot bind a value of this type), in a batch with two good ones.
            recorder._put(row("refused", tool=object()), None)
            recorder._put(row("after"), None)
            await recorder.close()
        assert recorder.written == 2 and recorder.dropped == 1
        assert set(await records(activity)) == {"before", "after"}


async def test_rows_written_before_values_were_made_storable_read_as_strict_json(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        # What an earlier release wrote for a call with NaN in its arguments: json.dumps' bare NaN.
        await activity.insert_many([row("old", arguments='{"a":NaN,"b":[Infinity,-Infinity]}')])
        assert (await records(activity))["old"]["arguments"] == {"a": "NaN", "b": ["Infinity", "-Infinity"]}
