"""The config watcher: real changes reload, everything else does not."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcpproxy.config.loader import load_settings
from mcpproxy.config.watch import ConfigWatcher, WatchOutcome, watch_config
from mcpproxy.config.writer import render_config, write_config_atomic
from mcpproxy.errors import ConfigError
from mcpproxy.settings import Settings

WAIT = 5.0


@dataclass
class Recorder:
    """Collects what the watcher reports, in order."""

    changes: list[Settings] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    send: MemoryObjectSendStream[WatchOutcome] = field(init=False)
    outcomes: MemoryObjectReceiveStream[WatchOutcome] = field(init=False)

    def __post_init__(self) -> None:
        self.send, self.outcomes = anyio.create_memory_object_stream[WatchOutcome](100)

    def close(self) -> None:
        self.send.close()
        self.outcomes.close()

    async def on_change(self, settings: Settings) -> None:
        self.changes.append(settings)

    async def on_error(self, error: ConfigError) -> None:
        self.errors.append(error)

    async def on_outcome(self, outcome: WatchOutcome) -> None:
        await self.send.send(outcome)

    async def next_outcome_other_than_unchanged(self) -> WatchOutcome:
        with anyio.fail_after(WAIT):
            async for outcome in self.outcomes:
                if outcome != "unchanged":
                    return outcome
        raise AssertionError("the outcome stream ended")


@asynccontextmanager
async def running_watcher(path: Path, recorder: Recorder) -> AsyncIterator[ConfigWatcher]:
    watcher = ConfigWatcher(
        path,
        recorder.on_change,
        recorder.on_error,
        load=lambda: load_settings(path, env={}),
        on_outcome=recorder.on_outcome,
        step_ms=20,
    )
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(WAIT):
            await tg.start(watcher.run)
        yield watcher
        tg.cancel_scope.cancel()


def plain_write(path: Path, data: dict[str, object]) -> None:
    # An in-place write, the way some editors save (same inode).
    with path.open("w") as handle:
        json.dump(data, handle)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp_config.json"
    write_config_atomic(path, {"tools_limit": 5})
    return path


@pytest.mark.anyio
async def test_an_edit_calls_on_change_with_the_new_settings(config: Path, recorder: Recorder) -> None:
    async with running_watcher(config, recorder):
        plain_write(config, {"tools_limit": 9})
        assert await recorder.next_outcome_other_than_unchanged() == "changed"
    assert [s.tools_limit for s in recorder.changes] == [9]
    assert recorder.errors == []


@pytest.mark.anyio
async def test_an_invalid_edit_calls_on_error_and_keeps_the_running_config(config: Path, recorder: Recorder) -> None:
    async with running_watcher(config, recorder):
        await anyio.Path(config).write_text('{"tools_limit": 5,\n "bogus": 1}')
        assert await recorder.next_outcome_other_than_unchanged() == "invalid"
        # Putting the running content back is not a change either.
        write_config_atomic(config, {"tools_limit": 5})
        plain_write(config, {"tools_limit": 6})
        assert await recorder.next_outcome_other_than_unchanged() == "changed"
    assert [e.key for e in recorder.errors] == ["bogus"]
    assert recorder.errors[0].line == 2
    assert [s.tools_limit for s in recorder.changes] == [6]


@pytest.mark.anyio
async def test_an_announced_own_write_does_not_reload(config: Path, recorder: Recorder) -> None:
    async with running_watcher(config, recorder) as watcher:
        own = {"tools_limit": 7}
        watcher.expect(render_config(own))
        write_config_atomic(config, own)
        assert await recorder.next_outcome_other_than_unchanged() == "own_write"
        plain_write(config, {"tools_limit": 8})
        assert await recorder.next_outcome_other_than_unchanged() == "changed"
    assert [s.tools_limit for s in recorder.changes] == [8]


@pytest.mark.anyio
async def test_a_file_replaced_by_an_atomic_rename_is_noticed(config: Path, recorder: Recorder) -> None:
    async with running_watcher(config, recorder):
        temporary = config.with_name("editor-save.tmp")
        temporary.write_text('{"log_level": "debug"}')
        os.replace(temporary, config)
        assert await recorder.next_outcome_other_than_unchanged() == "changed"
        # The new inode is watched too.
        plain_write(config, {"log_level": "error"})
        assert await recorder.next_outcome_other_than_unchanged() == "changed"
    assert [s.log_level for s in recorder.changes] == ["debug", "error"]


@pytest.mark.anyio
async def test_other_files_in_the_directory_are_ignored_and_removal_is_an_error(
    config: Path, recorder: Recorder
) -> None:
    async with running_watcher(config, recorder):
        await anyio.Path(config.parent / "unrelated.json").write_text("{}")
        await anyio.Path(config).unlink()
        assert await recorder.next_outcome_other_than_unchanged() == "missing"
    assert recorder.changes == []
    assert "was removed" in recorder.errors[0].message


@pytest.mark.anyio
async def test_watch_config_stops_when_the_stop_event_is_set(config: Path, recorder: Recorder) -> None:
    stop = anyio.Event()
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: watch_config(config, recorder.on_change, recorder.on_error, load=lambda: Settings(), stop=stop)
            )
            stop.set()
    assert recorder.changes == []
