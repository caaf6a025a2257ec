"""What ``mcpproxy doctor`` says about sandboxes, from this machine's real probes and from given ones."""

from __future__ import annotations

from typing import Any

from mcpproxy.sandbox.auto import STRENGTH_ORDER, backend_report
from mcpproxy.sandbox.base import Availability
from mcpproxy.sandbox.report import SandboxRow, sandbox_rows
from mcpproxy.settings import Settings

NOTHING_WORKS = {name: Availability(name == "none", f"{name} is missing") for name in STRENGTH_ORDER}


def settings(servers: dict[str, Any], **global_settings: Any) -> Settings:
    return Settings.model_validate({**global_settings, "mcpServers": servers})


def by_check(rows: list[SandboxRow]) -> dict[str, SandboxRow]:
    return {row.check: row for row in rows}


def test_every_backend_is_reported_with_the_reason_it_works_or_not() -> None:
    report = backend_report()
    rows = by_check(sandbox_rows(None, report))
    for name in ("bwrap", "landlock", "docker"):
        assert rows[f"sandbox:{name}"].status == ("ok" if report[name].ok else "warn")
        assert report[name].reason in rows[f"sandbox:{name}"].detail
    strongest = next(name for name in STRENGTH_ORDER if report[name].ok)
    assert rows["sandbox:auto"].detail == f"picks {strongest}" or strongest == "none"


def test_each_stdio_server_says_what_it_runs_under() -> None:
    report = {**NOTHING_WORKS, "landlock": Availability(True, "Landlock ABI 7")}
    config = settings({
        "auto": {"command": "x"},
        "net": {"command": "x", "isolation": {"allow_domains": ["api.example.com"]}},
        "out": {"command": "x", "isolation": "none"},
        "boxed": {"command": "x", "isolation": "docker"},
        "remote": {"url": "https://example.com/mcp"},
    })
    rows = by_check(sandbox_rows(config, report))
    assert rows["isolation:auto"] == SandboxRow("isolation:auto", "ok", "runs under landlock (auto)")
    assert rows["isolation:net"].detail == "runs under landlock (auto), network allow"
    assert rows["isolation:out"].status == "warn"
    assert rows["isolation:out"].detail == "runs unconfined: opted out (isolation: none)"
    assert rows["isolation:boxed"].status == "error"
    assert rows["isolation:boxed"].detail == "configured for docker, which cannot run here: docker is missing"
    assert "isolation:remote" not in rows


def test_no_sandbox_at_all_is_a_warning_or_with_require_isolation_an_error() -> None:
    config = {"srv": {"command": "x"}}
    relaxed = by_check(sandbox_rows(settings(config), NOTHING_WORKS))
    assert relaxed["sandbox:auto"].status == "warn"
    assert relaxed["isolation:srv"].status == "warn"
    strict = by_check(sandbox_rows(settings(config, require_isolation=True), NOTHING_WORKS))
    assert strict["sandbox:auto"].status == "error"
    assert strict["isolation:srv"] == SandboxRow(
        "isolation:srv", "error", "runs unconfined: no sandbox works here", strict["isolation:srv"].action
    )
