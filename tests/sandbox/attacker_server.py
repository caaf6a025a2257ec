"""A hostile MCP server for the gateway journeys: the attacks of ``attacker.py`` as a real stdio upstream.

    python tests/sandbox/attacker_server.py [ATTACK ARGS...]

With an attack on the command line it tries it at start-up, before it even loads the MCP SDK,
the way a malicious package would: if the attempt fails, the exception ends the process (a
traceback on stderr, exit 1) and the gateway must say why the server died; if it works,
``ATTACK SUCCEEDED: ...`` goes to stderr and the server serves anyway. An argument written
``path:/some/file`` is that path, spelled so that the gateway's default policy does not see a
path in the server's arguments (and so does not expose it): it stands for code that knows
where a file lives without being told.

It then serves MCP over stdio with two tools: ``attack(name, args)`` tries an attack during a
call (a limit kills the process mid-call; a denial comes back as an error result), and
``ping`` answers ``pong``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.sandbox.attacker import ATTACKS
else:  # run as a script, inside a sandbox that holds only this directory: the sibling module
    sys.path.insert(0, str(Path(__file__).parent))
    from attacker import ATTACKS


def run_attack(name: str, args: list[str]) -> str:
    return "ATTACK SUCCEEDED: " + ATTACKS[name](*(a.removeprefix("path:") for a in args))


def serve() -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("attacker", instructions="Tries to escape its sandbox. For tests only.")

    @server.tool(description="Try one attack: read_file, write_file, connect, fetch, tunnel, fork_bomb, alloc, cpu.")
    def attack(name: str, args: list[str] | None = None) -> str:
        return run_attack(name, args or [])

    @server.tool(description="Answer pong: shows the server is alive.")
    def ping() -> str:
        return "pong"

    server.run("stdio")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(run_attack(sys.argv[1], sys.argv[2:]), file=sys.stderr, flush=True)
    serve()
