"""The activity log keeps what retention allows: nothing older than the age limit, at most the
newest ``activity_max_records`` rows, and everything when both limits are off; on a real SQLite
file, through the recorder's retention pass."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from mcpproxy.observe.activity import ActivityRecorder
from mcpproxy.store.activity import ActivityFilter, ActivityRow, ActivityStore
from mcpproxy.store.db import Store

DAY = 86400.0


async def fill(activity: ActivityStore, ages_in_days: list[float], prefix: str = "r") -> None:
    """One call record per age (ids ``r000``, ``r001``... oldest first), written oldest first as the log is."""
    now = time.time()
    rows = [
        ActivityRow(id=f"{prefix}{i:03d}", ts=now - age * DAY, kind="call", status="ok", server="notes", tool="add")
        for i, age in enumerate(sorted(ages_in_days, reverse=True))
    ]
    await activity.insert_many(rows)


@asynccontextmanager
async def running(
    activity: ActivityStore, *, retention_days: float, max_records: int
) -> AsyncIterator[ActivityRecorder]:
    """A recorder with its writer running, as the gateway runs it, closed on the way out."""
    recorder = ActivityRecorder(activity, retention_days=retention_days, max_records=max_records)
    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        try:
            yield recorder
        finally:
            await recorder.close()


async def kept_ids(activity: ActivityStore) -> list[str]:
    return [row.id for row in await activity.query(ActivityFilter(), limit=1000, oldest_first=True)]


@pytest.mark.anyio
async def test_records_past_the_age_limit_go_and_the_rest_stay(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        await fill(activity, [40, 31, 29, 2, 0])
        async with running(activity, retention_days=30, max_records=0) as recorder:
            assert await recorder.prune_once() == 2
            assert await kept_ids(activity) == ["r002", "r003", "r004"]
            assert await recorder.prune_once() == 0
            assert recorder.pruned == 2


@pytest.mark.anyio
async def test_past_the_count_limit_the_oldest_go_first(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        await fill(activity, [5, 4, 3, 2, 1, 0])
        async with running(activity, retention_days=0, max_records=4) as recorder:
            assert await recorder.prune_once() == 2
            assert await kept_ids(activity) == ["r002", "r003", "r004", "r005"]
        # Both limits at once: age first, then the count of what is left.
        await fill(activity, [0.5], prefix="new")
        async with running(activity, retention_days=2.5, max_records=2) as recorder:
            assert await recorder.prune_once() == 3
        assert await kept_ids(activity) == ["r005", "new000"]
        assert await store.integrity_check()


@pytest.mark.anyio
async def test_with_both_limits_off_nothing_is_pruned(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        activity = ActivityStore(store)
        await fill(activity, [3650, 365, 0])
        async with running(activity, retention_days=0, max_records=0) as recorder:
            assert await recorder.prune_once() == 0
        assert len(await kept_ids(activity)) == 3


@pytest.mark.anyio
async def test_the_age_pass_uses_the_time_index(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        sql = "EXPLAIN QUERY PLAN DELETE FROM activity WHERE ts < ?"
        plan = await store.read(lambda conn: " ".join(str(row[-1]) for row in conn.execute(sql, (0.0,))))
        assert "activity_ts" in plan
