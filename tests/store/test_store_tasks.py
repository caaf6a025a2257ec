"""Task handles in the store: found only by their owner and only until they expire, and swept."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpproxy.store.db import Store
from mcpproxy.store.tasks import TaskHandle, TaskStore

pytestmark = pytest.mark.anyio


def handle(name: str, owner: str, *, created: float, expires: float) -> TaskHandle:
    return TaskHandle(
        handle=name, owner=owner, server="jobs", tool="slow_echo", upstream_id=f"up-{name}", via="mcp-direct",
        status="working", created_at=created, updated_at=created, expires_at=expires,
    )


async def test_a_handle_is_found_by_its_owner_only_and_until_it_expires(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        tasks = TaskStore(store)
        await tasks.add(handle("a", "alice", created=100.0, expires=200.0), now=100.0)
        found = await tasks.get("a", "alice", now=150.0)
        assert found is not None and found.upstream_id == "up-a" and found.server == "jobs"
        assert await tasks.get("a", "mallory", now=150.0) is None
        assert await tasks.get("a", "", now=150.0) is None
        assert await tasks.get("a", "alice", now=201.0) is None


async def test_each_owner_lists_only_their_live_tasks_and_expired_ones_are_swept(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        tasks = TaskStore(store)
        await tasks.add(handle("old", "alice", created=1.0, expires=50.0), now=1.0)
        await tasks.add(handle("a1", "alice", created=100.0, expires=500.0), now=100.0)
        await tasks.add(handle("m1", "mallory", created=101.0, expires=500.0), now=101.0)
        await tasks.add(handle("a2", "alice", created=102.0, expires=500.0), now=102.0)
        assert [t.handle for t in await tasks.of_owner("alice", now=103.0)] == ["a1", "a2"]
        assert [t.handle for t in await tasks.of_owner("mallory", now=103.0)] == ["m1"]
        await tasks.set_status("a1", "completed", now=104.0)
        done = await tasks.get("a1", "alice", now=105.0)
        assert done is not None and done.status == "completed" and done.updated_at == 104.0
        rows = await store.read(lambda conn: conn.execute("SELECT handle FROM task_handles").fetchall())
        assert sorted(row[0] for row in rows) == ["a1", "a2", "m1"]  # "old" was swept by a later add
