"""The example alerting rules (``docs/alerts.yml``) are well formed and ask only for metrics a
running gateway exposes: an alert on a metric name that does not exist never fires, silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml

from tests.support.gateway import fixture_entry, running_gateway
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.anyio

ALERTS = REPO_ROOT / "docs" / "alerts.yml"
OUR_METRIC = re.compile(r"\bmcpproxy_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def exposed_names(text: str) -> set[str]:
    """Every sample name a scrape can return: the samples present, and each family's full set of
    names (a labelled counter or histogram has no sample until its first observation)."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for match in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        family, kind = match.groups()
        names.add(family)
        names.update(family + suffix for suffix in SUFFIXES.get(kind, ()))
    return names


def test_every_rule_is_complete() -> None:
    found = rules()
    assert len(found) >= 8
    for rule in found:
        assert re.fullmatch(r"Mcpproxy[A-Za-z]+", rule["alert"]), rule
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"], rule
    assert len({rule["alert"] for rule in found}) == len(found)


async def test_every_metric_an_alert_reads_is_exposed_by_a_running_gateway(tmp_path: Path) -> None:
    with anyio.fail_after(90):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            async with httpx2.AsyncClient(timeout=30.0) as http:
                text = (await http.get(gw.base_url + "/metrics")).text
    exposed = exposed_names(text)
    wanted = {name for rule in rules() for name in OUR_METRIC.findall(rule["expr"])}
    assert wanted, "the rules read no mcpproxy metric"
    assert sorted(wanted - exposed) == []
