"""Liveness, readiness, metrics, and the health of each server with what to do about it.

Routes (no API key; loopback by default; see ``docs/operations.md`` before exposing them)::

    GET /healthz   200 while the process serves: {"status": "ok", "version", "uptime_s", "draining"}
    GET /readyz    200 when ready, else 503, with every check and why it fails:
                   store open, search index loaded, every enabled server attempted at least
                   once, not draining (shutting down)
    GET /metrics   Prometheus text exposition (``mcpproxy.observe.metrics``)

:func:`server_health` turns a server's listing (state, error, circuit, queue) into a verdict
(``ok``, ``busy``, ``degraded``, ``starting``, ``down``, ``disabled``) and a suggested action; the
REST status, ``mcpproxy status`` and ``mcpproxy doctor`` show them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpproxy import __version__
from mcpproxy.observe.metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from mcpproxy.gateway import Gateway


def readiness(gw: Gateway) -> tuple[bool, dict[str, Any]]:
    """Whether ``gw`` is ready to serve calls, and each check with its detail."""
    store_ok = gw._store is not None and not getattr(gw._store, "_closed", False)
    index_ok = gw.entered.is_set()
    attempted = gw._attempted
    pending = sorted(n for n, spec in gw.state.settings.servers.items() if spec.enabled and n not in attempted)
    draining = gw.ops.draining
    checks: dict[str, Any] = {
        "store": {"ok": store_ok},
        "index": {"ok": index_ok, "tools": len(gw.index)},
        "servers": {"ok": gw.all_attempted(), "not_yet_attempted": pending},
        "draining": {"ok": not draining},
    }
    return all(c["ok"] for c in checks.values()), checks


def server_health(item: dict[str, Any]) -> dict[str, Any]:
    """``{"health": verdict, "action": what to do or None}`` for one server's listing ``item``."""
    name = item.get("name", "?")
    state = item.get("state")
    error = str(item.get("error") or "")
    logs = f"`mcpproxy upstream logs {name}`"
    circuit = item.get("circuit", "closed")
    if not item.get("enabled", True) or state == "disabled":
        return {"health": "disabled", "action": f"enable it with `mcpproxy upstream enable {name}` if you need it"}
    if state == "ready":
        if circuit != "closed":
            return {
                "health": "degraded",
                "action": f"its calls failed {item.get('failures_in_a_row', 'several')} times in a row and are "
                f"paused; see {logs}, or `mcpproxy upstream restart {name}`",
            }
        if item.get("queued"):
            return {"health": "busy", "action": "calls are queueing: the server is slow, or raise max_concurrent_calls"}
        return {"health": "ok", "action": None}
    if state == "connecting":
        return {"health": "starting", "action": f"wait; if it stays connecting, see {logs}"}
    lowered = error.lower()
    if "command not found" in lowered:
        action = "install the command, or fix 'command' in the config (it must be on PATH or absolute)"
    elif "cannot connect" in lowered or "connection refused" in lowered:
        action = "start the server at its URL, or fix 'url' in the config"
    elif "http 401" in lowered or "http 403" in lowered:
        action = "fix its credentials ('headers' or 'env' in the config)"
    elif "no answer within" in lowered or "timed out" in lowered:
        action = f"it does not answer: see {logs}, or raise connect_timeout for it"
    elif "closed" in lowered or "exit" in lowered:
        action = f"it exits or closes the connection: see {logs} for its own error"
    else:
        action = f"see {logs}; `mcpproxy upstream restart {name}` retries at once"
    return {"health": "down", "action": action}


def build_health_routes(gw: Gateway) -> list[Route]:
    """``/healthz``, ``/readyz`` and ``/metrics``."""

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "uptime_s": round(time.time() - gw.started_at, 1),
                "draining": gw.ops.draining,
            }
        )

    async def readyz(request: Request) -> Response:
        ready, checks = readiness(gw)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(gw.ops.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", endpoint=healthz, methods=["GET"]),
        Route("/readyz", endpoint=readyz, methods=["GET"]),
        Route("/metrics", endpoint=metrics, methods=["GET"]),
    ]
