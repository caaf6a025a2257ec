"""Importing servers from Claude Desktop, Claude Code and Cursor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpproxy.config.importer import known_client_configs, merge_servers, read_servers
from mcpproxy.errors import ConfigError
from mcpproxy.settings import ServerSpec, Settings


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def test_known_client_configs_follow_each_platform(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "repo"
    write_json(home / ".cursor" / "mcp.json", {"mcpServers": {}})
    mac = known_client_configs(home, project, platform="darwin", env={})
    assert [(c.client, c.scope) for c in mac] == [
        ("claude-desktop", "user"),
        ("claude-code", "user"),
        ("cursor", "user"),
        ("claude-code", "project"),
        ("cursor", "project"),
    ]
    assert mac[0].path == home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    assert [c.exists for c in mac] == [False, False, True, False, False]
    assert mac[3].path == project / ".mcp.json"
    assert mac[4].path == project / ".cursor" / "mcp.json"
    linux = known_client_configs(home, None, platform="linux", env={})
    assert linux[0].path == home / ".config" / "Claude" / "claude_desktop_config.json"
    assert len(linux) == 3
    windows = known_client_configs(home, None, platform="win32", env={"APPDATA": str(tmp_path / "roaming")})
    assert windows[0].path == tmp_path / "roaming" / "Claude" / "claude_desktop_config.json"


def test_claude_desktop_servers_are_read(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "claude_desktop_config.json",
        {
            "mcpServers": {
                "filesystem": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/files"],
                    "env": {"DEBUG": "1"},
                }
            },
            "globalShortcut": "Ctrl+Space",
        },
    )
    servers, skipped = read_servers(path, "claude-desktop")
    assert skipped == []
    assert servers["filesystem"].command == "npx"
    assert servers["filesystem"].env == {"DEBUG": "1"}


def test_claude_code_user_and_project_servers_are_read(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / ".claude.json",
        {
            "numStartups": 3,
            "mcpServers": {"time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"]}},
            "projects": {
                "/projects/alpha": {
                    "mcpServers": {
                        "docs": {"type": "http", "url": "https://example.com/mcp", "headers": {"X": "1"}},
                        "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"]},
                    }
                },
                "/projects/beta": {
                    "mcpServers": {
                        "events": {"type": "sse", "url": "https://example.com/events"},
                        "time": {"command": "other-time"},
                    }
                },
                "/projects/gamma": {"allowedTools": []},
            },
        },
    )
    servers, skipped = read_servers(path, "claude-code")
    assert sorted(servers) == ["docs", "events", "time"]
    assert servers["docs"].transport == "http"
    assert servers["docs"].headers == {"X": "1"}
    assert servers["events"].transport == "sse"
    assert servers["time"].command == "uvx"
    assert [(s.name, s.key) for s in skipped] == [("time", "projects./projects/beta.mcpServers.time")]
    assert "already defined at mcpServers.time" in skipped[0].reason

    only_b, _ = read_servers(path, "claude-code", project="/projects/beta/")
    assert sorted(only_b) == ["events", "time"]


def test_a_project_mcp_json_and_cursor_files_are_read(tmp_path: Path) -> None:
    project_file = write_json(
        tmp_path / "repo" / ".mcp.json", {"mcpServers": {"db": {"command": "db-mcp", "cwd": "/srv"}}}
    )
    servers, _ = read_servers(project_file, "claude-code")
    assert servers["db"].working_dir == "/srv"
    cursor_file = write_json(
        tmp_path / ".cursor" / "mcp.json",
        {"mcpServers": {"web": {"url": "https://example.com/sse", "disabled": True, "autoApprove": ["x"]}}},
    )
    servers, _ = read_servers(cursor_file, "cursor")
    assert servers["web"].transport == "sse"
    assert servers["web"].enabled is False
    assert servers["web"].extra_keys == ("autoApprove",)


def test_invalid_entries_are_skipped_with_reasons_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        "{\n"
        '  "mcpServers": {\n'
        '    "good": {"command": "ok"},\n'
        '    "no-transport": {"args": []},\n'
        '    "bad-args": {"command": "x",\n'
        '      "args": "one"},\n'
        '    "bad name!": {"command": "x"},\n'
        '    "scalar": 3\n'
        "  }\n"
        "}\n"
    )
    servers, skipped = read_servers(path)
    assert list(servers) == ["good"]
    by_name = {entry.name: entry for entry in skipped}
    assert by_name["no-transport"].line == 4
    assert "needs either 'command'" in by_name["no-transport"].reason
    assert by_name["bad-args"].line == 6
    assert by_name["bad-args"].reason == "args: Input should be a valid list"
    assert by_name["bad name!"].line == 7
    assert by_name["scalar"].reason == "the entry is not a JSON object"


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_servers(tmp_path / "absent.json", "cursor")
    broken = tmp_path / "broken.json"
    broken.write_text('{"mcpServers": {\n}')
    with pytest.raises(ConfigError) as info:
        read_servers(broken)
    assert info.value.line == 2


def stdio(name: str, command: str) -> ServerSpec:
    return ServerSpec(name=name, transport="stdio", command=command)


@pytest.mark.parametrize(
    ("policy", "expected_time", "expected_names"),
    [
        ("skip", "old", ["new", "same", "time"]),
        ("replace", "incoming", ["new", "same", "time"]),
        ("rename", "old", ["new", "same", "time", "time-2"]),
    ],
)
def test_merging_follows_the_conflict_policy(policy: str, expected_time: str, expected_names: list[str]) -> None:
    existing = Settings(servers={"time": stdio("time", "old"), "same": stdio("same", "s")})
    incoming = {"time": stdio("time", "incoming"), "same": stdio("same", "s"), "new": stdio("new", "n")}
    merged, report = merge_servers(existing, incoming, policy)  # type: ignore[arg-type]
    assert sorted(merged.servers) == expected_names
    assert merged.servers["time"].command == expected_time
    assert report.added == ["new"]
    assert report.unchanged == ["same"]
    if policy == "rename":
        assert report.renamed == {"time": "time-2"}
        assert merged.servers["time-2"].name == "time-2"
        assert merged.servers["time-2"].command == "incoming"
    assert report.skipped == (["time"] if policy == "skip" else [])
    assert report.replaced == (["time"] if policy == "replace" else [])
    assert existing.servers["time"].command == "old"
