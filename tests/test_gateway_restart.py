"""A restarted gateway searches at once, from the tool lists it kept, before servers reconnect."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpproxy.config.loader import load_settings
from mcpproxy.gateway import Gateway
from mcpproxy.upstream.base import UpstreamState
from tests.support.gateway import fixture_entry, running_gateway

pytestmark = pytest.mark.anyio


async def test_search_works_right_after_a_restart_from_the_kept_tool_lists(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
        await gw.wait_ready("notes")
        config_path = gw.config_path
    # Second start: the server is disabled, so nothing can connect, yet its last tools are known.
    settings = load_settings(config_path, env={})
    spec = settings.servers["notes"].model_copy(update={"enabled": False})
    async with Gateway(settings.with_servers({"notes": spec}), config_path=None) as gateway:
        hits = gateway.search("add two numbers", 3)
        assert hits and hits[0].entry.key == "notes:add"
        assert all(s.state is not UpstreamState.READY for s in gateway.statuses())


async def test_a_removed_server_leaves_nothing_behind_in_the_store(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
        await gw.wait_ready("notes")
        await gw.gateway.state.remove("notes")
        assert await gw.gateway.tool_store.load_tools() == {}
        assert not gw.gateway.search("add two numbers", 3)
