"""Running ``mcpproxy secrets`` as a user would, with a keyring the test chooses (never the user's)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from mcpproxy.secrets.store import BACKEND_ENV
from tests.support.gateway import mcpproxy_argv
from tests.support.paths import REPO_ROOT
from tests.support.procs import child_env


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A child environment whose keyring is chosen by the test, never the user's."""
    env = child_env({"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config")})
    for name in (BACKEND_ENV, "PYTHON_KEYRING_BACKEND", "MCPPROXY_CONFIG", "MCPPROXY_DATA_DIR"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def secrets_cli(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    argv = mcpproxy_argv("--data-dir", str(tmp_path / "data"), "secrets", *args)
    done = await anyio.run_process(argv, env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()
