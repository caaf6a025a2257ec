"""Where the real upstream servers live.

They are installed by ``scripts/install-test-deps.sh`` into ``<repo>/.cache`` (or
``$MCPPROXY_TEST_CACHE``). A missing one is an error that says how to install it: tests that
need a real server must fail loudly, never skip.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
INSTALL_SCRIPT = "scripts/install-test-deps.sh"
CACHE_ENV = "MCPPROXY_TEST_CACHE"


class TestDepsMissingError(RuntimeError):
    """An upstream server or tool the tests need is not installed."""

    __test__ = False  # not a test class, whatever its name says


def _missing(what: str, where: Path | str) -> TestDepsMissingError:
    return TestDepsMissingError(f"{what} not found at {where}: run {INSTALL_SCRIPT}")


def cache_dir() -> Path:
    """The test cache: ``$MCPPROXY_TEST_CACHE`` if set, else ``<repo>/.cache``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).resolve() if override else REPO_ROOT / ".cache"


def npm_prefix() -> Path:
    """The npm prefix holding ``node_modules`` with the pinned npm servers."""
    return cache_dir() / "npm"


def pyservers_venv() -> Path:
    """The venv of the PyPI servers (separate from the project's venv)."""
    return cache_dir() / "venvs" / "pyservers"


def node() -> str:
    """Absolute path of the ``node`` executable."""
    found = shutil.which("node")
    if found is None:
        raise TestDepsMissingError("node is not on PATH: install Node.js 20+, then run " + INSTALL_SCRIPT)
    return found


def npm_bin(name: str) -> list[str]:
    """argv prefix to run an npm package's bin ``name``: ``[node, <real JS file>]``.

    The ``node_modules/.bin`` symlink is resolved so the result works without a shell and
    without depending on the file's executable bit or shebang.
    """
    link = npm_prefix() / "node_modules" / ".bin" / name
    if not link.exists():
        raise _missing(f"npm bin {name!r}", link)
    return [node(), str(link.resolve())]


def pyserver_bin(name: str) -> list[str]:
    """argv prefix to run console script ``name`` of the PyPI servers' venv."""
    script = pyservers_venv() / "bin" / name
    if not script.is_file():
        raise _missing(f"Python server {name!r}", script)
    return [str(script)]


def inspector_cli() -> list[str]:
    """argv prefix for the MCP Inspector's CLI: append ``URL --transport http --method tools/list``
    (or ``COMMAND ARGS... --method ...`` for stdio). It prints the JSON result on stdout.

    This is the script that ``npx @modelcontextprotocol/inspector --cli ...`` ends up running
    (``inspector-cli/build/index.js``), called directly: no npx and no wrapper process between.
    """
    wrapper = npm_bin("mcp-inspector-cli")  # build/cli.js: without --cli it starts the web UI
    cli = Path(wrapper[1]).with_name("index.js")
    if not cli.is_file():
        raise _missing("MCP Inspector CLI", cli)
    return [wrapper[0], str(cli)]


def fixture_script(name: str) -> Path:
    """Path of fixture server ``name`` (``notes_server``, ``paged_server``, ``broken_server``)."""
    stem = name.removesuffix(".py")
    script = FIXTURES_DIR / f"{stem}.py"
    if not script.is_file():
        raise FileNotFoundError(f"no fixture server {script}")
    return script


def fixture_argv(name: str, *args: str) -> list[str]:
    """argv running fixture server ``name`` with this interpreter: ``[python, script, *args]``."""
    return [sys.executable, str(fixture_script(name)), *args]
