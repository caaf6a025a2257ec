"""Escapes tried from programs in each engine: every one is refused (or finds nothing to take),
reported to the caller, and the gateway stays healthy.

The table is the one in docs/codemode.md: reading files (``/etc/passwd``, ``~/.ssh``, the
proxy's data dir, ``/proc/self/environ``), sockets to the gateway's own port, processes, the
environment, forbidden modules, the classic Python introspection escapes, an infinite loop, a
memory bomb, a fork bomb, 10 MB of output and a tool-call flood.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from tests.support import paths
from tests.support.gateway import GatewayHandle, running_gateway, stdio_entry

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CANARY = "canary-3f9c1e"
OUTPUT_LIMIT = 100_000
MAX_CALLS = 5


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayHandle]:
    tmp = tmp_path_factory.mktemp("escapes")
    # A secret in the gateway's environment that no program may see.
    os.environ["MCPPROXY_TEST_CANARY"] = CANARY
    try:
        servers = {
            "memory": stdio_entry(
                paths.npm_bin("mcp-server-memory"),
                {"MEMORY_FILE_PATH": str(tmp_path_factory.mktemp("memory") / "memory.jsonl")},
            )
        }
        async with running_gateway(
            tmp,
            servers,
            code_warm_workers=2,
            code_memory_mb=64,
            code_max_output_bytes=OUTPUT_LIMIT,
            code_max_tool_calls=MAX_CALLS,
        ) as handle:
            await handle.wait_ready("memory")
            yield handle
    finally:
        os.environ.pop("MCPPROXY_TEST_CANARY", None)


@dataclass(frozen=True)
class Attempt:
    """One escape: the program per engine, and what the caller must see."""

    name: str
    python: str | None
    python_full: str | None
    typescript: str | None
    refused: str = ""
    """A regular expression the error (``type: message``) must match; empty: any error."""


FILE_READS = [
    Attempt(
        "read /etc/passwd",
        "open('/etc/passwd').read()",
        "open('/etc/passwd').read()",
        "return Deno.readTextFileSync('/etc/passwd')",
        r"PermissionError|FileNotFoundError|NotCapable",
    ),
    Attempt(
        "import /etc/passwd as a module",
        None,
        None,
        "return await import('file:///etc/passwd')",
        r"Requires read access",
    ),
    Attempt(
        "read ~/.ssh",
        "open('/root/.ssh/id_rsa').read()",
        "import os\nos.listdir(os.path.expanduser('~/.ssh'))",
        "return [...Deno.readDirSync('/root/.ssh')]",
        r"PermissionError|FileNotFoundError|NotCapable",
    ),
    Attempt(
        "read the proxy's data dir",
        "open(DATA + '/mcpproxy.db', 'rb').read(16)",
        "import os\nos.listdir(DATA)",
        "return [...Deno.readDirSync(DATA)]",
        r"PermissionError|FileNotFoundError|NotCapable",
    ),
    Attempt(
        "read /proc/self/environ",
        "open('/proc/self/environ').read()",
        None,  # readable in the sandbox, and holds no secret: see the environment attempts below
        "return Deno.readTextFileSync('/proc/self/environ')",
        r"PermissionError|NotCapable",
    ),
]

NETWORK_AND_PROCESSES = [
    Attempt(
        "open a socket to the gateway",
        "import socket\nsocket.create_connection(('127.0.0.1', PORT))",
        "import socket\nsocket.create_connection(('127.0.0.1', PORT))",
        "await Deno.connect({ hostname: '127.0.0.1', port: PORT }); return 'connected'",
        r"ModuleNotFoundError|PermissionError.*network|NotCapable.*net",
    ),
    Attempt(
        "HTTP to the gateway",
        None,
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:PORT/healthz').read()",
        "return (await fetch('http://127.0.0.1:PORT/healthz')).status",
        r"PermissionError|URLError|NotCapable",
    ),
    Attempt(
        "start a process",
        "import subprocess\nsubprocess.run(['id'])",
        "import os\nos.system('id')",
        "return new Deno.Command('/usr/bin/id').outputSync()",
        r"ModuleNotFoundError|PermissionError.*processes|NotCapable.*run",
    ),
    Attempt(
        "start a process the low way",
        "import os\nos.execv('/usr/bin/id', ['id'])",
        "import os\nos.posix_spawn('/usr/bin/id', ['id'], {})",
        "const cp = await import('node:child_process'); return cp.execFileSync('/usr/bin/id').toString()",
        r"AttributeError|PermissionError|NotCapable",
    ),
    Attempt(
        "fork bomb",
        "import os\nwhile True:\n    os.fork()",
        "import os\nwhile True:\n    os.fork()",
        "while (true) new Deno.Command('/bin/sh').spawn();",
        r"AttributeError|PermissionError|NotCapable",
    ),
]

ENVIRONMENT = [
    Attempt(
        "read the environment",
        "import os\nos.environ",
        None,  # contained, not refused: see test_python_full_sees_an_environment_with_no_secret
        "return Deno.env.toObject()",
        r"RuntimeError.*not supported|NotCapable.*env",
    ),
    Attempt(
        "read one variable",
        "import os\nos.getenv('MCPPROXY_TEST_CANARY')",
        None,
        "return Deno.env.get('MCPPROXY_TEST_CANARY')",
        r"RuntimeError.*not supported|NotCapable.*env",
    ),
]

MODULES = [
    Attempt(
        "import a forbidden module",
        "import ctypes",
        "import ctypes",
        "return await import('npm:left-pad')",
        r"ModuleNotFoundError|ImportError.*not available|--no-npm",
    ),
    Attempt(
        "import a remote module",
        None,
        "import _posixsubprocess",
        "return await import('https://deno.land/std/fs/mod.ts')",
        r"ImportError.*not available|--no-remote",
    ),
    Attempt(
        "load native code",
        None,
        None,
        "return Deno.dlopen('libc.so.6', {})",
        r"NotCapable.*ffi",
    ),
]

INTROSPECTION = [
    Attempt(
        "().__class__.__base__.__subclasses__()",
        "().__class__.__base__.__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        ".__init__.__globals__['system']('id')",
        "return (function () {}).constructor('return Deno')().env.toObject()",
        r"AttributeError|PermissionError.*processes|NotCapable",
    ),
    Attempt(
        "__import__",
        "__import__('os').system('id')",
        "__import__('subprocess').run(['id'])",
        None,
        r"NameError|ImportError.*not available",
    ),
    Attempt(
        "__builtins__ tricks",
        "__builtins__['__import__']('os')",
        "__builtins__.__dict__['__import__']('ctypes')",
        None,
        r"NameError|ImportError.*not available",
    ),
    Attempt(
        "frame walking",
        "import sys\nsys._getframe().f_back",
        "import sys\nf = sys._getframe()\nwhile f.f_back:\n    f = f.f_back\nf.f_globals['os'].system('id')",
        None,
        r"AttributeError|PermissionError.*processes",
    ),
    Attempt(
        "ask for permissions",
        None,
        None,
        "const p = await Deno.permissions.request({ name: 'env' }); return Deno.env.get('HOME') ?? p.state",
        r"NotCapable",
    ),
]

RESOURCES = [
    Attempt(
        "memory bomb",
        "x = []\nwhile True:\n    x.append(' ' * 10_000_000)",
        "x = []\nwhile True:\n    x.append(' ' * 10_000_000)",
        "const a: number[][] = []; while (true) a.push(new Array(1e6).fill(1));",
        r"^MemoryError: .*(memory limit|out of memory)",
    ),
]

ATTEMPTS = FILE_READS + NETWORK_AND_PROCESSES + ENVIRONMENT + MODULES + INTROSPECTION + RESOURCES
ENGINES = ("python", "python-full", "typescript")


def _cases() -> list[Any]:
    out = []
    for attempt in ATTEMPTS:
        for engine, code in zip(ENGINES, (attempt.python, attempt.python_full, attempt.typescript), strict=True):
            if code is not None:
                out.append(pytest.param(engine, code, attempt.refused, id=f"{engine}: {attempt.name}"))
    return out


async def run(gw: GatewayHandle, code: str, language: str, **args: Any) -> dict[str, Any]:
    port = gw.base_url.rsplit(":", 1)[1]
    data = repr(str(gw.gateway.data_dir))
    code = code.replace("PORT", port).replace("DATA", data)
    async with Client(gw.base_url + "/mcp/code", mode="auto") as client:
        result = await client.call_tool("code_execution", {"code": code, "language": language, **args})
    assert isinstance(result.structured_content, dict), result.content
    return dict(result.structured_content)


async def assert_healthy(gw: GatewayHandle) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        assert (await http.get(gw.base_url + "/healthz")).status_code == 200


@pytest.mark.parametrize(("language", "code", "refused"), _cases())
async def test_an_escape_is_refused_and_reported(gw: GatewayHandle, language: str, code: str, refused: str) -> None:
    result = await run(gw, code, language, timeout_ms=10_000)
    assert not result["ok"], f"the attempt succeeded: {result['value']!r}"
    error = result["error"]
    text = f"{error['type']}: {error['message']}"
    assert re.search(refused, text), text
    assert CANARY not in str(result)
    await assert_healthy(gw)


async def test_python_full_sees_an_environment_with_no_secret(gw: GatewayHandle) -> None:
    code = "import os\n[dict(os.environ), open('/proc/self/environ').read(), sorted(os.listdir('/etc'))]"
    result = await run(gw, code, "python-full")
    assert result["ok"], result["error"]
    environ, raw, etc = result["value"]
    assert set(environ) <= {"LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE"}
    assert CANARY not in raw
    assert etc == ["ld.so.cache"]  # the sandbox's /etc: the loader's cache and nothing else


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", 'print("started")\nwhile True:\n    pass'),
        ("python-full", 'print("started", flush=True)\nwhile True:\n    pass'),
        ("typescript", 'console.log("started");\nwhile (true) {}'),
    ],
)
async def test_an_infinite_loop_is_stopped_at_the_wall_time_with_its_output_so_far(
    gw: GatewayHandle, language: str, code: str
) -> None:
    result = await run(gw, code, language, timeout_ms=1500)
    assert result["error"]["type"] == "TimeoutError"
    assert result["stdout"] == "started\n"
    await assert_healthy(gw)


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "for i in range(1000):\n    print('x' * 10_000)"),
        ("python-full", "import sys\nfor i in range(1000):\n    sys.stdout.write('x' * 10_000 + '\\n')"),
        ("typescript", "for (let i = 0; i < 1000; i++) console.log('x'.repeat(10_000));"),
    ],
)
async def test_ten_megabytes_of_output_stop_the_program_at_the_output_limit(
    gw: GatewayHandle, language: str, code: str
) -> None:
    result = await run(gw, code, language)
    assert result["error"]["type"] == "OutputLimitExceeded"
    assert result["output_truncated"]
    assert len(result["stdout"].encode()) + len(result["stderr"].encode()) <= OUTPUT_LIMIT
    assert result["stdout"].startswith("x" * 10_000 + "\n")


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "n = 0\nfor i in range(20):\n    try:\n        call_tool('memory:read_graph', {})\n        n += 1\n"
         "    except ToolError as exc:\n        last = str(exc)\n[n, last]"),
        ("python-full", "n = 0\nfor i in range(20):\n    try:\n        call_tool('memory:read_graph', {})\n"
         "        n += 1\n    except ToolError as exc:\n        last = str(exc)\n[n, last]"),
        ("typescript", "let n = 0, last = '';\nfor (let i = 0; i < 20; i++) {\n  try {\n"
         "    await callTool('memory:read_graph', {}); n++;\n  } catch (e) { last = String(e.message); }\n}\n"
         "return [n, last];"),
    ],
)  # fmt: skip
async def test_a_tool_call_flood_is_cut_at_max_tool_calls(gw: GatewayHandle, language: str, code: str) -> None:
    result = await run(gw, code, language)
    assert result["ok"], result["error"]
    made, last = result["value"]
    assert made == MAX_CALLS
    assert last.startswith("tool_call_limit")
    assert len(result["tool_calls"]) == 20
    assert sum(1 for c in result["tool_calls"] if c["ok"]) == MAX_CALLS


async def test_after_every_attempt_the_gateway_runs_programs_and_leaves_no_stray_worker(gw: GatewayHandle) -> None:
    for language, code in (("python", "6 * 7"), ("python-full", "6 * 7"), ("typescript", "return 6 * 7;")):
        result = await run(gw, code, language)
        assert result["value"] == 42
    await assert_healthy(gw)
    # Each worker runs one program and is killed; only the warm pools' idle workers remain.
    with anyio.fail_after(30):
        while True:
            workers = _worker_processes()
            if len(workers) <= 4:  # two warm per pool at most, plus the one a pool may be starting
                break
            await anyio.sleep(0.2)  # polling the process table: nothing to wait on


def _worker_processes() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if (b"pyworker.py" in cmdline or b"denoworker.js" in cmdline) and b"bwrap" not in cmdline.split(b"\0")[0]:
            found.append(int(pid))
    return found
