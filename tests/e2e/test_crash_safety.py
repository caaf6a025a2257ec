"""kill -9 of ``mcpproxy serve`` in the middle of config writes loses nothing it acknowledged and
corrupts nothing.

A real ``mcpproxy serve`` process takes a storm of REST writes (adds of disabled servers, so
nothing connects, each followed by a PATCH); after a chosen number of writes have been
acknowledged it gets SIGKILL while other requests are still in flight. Then the config file
must parse and validate, hold every acknowledged change, and the SQLite database must pass
``PRAGMA integrity_check``; a new ``mcpproxy serve`` on the same files must start and report
the servers the file lists. Three kills, at three different moments, on the same files.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.support.gateway import mcpproxy_argv, mcpproxy_process, write_config

from mcpproxy.config.loader import load_settings
from mcpproxy.endpoints.rest import API_KEY_FILE
from mcpproxy.gateway import DB_FILE_NAME

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics are POSIX"),
]

KILL_AFTER = (1, 9, 25)
"""Acknowledged writes before each kill: right at the start, early, and well into the storm."""
WORKERS = 4
ROUND_WAIT = 60.0

DORMANT: dict[str, Any] = {"command": "never-started-mcp-server", "args": ["--stdio"], "enabled": False}


def file_servers(config: Path) -> dict[str, Any]:
    """The servers of the config file, after checking it parses and validates as a whole."""
    raw = json.loads(config.read_text(encoding="utf-8"))
    settings = load_settings(config, env={})
    servers: dict[str, Any] = raw["mcpServers"]
    assert set(settings.servers) == set(servers)
    return servers


def check_database(database: Path) -> None:
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


class Storm:
    """Concurrent add-then-patch writers; remembers what the gateway acknowledged."""

    def __init__(self, client: httpx2.AsyncClient, prefix: str, acknowledged: dict[str, str | None]) -> None:
        self.client = client
        self.prefix = prefix
        self.acknowledged = acknowledged
        self.count = 0
        self._reached: dict[int, anyio.Event] = {}

    async def reached(self, count: int) -> None:
        if self.count < count:
            await self._reached.setdefault(count, anyio.Event()).wait()

    def _ack(self) -> None:
        self.count += 1
        event = self._reached.get(self.count)
        if event is not None:
            event.set()

    async def writer(self, worker: int) -> None:
        """Write until the gateway goes away under it."""
        for i in range(10_000):
            name = f"{self.prefix}-w{worker}-{i}"
            try:
                added = await self.client.post("/servers", json={"name": name, **DORMANT})
            except httpx2.TransportError:
                return
            assert added.status_code == 201, added.text
            self.acknowledged[name] = None
            self._ack()
            try:
                patched = await self.client.patch(f"/servers/{name}", json={"description": f"patched {name}"})
            except httpx2.TransportError:
                return
            assert patched.status_code == 200, patched.text
            self.acknowledged[name] = f"patched {name}"
            self._ack()


def check_files(config: Path, database: Path, acknowledged: dict[str, str | None]) -> dict[str, Any]:
    servers = file_servers(config)
    for name, description in acknowledged.items():
        assert name in servers, f"acknowledged add of {name} lost"
        entry = servers[name]
        if description is not None:
            assert entry.get("description") == description, f"acknowledged patch of {name} lost"
        # Unacknowledged writes may or may not have landed, but only whole.
        assert {k: v for k, v in entry.items() if k != "description"} == DORMANT
        assert entry.get("description") in (None, f"patched {name}")
    check_database(database)
    return servers


async def test_kill_9_during_config_writes_loses_nothing_acknowledged_and_corrupts_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"seed": DORMANT})
    data_dir = load_settings(config, env={}).data_path
    database = data_dir / DB_FILE_NAME
    acknowledged: dict[str, str | None] = {"seed": None}

    for round_number, kill_after in enumerate(KILL_AFTER):
        with anyio.fail_after(ROUND_WAIT):
            async with mcpproxy_process(config) as (proc, base_url):
                key = (data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()
                async with httpx2.AsyncClient(
                    base_url=base_url + "/api/v1", headers={"X-API-Key": key}, timeout=30.0
                ) as client:
                    # The restarted gateway serves exactly what the file lists.
                    status = (await client.get("/status")).json()
                    assert {s["name"] for s in status["servers"]} == set(file_servers(config))
                    assert status["config_error"] is None

                    storm = Storm(client, f"r{round_number}", acknowledged)
                    async with anyio.create_task_group() as tg:
                        for worker in range(WORKERS):
                            tg.start_soon(storm.writer, worker)
                        await storm.reached(kill_after)
                        proc.kill()  # SIGKILL, with the other writers' requests in flight
                    assert await proc.wait() == -9
        check_files(config, database, acknowledged)

    # A last start on the same files: the CLI's status lists what the file lists.
    with anyio.fail_after(ROUND_WAIT):
        async with mcpproxy_process(config):
            done = await anyio.run_process(mcpproxy_argv("--config", str(config), "status", "--json"), check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    status = json.loads(done.stdout)
    servers = check_files(config, database, acknowledged)
    assert {s["name"] for s in status["servers"]} == set(servers)
    assert all(s["state"] == "disabled" and s["enabled"] is False for s in status["servers"])
