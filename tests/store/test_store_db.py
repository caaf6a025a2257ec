"""The SQLite store: opening, migrations, transactions and concurrency."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import anyio
import pytest

from mcpproxy.errors import StoreError
from mcpproxy.store.db import Store
from mcpproxy.store.migrations import SCHEMA_VERSION, migrate, split_statements, user_version
from mcpproxy.store.tools import ToolStore

WAIT = 10.0


def tables(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


@pytest.mark.anyio
async def test_a_new_store_is_created_private_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mcpproxy.db"
    async with Store(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.read(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
        # Every feature's tables exist in a fresh store (the tool tables first came in migration 1).
        assert {"server_state", "tool_snapshots", "tool_stats", "server_approvals", "tool_pins",
                "agent_tokens", "task_handles"} <= set(await store.read(tables))
        assert await store.integrity_check()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.anyio
async def test_migrations_are_idempotent_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "mcpproxy.db"
    async with Store(path) as store:
        await ToolStore(store).record_call("s", "t", True, 1.0)
    async with Store(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        assert [s.calls for s in await ToolStore(store).tool_stats()] == [1]


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    good = "CREATE TABLE a (x); CREATE TABLE b (y);"
    bad = "CREATE TABLE c (z); INSERT INTO missing VALUES (1);"
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, tmp_path / "m.db", (good, bad))
    assert user_version(conn) == 1
    assert tables(conn) == ["a", "b"]
    assert migrate(conn, tmp_path / "m.db", (good,)) == 1
    conn.close()


def test_statements_are_split_without_breaking_strings_or_triggers() -> None:
    script = """
        CREATE TABLE t (x TEXT);
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t WHERE x = ';'; END;
    """
    assert [s.split()[0] for s in split_statements(script)] == ["CREATE", "INSERT", "CREATE"]
    assert split_statements(script)[2].endswith("END;")


@pytest.mark.anyio
async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mcpproxy.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this mcpproxy"):
        async with Store(path):
            pass


@pytest.mark.anyio
async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "mcpproxy.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an mcpproxy database"):
        async with Store(path):
            pass


@pytest.mark.anyio
async def test_a_write_that_raises_is_rolled_back(tmp_path: Path) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO server_state (server, last_state) VALUES ('s', 'ready')")
        raise KeyError("boom")

    async with Store(tmp_path / "mcpproxy.db") as store:
        with pytest.raises(KeyError):
            await store.execute_write(insert_then_fail)
        assert await ToolStore(store).server_states() == {}
        with pytest.raises(StoreError, match="database error"):
            await store.execute_write(lambda conn: conn.execute("INSERT INTO nowhere VALUES (1)"))


@pytest.mark.anyio
async def test_reads_cannot_write(tmp_path: Path) -> None:
    async with Store(tmp_path / "mcpproxy.db") as store:
        with pytest.raises(StoreError):
            await store.read(lambda conn: conn.execute("DELETE FROM tool_stats"))


@pytest.mark.anyio
async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = Store(tmp_path / "mcpproxy.db")
    async with store:
        pass
    with pytest.raises(StoreError, match="closed"):
        await store.read(lambda conn: 1)
    with pytest.raises(StoreError, match="closed"):
        await store.execute_write(lambda conn: 1)


@pytest.mark.anyio
async def test_concurrent_writers_from_many_tasks_serialise_without_lock_errors(tmp_path: Path) -> None:
    tasks, calls_each = 30, 20
    async with Store(tmp_path / "mcpproxy.db") as store:
        tools = ToolStore(store)

        async def caller(index: int) -> None:
            for call in range(calls_each):
                await tools.record_call("srv", f"tool{index % 4}", ok=call % 5 != 0, duration_ms=2.0)
                if call % 5 == 0:
                    await tools.tool_stats("srv")

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                for index in range(tasks):
                    tg.start_soon(caller, index)
        stats = await tools.tool_stats("srv")
    assert sum(s.calls for s in stats) == tasks * calls_each
    assert sum(s.errors for s in stats) == tasks * calls_each // 5
    assert sum(s.total_ms for s in stats) == pytest.approx(2.0 * tasks * calls_each)


@pytest.mark.anyio
async def test_two_stores_on_one_file_wait_for_each_other_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "mcpproxy.db"
    async with Store(path) as first, Store(path) as second:
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                for store in (first, second) * 10:
                    tg.start_soon(ToolStore(store).record_call, "s", "t", True, 1.0)
        assert [s.calls for s in await ToolStore(first).tool_stats()] == [20]
