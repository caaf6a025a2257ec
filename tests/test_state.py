"""The state service against a real config file: every change persisted, nothing else touched."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpproxy.config.writer import render_config
from mcpproxy.errors import ConfigError, Conflict, StoreError, UnknownServer
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.state import StateService, spec_from_entry

ORIGINAL: dict[str, Any] = {
    "listen": "127.0.0.1:9999",
    "tools_limit": 7,
    "mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "autoApprove": ["get_current_time"]},
        "docs": {
            "url": "https://docs.example.com/mcp",
            "headers": {"X-Key": "k"},
            "alwaysAllow": [],
            "timeout": 60,
        },
        "fs": {"disabled": False, "command": "npx", "cwd": "/srv", "args": ["-y", "fs-server", "/srv"]},
    },
    "log_level": "debug",
}


@dataclass
class Recorder:
    changes: list[tuple[dict[str, ServerSpec], dict[str, ServerSpec]]] = field(default_factory=list)
    writes: list[bytes] = field(default_factory=list)

    async def on_change(self, old: dict[str, ServerSpec], new: dict[str, ServerSpec]) -> None:
        self.changes.append((old, new))

    def expect_write(self, content: bytes) -> None:
        self.writes.append(content)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mcp_config.json"
    path.write_bytes(render_config(ORIGINAL))
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def service_for(path: Path, recorder: Recorder, data: dict[str, Any] | None = None) -> StateService:
    settings = Settings.model_validate(data if data is not None else json.loads(path.read_text("utf-8")))
    return StateService(settings, path, on_change=recorder.on_change, expect_write=recorder.expect_write)


@pytest.fixture
def service(config_file: Path, recorder: Recorder) -> StateService:
    return service_for(config_file, recorder)


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def content(path: Path) -> bytes:
    return path.read_bytes()


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


def on_disk(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def entry_text(name: str, entry: dict[str, Any]) -> str:
    """How ``render_config`` lays out one ``mcpServers`` entry (indented under the key)."""
    block = json.dumps({name: entry}, indent=2, ensure_ascii=False)
    return "\n".join("  " + line for line in block.splitlines()[1:-1])


def stdio(name: str, command: str = "uvx", *args: str) -> ServerSpec:
    return ServerSpec.model_validate({"name": name, "command": command, "args": list(args)})


# --- add ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_adding_a_server_writes_it_to_the_file_and_tells_the_gateway(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    before = service.servers
    spec = stdio("git", "uvx", "mcp-server-git")
    assert await service.add(spec) == spec

    assert on_disk(config_file)["mcpServers"]["git"] == {"command": "uvx", "args": ["mcp-server-git"]}
    assert service.get("git") == spec
    assert recorder.changes == [(before, {**before, "git": spec})]


@pytest.mark.anyio
async def test_adding_a_server_leaves_no_temporary_file_and_keeps_the_file_private(
    service: StateService, config_file: Path
) -> None:
    await service.add(stdio("git"))
    assert listing(config_file.parent) == ["mcp_config.json"]
    if os.name == "posix":
        assert mode_of(config_file) == 0o600


@pytest.mark.anyio
async def test_the_watcher_is_told_exactly_the_bytes_that_end_up_in_the_file(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    await service.add(stdio("git"))
    assert recorder.writes == [content(config_file)]
    await service.set_enabled("time", False)
    await service.update("docs", {"trust": "auto"})
    await service.remove("fs")
    assert len(recorder.writes) == 4
    assert recorder.writes[-1] == content(config_file)


@pytest.mark.anyio
async def test_adding_a_server_that_exists_is_a_conflict_and_changes_nothing(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    before = content(config_file)
    with pytest.raises(Conflict) as info:
        await service.add(stdio("time", "other"))
    assert info.value.data == {"server": "time"}
    assert content(config_file) == before
    assert service.get("time").command == "uvx"
    assert recorder.changes == []
    assert recorder.writes == []


@pytest.mark.anyio
async def test_a_failed_write_leaves_the_file_and_the_running_state_unchanged(
    service: StateService, config_file: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = content(config_file)

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mcpproxy.store.files.os.replace", refuse)
    with pytest.raises(StoreError):
        await service.add(stdio("git"))
    assert content(config_file) == before
    assert "git" not in service.servers
    assert recorder.changes == []
    assert listing(config_file.parent) == ["mcp_config.json"]


@pytest.mark.anyio
async def test_a_missing_config_file_is_created(tmp_path: Path, recorder: Recorder) -> None:
    path = tmp_path / "new" / "mcp_config.json"
    service = StateService(Settings(), path, on_change=recorder.on_change, expect_write=recorder.expect_write)
    await service.add(stdio("time", "uvx", "mcp-server-time"))
    assert on_disk(path) == {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}}


@pytest.mark.anyio
async def test_a_gateway_without_a_config_file_applies_changes_in_memory_only(
    tmp_path: Path, recorder: Recorder
) -> None:
    service = StateService(Settings(), None, on_change=recorder.on_change, expect_write=recorder.expect_write)
    await service.add(stdio("time"))
    assert list(service.servers) == ["time"]
    assert len(recorder.changes) == 1
    assert recorder.writes == []
    assert listing(tmp_path) == []


@pytest.mark.anyio
async def test_an_unreadable_config_file_is_rewritten_from_the_running_config(
    config_file: Path, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    service = service_for(config_file, recorder)
    write(config_file, b"{ not json")
    with caplog.at_level(logging.WARNING, logger="mcpproxy.state"):
        await service.add(stdio("git"))
    assert set(on_disk(config_file)["mcpServers"]) == {"time", "docs", "fs", "git"}
    assert any("unreadable" in r.getMessage() for r in caplog.records)


# --- other entries and settings stay as they were ---------------------------------------


@pytest.mark.anyio
async def test_other_entries_keep_their_exact_text_after_an_unrelated_change(
    service: StateService, config_file: Path
) -> None:
    await service.add(stdio("git"))
    await service.set_enabled("time", False)
    text = content(config_file).decode("utf-8")
    servers = on_disk(config_file)["mcpServers"]
    for name in ("docs", "fs"):
        assert servers[name] == ORIGINAL["mcpServers"][name]
        assert list(servers[name]) == list(ORIGINAL["mcpServers"][name])
        assert entry_text(name, ORIGINAL["mcpServers"][name]) in text
    assert servers["docs"]["alwaysAllow"] == []
    assert servers["docs"]["timeout"] == 60
    assert servers["fs"]["cwd"] == "/srv"


@pytest.mark.anyio
async def test_unknown_keys_of_other_servers_survive_a_removal(service: StateService, config_file: Path) -> None:
    await service.remove("docs")
    servers = on_disk(config_file)["mcpServers"]
    assert servers["time"] == ORIGINAL["mcpServers"]["time"]
    assert servers["time"]["autoApprove"] == ["get_current_time"]


@pytest.mark.anyio
async def test_a_changed_entry_keeps_the_keys_other_clients_put_in_it(service: StateService, config_file: Path) -> None:
    # Disabling a server from mcpproxy must not cost another client its settings for that server.
    await service.set_enabled("time", False)
    await service.update("docs", {"headers": {"X-Key": "new"}})
    servers = on_disk(config_file)["mcpServers"]
    assert servers["time"] == {**ORIGINAL["mcpServers"]["time"], "enabled": False}
    assert servers["docs"]["alwaysAllow"] == [] and servers["docs"]["timeout"] == 60
    assert servers["docs"]["headers"] == {"X-Key": "new"}
    # Read back, they are still only set aside: mcpproxy itself does not use them.
    assert service_for(config_file, Recorder()).servers["docs"].extra_keys == ("alwaysAllow", "timeout")


@pytest.mark.anyio
async def test_top_level_settings_in_the_file_are_preserved_in_order(service: StateService, config_file: Path) -> None:
    await service.add(stdio("git"))
    data = on_disk(config_file)
    assert list(data) == ["listen", "tools_limit", "mcpServers", "log_level"]
    assert (data["listen"], data["tools_limit"], data["log_level"]) == ("127.0.0.1:9999", 7, "debug")


@pytest.mark.anyio
async def test_server_order_in_the_file_is_kept_and_new_servers_go_last(
    service: StateService, config_file: Path
) -> None:
    await service.add(stdio("aaa"))
    await service.update("time", {"args": ["mcp-server-time", "--local-timezone", "UTC"]})
    assert list(on_disk(config_file)["mcpServers"]) == ["time", "docs", "fs", "aaa"]


@pytest.mark.anyio
async def test_a_file_using_the_servers_key_keeps_other_entries_unknown_keys(
    tmp_path: Path, recorder: Recorder
) -> None:
    path = tmp_path / "mcp_config.json"
    original = {"servers": {"time": {"command": "uvx", "autoApprove": ["x"]}}}
    write(path, render_config(original))
    service = service_for(path, recorder)
    await service.add(stdio("git"))
    data = on_disk(path)
    assert "servers" not in data
    assert data["mcpServers"]["time"] == {"command": "uvx", "autoApprove": ["x"]}
    assert data["mcpServers"]["git"] == {"command": "uvx"}


# --- remove / update / enable -------------------------------------------------------------


@pytest.mark.anyio
async def test_removing_a_server_drops_it_from_file_and_running_state(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    before = service.servers
    await service.remove("time")
    assert list(on_disk(config_file)["mcpServers"]) == ["docs", "fs"]
    assert "time" not in service.servers
    assert recorder.changes == [(before, {k: v for k, v in before.items() if k != "time"})]


@pytest.mark.anyio
async def test_removing_an_unknown_server_is_refused_and_changes_nothing(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    before = content(config_file)
    with pytest.raises(UnknownServer):
        await service.remove("nope")
    assert content(config_file) == before
    assert recorder.changes == []


@pytest.mark.anyio
async def test_disabling_a_server_writes_enabled_false(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    spec = await service.set_enabled("time", False)
    assert spec.enabled is False
    assert on_disk(config_file)["mcpServers"]["time"]["enabled"] is False
    old, new = recorder.changes[-1]
    assert old["time"].enabled is True
    assert new["time"].enabled is False
    assert new["docs"] is old["docs"]


@pytest.mark.anyio
async def test_reenabling_a_server_removes_the_flag_from_the_file(service: StateService, config_file: Path) -> None:
    await service.set_enabled("time", False)
    await service.set_enabled("time", True)
    assert "enabled" not in on_disk(config_file)["mcpServers"]["time"]
    assert service.get("time").enabled is True


@pytest.mark.anyio
async def test_updating_a_server_merges_the_changes_into_its_entry(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    spec = await service.update("docs", {"headers": {"X-Key": "new"}, "call_timeout": 5})
    assert spec.url == "https://docs.example.com/mcp"
    assert spec.headers == {"X-Key": "new"}
    assert spec.call_timeout == 5
    assert on_disk(config_file)["mcpServers"]["docs"] == {
        "url": "https://docs.example.com/mcp",
        "headers": {"X-Key": "new"},
        "call_timeout": 5,
        "alwaysAllow": [],  # another client's keys stay in the entry
        "timeout": 60,
    }
    assert recorder.changes[-1][1]["docs"] == spec


@pytest.mark.anyio
async def test_updating_with_config_file_spellings_replaces_the_canonical_keys(service: StateService) -> None:
    spec = await service.update("fs", {"cwd": "/elsewhere", "disabled": True})
    assert spec.working_dir == "/elsewhere"
    assert spec.enabled is False


@pytest.mark.anyio
async def test_updating_an_unknown_server_is_refused(service: StateService) -> None:
    with pytest.raises(UnknownServer):
        await service.update("nope", {"trust": "auto"})


@pytest.mark.anyio
async def test_a_server_cannot_be_renamed_by_an_update(service: StateService, config_file: Path) -> None:
    before = content(config_file)
    with pytest.raises(ConfigError) as info:
        await service.update("time", {"name": "clock"})
    assert info.value.key == "name"
    assert content(config_file) == before


@pytest.mark.anyio
async def test_an_update_that_repeats_the_name_is_allowed(service: StateService) -> None:
    spec = await service.update("time", {"name": "time", "trust": "scan"})
    assert (spec.name, spec.trust) == ("time", "scan")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"call_timeout": -1}, "mcpServers.time.call_timeout"),
        ({"trust": "always"}, "mcpServers.time.trust"),
        ({"args": "not-a-list"}, "mcpServers.time.args"),
        ({"url": "https://example.com/mcp"}, "mcpServers.time"),
        ({"disabled": "yes"}, "mcpServers.time"),
    ],
)
async def test_a_bad_update_names_the_key_and_changes_nothing(
    service: StateService, config_file: Path, recorder: Recorder, changes: dict[str, Any], key: str
) -> None:
    before_file = content(config_file)
    before_servers = service.servers
    with pytest.raises(ConfigError) as info:
        await service.update("time", changes)
    assert info.value.key == key
    assert key in info.value.message
    assert info.value.data["key"] == key
    assert content(config_file) == before_file
    assert service.servers == before_servers
    assert recorder.changes == []
    assert recorder.writes == []


def test_spec_from_entry_names_the_server_in_the_message() -> None:
    with pytest.raises(ConfigError) as info:
        spec_from_entry("time", {"command": "uvx", "connect_timeout": 0})
    assert info.value.key == "mcpServers.time.connect_timeout"
    assert info.value.message.startswith("invalid server 'time' at mcpServers.time.connect_timeout: ")


def test_getting_an_unknown_server_says_where_to_look(service: StateService) -> None:
    with pytest.raises(UnknownServer) as info:
        service.get("nope")
    assert info.value.hint is not None and "mcpproxy upstream list" in info.value.hint


# --- file edits and concurrency -----------------------------------------------------------


@pytest.mark.anyio
async def test_adopting_an_edited_file_applies_it_without_writing(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    before_file = content(config_file)
    old = service.servers
    edited = Settings.model_validate({"mcpServers": {"time": {"command": "uvx", "args": ["other"]}}})
    await service.apply_file(edited)
    assert service.servers == edited.servers
    assert recorder.changes == [(old, dict(edited.servers))]
    assert recorder.writes == []
    assert content(config_file) == before_file
    assert service.settings.listen == "127.0.0.1:9999"


@pytest.mark.anyio
async def test_concurrent_adds_all_land_in_the_file_and_the_running_state(
    service: StateService, config_file: Path, recorder: Recorder
) -> None:
    names = [f"srv{i:02d}" for i in range(12)]
    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(service.add, stdio(name, "uvx", name))
    servers = on_disk(config_file)["mcpServers"]
    assert set(names) <= set(servers)
    assert all(servers[n] == {"command": "uvx", "args": [n]} for n in names)
    assert set(names) <= set(service.servers)
    assert len(recorder.changes) == len(names)
    assert all(len(new) == len(old) + 1 for old, new in recorder.changes)
    assert recorder.writes[-1] == content(config_file)
    for name in ("time", "docs", "fs"):
        assert servers[name] == ORIGINAL["mcpServers"][name]


@pytest.mark.anyio
async def test_concurrent_adds_of_the_same_name_let_exactly_one_win(service: StateService, config_file: Path) -> None:
    outcomes: list[str] = []

    async def attempt(i: int) -> None:
        try:
            await service.add(stdio("dup", "uvx", str(i)))
            outcomes.append("added")
        except Conflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(attempt, i)
    assert sorted(outcomes) == ["added"] + ["conflict"] * 9
    assert on_disk(config_file)["mcpServers"]["dup"]["args"] == list(service.get("dup").args)
