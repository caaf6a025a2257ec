"""Helpers for the operations tests: metrics scraping, the activity log, the chaos server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import GatewayHandle, stdio_entry
from tests.support.paths import REPO_ROOT

CHAOS_SERVER = REPO_ROOT / "tests" / "observe" / "chaos_server.py"


def chaos_entry(*args: str, **extra: Any) -> dict[str, Any]:
    """A config entry running the chaos server over stdio with this interpreter."""
    import sys

    return stdio_entry([sys.executable, str(CHAOS_SERVER), *args], {"FASTMCP_LOG_LEVEL": "WARNING"}, **extra)


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The value of one sample (0.0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx2.AsyncClient(timeout=30.0) as http:
        response = await http.get(base_url + "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse_metrics(response.text)


async def flush_activity(gw: GatewayHandle, within: float = 20.0) -> None:
    """Wait until every activity record accepted so far is in the database."""
    recorder = gw.gateway.ops.activity
    assert recorder is not None
    with anyio.fail_after(within):
        await recorder.flush()


async def activity(gw: GatewayHandle, **params: Any) -> list[dict[str, Any]]:
    """Activity records through the REST API (newest first)."""
    async with httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers, timeout=30.0) as api:
        response = await api.get("/activity", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def call_counts(records: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """``(server, tool, status)`` counts of the call records."""
    return Counter((r["server"] or "-", r["tool"] or "-", r["status"]) for r in records if r["kind"] == "call")


Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_call_counts(samples: Samples) -> Counter[tuple[str, str, str]]:
    """``(server, tool, status)`` counts of ``mcpproxy_tool_calls_total``."""
    out: Counter[tuple[str, str, str]] = Counter()
    for (name, labels), value in samples.items():
        if name == "mcpproxy_tool_calls_total":
            d = dict(labels)
            out[(d["server"], d["tool"], d["status"])] = int(value)
    return out
