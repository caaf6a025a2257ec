"""A hostile "server": tries one attack, named by argv[1], and reports plainly.

On success it prints ``ATTACK SUCCEEDED: <what>`` and exits 0. On failure it lets the
error surface the way a real program would (a traceback on stderr, exit 1), so the tests
can check that ``explain_exit`` understands it. Every attack is bounded by itself too
(counts and wall-clock), so even a sandbox that failed could not run away.

Attacks: read_file PATH... | write_file PATH | connect [HOST:]PORT | fetch URL | tunnel HOST:PORT |
fork_bomb | alloc | cpu [SECONDS]
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

FORK_ATTEMPTS = 600
CHILD_SLEEP = 20.0
ALLOC_BYTES = 2 * 1024 * 1024 * 1024
CPU_SECONDS = 3.0
CPU_WALL_LIMIT = 60.0


def read_file(*paths: str) -> str:
    sizes = []
    for path in paths:
        with open(path, "rb") as fh:
            sizes.append(len(fh.read()))
    return f"read {len(paths)} file(s), {sum(sizes)} bytes"


def write_file(path: str) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("pwned\n")
    return f"wrote {path}"


def connect(target: str) -> str:
    """``PORT`` (on 127.0.0.1) or ``HOST:PORT``."""
    host, _, port = target.rpartition(":")
    host = host or "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"ping\n")
        reply = conn.recv(100)
    return f"talked to {host}:{port}: {reply!r}"


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the URL is the test's
            return f"fetched {url}: {resp.read().decode()!r}"
    except urllib.error.HTTPError as exc:
        sys.stderr.write(exc.read().decode(errors="replace"))
        raise


def tunnel(authority: str) -> str:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy is None:
        raise RuntimeError("no HTTPS_PROXY in the environment")
    host, _, port = proxy.removeprefix("http://").rstrip("/").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        head = conn.recv(4096).decode(errors="replace")
        if not head.startswith("HTTP/1.1 200"):
            sys.stderr.write(head + "\n")
            raise ConnectionRefusedError(f"proxy refused CONNECT {authority}: {head.splitlines()[0]}")
        conn.sendall(f"GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
        body = b""
        while chunk := conn.recv(4096):
            body += chunk
    return f"tunnelled to {authority}: {body.decode(errors='replace').splitlines()[-1]!r}"


def fork_bomb() -> str:
    for count in range(FORK_ATTEMPTS):
        try:
            pid = os.fork()
        except OSError as exc:
            raise OSError(exc.errno, f"fork #{count + 1} failed: {exc.strerror}") from exc
        if pid == 0:
            time.sleep(CHILD_SLEEP)
            os._exit(0)
    return f"forked {FORK_ATTEMPTS} processes"


def alloc() -> str:
    block = bytearray(ALLOC_BYTES)
    return f"allocated {len(block)} bytes"


def cpu(seconds: str = str(CPU_SECONDS)) -> str:
    # Counted in CPU time, not wall time, so a busy machine cannot make it finish early.
    end = time.monotonic() + CPU_WALL_LIMIT
    n = 0
    while time.process_time() < float(seconds) and time.monotonic() < end:
        n += 1
    return f"spun {time.process_time():.1f} s of CPU"


ATTACKS: dict[str, Callable[..., str]] = {
    "read_file": read_file,
    "write_file": write_file,
    "connect": connect,
    "fetch": fetch,
    "tunnel": tunnel,
    "fork_bomb": fork_bomb,
    "alloc": alloc,
    "cpu": cpu,
}


if __name__ == "__main__":
    # ``path:/x`` is the path /x, spelled so that the default policy does not see (and grant) it.
    result = ATTACKS[sys.argv[1]](*(arg.removeprefix("path:") for arg in sys.argv[2:]))
    print(f"ATTACK SUCCEEDED: {result}", flush=True)
