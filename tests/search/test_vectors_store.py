"""Search data in the database: vectors by model and tool hash, usage counts per client."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpproxy.store.db import Store
from mcpproxy.store.vectors import SearchStore, StoredVector, text_hash

pytestmark = pytest.mark.anyio


async def test_vectors_are_kept_per_model_and_tool_hash_and_replaced_in_place(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        search = SearchStore(store)
        first = [StoredVector("h1", text_hash("a"), b"\x00\x01"), StoredVector("h2", "t", b"2")]
        await search.save_vectors("m1", first)
        await search.save_vectors("m2", [StoredVector("h1", "t", b"other model")])
        await search.save_vectors("m1", [StoredVector("h1", text_hash("b"), b"\x09")])
        found = await search.vectors("m1", ["h1", "h2", "h3"])
        assert found["h1"] == StoredVector("h1", text_hash("b"), b"\x09")
        assert set(found) == {"h1", "h2"}
        assert (await search.vectors("m2", ["h1"]))["h1"].vector == b"other model"


async def test_pruning_keeps_only_the_given_hashes_of_one_model(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        search = SearchStore(store)
        await search.save_vectors("m", [StoredVector(f"h{i}", "t", b"v") for i in range(5)])
        await search.save_vectors("other", [StoredVector("h0", "t", b"v")])
        assert await search.prune_vectors("m", ["h1", "h3"]) == 3
        assert set(await search.vectors("m", [f"h{i}" for i in range(5)])) == {"h1", "h3"}
        assert set(await search.vectors("other", ["h0"])) == {"h0"}


async def test_usage_counts_add_up_per_client_and_can_be_forgotten(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        search = SearchStore(store)
        for _ in range(3):
            await search.record_usage("alice", "weather", "get_forecast")
        await search.record_usage("bob", "weather", "get_forecast")
        await search.record_usage("bob", "files", "write_file")
        assert await search.usage() == [
            ("alice", "weather:get_forecast", 3),
            ("bob", "files:write_file", 1),
            ("bob", "weather:get_forecast", 1),
        ]
        await search.forget_server("files")
        await search.forget_usage("alice")
        assert await search.usage() == [("bob", "weather:get_forecast", 1)]
        await search.forget_usage()
        assert await search.usage() == []
