"""Graceful shutdown: the HTTP server that drains the gateway on SIGTERM and SIGINT.

uvicorn on a signal stops listening, asks idle connections to close, waits for requests in
flight (``timeout_graceful_shutdown``), then runs the app's lifespan shutdown (which closes the
gateway: upstreams, then the store). :class:`DrainingServer` starts the gateway's drain at the
same moment as uvicorn's wait: new calls are refused with a clear error, calls in flight get
``shutdown_grace`` seconds, and the stragglers are cancelled with an error the client receives
(``overloaded``: mcpproxy is shutting down) instead of a dropped connection. uvicorn's own wait is
set a little longer than the grace so those answers are written before it gives up.

Then the lifespan closes the upstreams (stdio servers: stdin closed, SIGTERM to the process
group, SIGKILL after a bound) and the activity log and statistics are flushed into the store,
which is closed cleanly (WAL checkpointed).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
from typing import TYPE_CHECKING

import anyio
import uvicorn
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from mcpproxy.gateway import Gateway

logger = logging.getLogger(__name__)

EXTRA_WAIT = 3.0
"""Seconds uvicorn waits beyond ``shutdown_grace`` for the cancelled calls' answers to be written."""


def graceful_timeout(gateway: Gateway) -> float:
    """uvicorn's ``timeout_graceful_shutdown`` for ``gateway``."""
    return gateway.settings.shutdown_grace + EXTRA_WAIT


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains ``gateway`` while it stops.

    Args:
        config: The uvicorn configuration.
        gateway: The gateway the app serves.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def on_tick(self, counter: int) -> bool:
        """Also stop when the gateway itself has stopped (``Gateway.fatal``)."""
        return self.gateway.fatal is not None or await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.gateway.ops.drain)
            await super().shutdown(sockets)


async def stop_on_signal(
    gateway: Gateway, scope: anyio.CancelScope, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """For ``serve --stdio`` (no HTTP server to catch signals): on SIGTERM or SIGINT, drain the
    gateway, then cancel ``scope`` so the gateway closes its upstreams and flushes the store."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        logger.info("serving MCP over stdio; SIGTERM or SIGINT stops gracefully")
        task_status.started()
        async for signum in signals:
            logger.info("%s received: draining", signal.Signals(signum).name)
            await gateway.ops.drain()
            scope.cancel()
            return


class CancellableStdin:
    """Lines of standard input for the SDK's stdio server, in a way a shutdown can interrupt.

    The SDK reads stdin line by line in a worker thread, which no cancellation can stop: a
    client that keeps stdin open would hold a SIGTERM'd ``serve --stdio`` forever, before the
    gateway could close and flush. This reader waits for input with the event loop
    (``anyio.wait_readable``) on a non-blocking duplicate of fd 0 instead. Lines are cut in
    linear time whatever their length.
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = os.dup(fd)
        os.set_blocking(self._fd, False)
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = False

    @staticmethod
    def usable(fd: int = 0) -> bool:
        """Whether fd 0 can be waited on (a pipe, socket or terminal; not a regular file)."""
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return False
        return not stat.S_ISREG(mode)

    def __aiter__(self) -> CancellableStdin:
        return self

    async def __anext__(self) -> str:
        while True:
            cut = self._buffer.find(b"\n", self._scanned)
            if cut >= 0:
                line = bytes(self._buffer[: cut + 1])
                del self._buffer[: cut + 1]
                self._scanned = 0
                return line.decode("utf-8", "replace")
            self._scanned = len(self._buffer)
            if self._eof:
                if self._buffer:
                    rest = bytes(self._buffer)
                    self._buffer.clear()
                    self._scanned = 0
                    return rest.decode("utf-8", "replace")
                raise StopAsyncIteration
            await anyio.wait_readable(self._fd)
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                continue
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True

    async def aclose(self) -> None:
        os.close(self._fd)
