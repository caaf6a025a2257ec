"""Atomic, private writes of the config file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mcpproxy.config.loader import load_settings
from mcpproxy.config.writer import (
    render_config,
    save_settings,
    save_settings_async,
    write_config_atomic,
    write_config_atomic_async,
)
from mcpproxy.errors import StoreError
from mcpproxy.settings import ServerSpec, Settings


def test_the_written_file_is_indented_json_with_a_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "mcp_config.json"
    content = write_config_atomic(path, {"listen": "127.0.0.1:1", "mcpServers": {}})
    assert path.read_bytes() == content == render_config({"listen": "127.0.0.1:1", "mcpServers": {}})
    assert content.endswith(b"}\n")
    assert b'\n  "listen"' in content


def test_the_file_is_private_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "mcp_config.json"
    write_config_atomic(path, {"a": 1})
    write_config_atomic(path, {"a": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["mcp_config.json"]
    assert json.loads(path.read_text()) == {"a": 2}


def test_a_symlinked_config_is_written_through_the_link(tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "mcp.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "mcp_config.json"
    link.symlink_to(target)
    write_config_atomic(link, {"a": 1})
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"a": 1}


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "mcp_config.json"
    write_config_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_config_atomic(path, {"a": object()})
    with pytest.raises(StoreError):
        write_config_atomic(path / "not-a-dir" / "x.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["mcp_config.json"]


def test_saved_settings_load_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "mcp_config.json"
    settings = Settings(
        tools_limit=7,
        servers={
            "time": ServerSpec(name="time", transport="stdio", command="uvx", args=("mcp-server-time",)),
            "legacy": ServerSpec(name="legacy", transport="sse", url="https://example.com/events"),
        },
    )
    save_settings(path, settings)
    assert load_settings(path, env={}) == settings


@pytest.mark.anyio
async def test_the_async_writers_produce_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "mcp_config.json"
    content = await write_config_atomic_async(path, {"a": 1})
    assert path.read_bytes() == content
    await save_settings_async(path, Settings(tools_limit=3))
    assert load_settings(path, env={}).tools_limit == 3
