"""Traces: with ``otlp_endpoint`` set, ``mcpproxy serve`` sends a span per call, with policy,
upstream and filters children, to an OTLP/HTTP collector; the client's trace context (in ``_meta``
or in HTTP headers) is the parent, and the upstream receives the trace context in its ``_meta``.

The collector is a small real OTLP/HTTP receiver in the test, decoding the protobuf the exporter sends.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcpproxy.config.loader import load_settings
from mcpproxy.endpoints.rest import API_KEY_FILE
from tests.observe.support import chaos_entry
from tests.support.gateway import mcpproxy_process, write_config
from tests.support.mcp_raw import stateless_headers, stateless_meta
from tests.support.net import LOOPBACK, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 90.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
HEADER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class Collector:
    """Spans received, by trace id (hex)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._changed = anyio.Event()

    async def receive(self, request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        for resource in message.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: a.value.string_value for a in span.attributes},
                            "status": span.status.code,
                        }
                    )
        self._changed.set()
        self._changed = anyio.Event()
        return Response(b"", media_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["trace_id"] == trace_id]

    async def wait_for(self, trace_id: str, names: set[str]) -> list[dict[str, Any]]:
        while not names <= {s["name"] for s in self.trace(trace_id)}:
            await self._changed.wait()
        return self.trace(trace_id)


@asynccontextmanager
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    sink = Collector()
    port = free_port()
    app = Starlette(routes=[Route("/v1/traces", sink.receive, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None, lifespan="off"))
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(server.serve))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await anyio.sleep(0.01)
        try:
            yield sink, f"http://{LOOPBACK}:{port}/v1/traces"
        finally:
            server.should_exit = True


@contextmanager
def _no_signals() -> Iterator[None]:
    yield


def stateless_call(tool: str, arguments: dict[str, Any], traceparent: str) -> tuple[dict[str, Any], dict[str, str]]:
    meta = stateless_meta("tracing-test", traceparent=traceparent)
    params = {"name": tool, "arguments": arguments, "_meta": meta}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return body, stateless_headers(tool)


async def test_calls_are_traced_under_the_clients_context_and_the_context_reaches_the_upstream(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(WAIT):
        async with collector() as (sink, endpoint):
            config = write_config(tmp_path, {"chaos": chaos_entry()}, otlp_endpoint=endpoint)
            data_dir = load_settings(config, env={}).data_path
            async with mcpproxy_process(config, env={"OTEL_BSP_SCHEDULE_DELAY": "100"}) as (_, base_url):
                async with httpx2.AsyncClient(base_url=base_url, timeout=30.0) as http:
                    delay = 0.05
                    while (await http.get("/readyz")).status_code != 200:
                        await anyio.sleep(delay)  # polling readiness
                        delay = min(delay * 2, 0.5)
                    key = (data_dir / API_KEY_FILE).read_text(encoding="utf-8").strip()

                    # Trace context in _meta (MCP, stateless era, direct mode).
                    body, headers = stateless_call("chaos__meta", {}, f"00-{TRACE_ID}-{CLIENT_SPAN}-01")
                    answer = await http.post("/mcp/all", json=body, headers=headers)
                    assert answer.status_code == 200, answer.text
                    result = answer.json()["result"]
                    upstream_meta = json.loads(result["content"][0]["text"])

                    # Trace context in HTTP headers (REST).
                    rest = await http.post(
                        "/api/v1/call",
                        json={"name": "chaos:ok", "args": {"text": "traced"}},
                        headers={"X-API-Key": key, "traceparent": f"00-{HEADER_TRACE_ID}-{CLIENT_SPAN}-01"},
                    )
                    assert rest.status_code == 200, rest.text

                    spans = await sink.wait_for(TRACE_ID, {"mcpproxy.call chaos__meta", "policy", "upstream",
                                                           "filters"})
                    by_header = await sink.wait_for(HEADER_TRACE_ID, {"mcpproxy.call chaos:ok", "upstream"})

    call = next(s for s in spans if s["name"] == "mcpproxy.call chaos__meta")
    children = {s["name"]: s for s in spans if s["parent"] == call["span_id"]}
    assert {"policy", "upstream", "filters"} <= set(children)
    assert call["attributes"]["mcp.server"] == "chaos"
    # The client's span is an ancestor of the call span.
    ids = {s["span_id"]: s for s in spans}
    ancestor, seen = call, 0
    while ancestor["parent"] in ids and seen < 10:
        ancestor, seen = ids[ancestor["parent"]], seen + 1
    assert ancestor["parent"] == CLIENT_SPAN
    # The upstream got the same trace, under a span of ours.
    traceparent = upstream_meta["traceparent"]
    _, trace_id, parent_span, _ = traceparent.split("-")
    assert trace_id == TRACE_ID
    assert parent_span in ids and parent_span != CLIENT_SPAN
    header_call = next(s for s in by_header if s["name"] == "mcpproxy.call chaos:ok")
    assert header_call["parent"] == CLIENT_SPAN or header_call["parent"] in {s["span_id"] for s in by_header}
    assert os.environ.get("MCPPROXY_OTLP_ENDPOINT") is None
