"""Fixtures for the sandbox tests: anyio on asyncio, and a fake host under tmp_path.

Everything lives under pytest's tmp_path; the real home and data directory are never read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox.support import ATTEMPTS, FakeHost, make_host


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return make_host(tmp_path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the attempts x backends table (docs/sandbox.md shows the same)."""
    if not ATTEMPTS:
        return
    terminalreporter.section("sandbox attempts")
    for a in ATTEMPTS:
        terminalreporter.write_line(f"{a.attack:<28} {a.backend:<9} {a.outcome:<9} {a.explanation or ''}")
