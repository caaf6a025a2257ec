"""Loopback ports for test servers."""

from __future__ import annotations

import math
import socket

import anyio

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picked it).

    Another process can take it before the server binds it; the kernel hands out ports in
    turn, so that is rare, and the server then fails to start with a clear error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` right now."""
    try:
        with anyio.fail_after(1):
            stream = await anyio.connect_tcp(host, port)
    except (OSError, TimeoutError):
        return False
    await stream.aclose()
    return True


async def wait_port(host: str, port: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until ``host:port`` accepts TCP connections; ``TimeoutError`` after ``timeout`` seconds."""
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    delay = 0.01
    try:
        with anyio.fail_after(timeout):
            while not await port_is_open(host, port):
                await anyio.sleep(delay)  # polling backoff, not coordination
                delay = min(delay * 2, 0.2)
    except TimeoutError:
        raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
