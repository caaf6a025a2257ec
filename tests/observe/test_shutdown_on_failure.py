"""A gateway whose core fails while serving stops serving, instead of answering 503 forever."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import anyio
import httpx2
import pytest
import uvicorn

from mcpproxy.app import build_app
from mcpproxy.cli.serve import bind_socket
from mcpproxy.config.loader import load_settings
from mcpproxy.gateway import Gateway
from mcpproxy.observe.shutdown import DrainingServer
from tests.support.gateway import _no_signal_capture, write_config

pytestmark = pytest.mark.anyio

WAIT = 60.0


async def test_when_a_background_task_of_the_gateway_fails_the_http_server_stops_too(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    settings = load_settings(path, env={})
    gateway = Gateway(settings, config_path=path, watch_config=False)
    server = DrainingServer(
        uvicorn.Config(build_app(gateway), log_config=None, lifespan="on", access_log=False), gateway
    )
    server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
    base = f"http://{settings.listen}"

    async def fails() -> None:
        raise RuntimeError("a background task failed")

    with bind_socket(settings) as sock, anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            await gateway.entered.wait()
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.01)
            async with httpx2.AsyncClient() as http:
                assert (await http.get(base + "/readyz")).status_code == 200
            # No request can make a background task fail any more (the activity writer did, on an
            # argument holding an unpaired surrogate): the fault is injected into the gateway's own
            # task group, where the writer, the watcher and the searcher run.
            assert gateway._tg is not None
            gateway._tg.start_soon(fails)
        # server.serve returned on its own: the task group above could only end that way.
    assert gateway.fatal is not None and "a background task failed" in repr(gateway.fatal)
    async with httpx2.AsyncClient() as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(base + "/healthz")


async def test_a_gateway_cancelled_from_outside_is_stopped_not_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path, {})
    gateway = Gateway(load_settings(path, env={}), config_path=path, watch_config=False)
    app = build_app(gateway)
    with anyio.fail_after(WAIT):
        # The app's lifespan, cancelled while serving: what an embedding program's task group does
        # on its way out (uvicorn's lifespan task is cancelled that way when its loop ends).
        with anyio.CancelScope() as scope:
            async with app.router.lifespan_context(app):
                assert gateway.entered.is_set()
                scope.cancel()
                await anyio.sleep_forever()
    # A stop asked for: no fatal error, and no critical line that a supervisor or an alert would
    # read as a crash.
    assert gateway.fatal is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL] == []
