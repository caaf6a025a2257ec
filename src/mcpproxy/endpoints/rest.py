"""REST API ``/api/v1``: the same gateway, for the CLI, scripts and (later) the web UI.

Every route needs the API key (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``),
created on first start in the data dir with mode 0600. Errors are the gateway's error tree
as JSON with the class's HTTP status. Tool calls go through ``Gateway.call_tool`` like
every other call.

Routes::

    GET    /api/v1/status                      gateway and per-server summary
    GET    /api/v1/servers                     servers with state
    POST   /api/v1/servers                     add {"name": ..., <config entry>}
    GET    /api/v1/servers/{name}              one server
    PATCH  /api/v1/servers/{name}              update (config keys)
    DELETE /api/v1/servers/{name}              remove
    POST   /api/v1/servers/{name}/enable|disable|restart
    GET    /api/v1/servers/{name}/logs?lines=N&offset=B   tail, or bytes from offset (follow)
    GET    /api/v1/tools?server=S              tools
    GET    /api/v1/tools/{server}/{tool}       one tool, full schema
    GET    /api/v1/search?q=...&limit=N&explain=1&diversify=0   ranked tools
    POST   /api/v1/call  {"name", "args", "tier", "timeout"}   call a tool (tier defaults to the tool's own;
                                                 timeout in seconds can shorten the server's)
    GET    /api/v1/activity[/export|/{id}]     the activity log (``mcpproxy.observe.activity_api``)
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpproxy import __version__
from mcpproxy.endpoints.health import server_health
from mcpproxy.endpoints.proxy_tools import server_listing, tail_lines
from mcpproxy.errors import ConfigError, InvalidArguments, ProxyError
from mcpproxy.gateway import (
    CallContext,
    Gateway,
    SearchFilters,
    caller_timeout,
    describe_entries,
    positive_seconds,
)
from mcpproxy.jsonvalues import MAX_DEPTH, first_few, problems
from mcpproxy.observe.activity_api import build_activity_routes
from mcpproxy.policy.scanner import Catalog, ScanPolicy, scan_tools
from mcpproxy.routing.catalog import Tier
from mcpproxy.secrets.masking import mask_config, mask_known
from mcpproxy.state import refuse_unknown_keys, spec_from_entry
from mcpproxy.store.files import atomic_write

API_KEY_FILE = "api_key"
MAX_BODY = 4 * 1024 * 1024


def load_or_create_api_key(data_dir: Path) -> str:
    """The API key in ``data_dir``, created (0600) on first use."""
    path = data_dir / API_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = "mcpp_" + secrets.token_urlsafe(32)
    atomic_write(path, (key + "\n").encode())  # a reader never sees an empty or partial key
    return key


class ApiKeyMiddleware:
    """Pure ASGI: refuses any request without the right key (constant-time comparison)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if not given and auth.lower().startswith(b"bearer "):
            given = auth[7:].strip()
        if not given or not hmac.compare_digest(given, self.api_key):
            body = {
                "error": "unauthorized",
                "message": "missing or wrong API key",
                "hint": "send X-API-Key with the key from the data dir's api_key file",
            }
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class JsonRouteErrors:
    """Pure ASGI: an unknown route (404) or method (405) under the API is answered in the API's
    JSON error form, as every other error is, instead of Starlette's plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except HTTPException as exc:  # raised by the router before any response starts
            where = f"{scope.get('method', '')} {scope.get('path', '')}".strip()  # the full path, under the mount
            if exc.status_code == 405:
                allowed = (exc.headers or {}).get("Allow", "")
                body = {"error": "method_not_allowed", "message": f"{where}: method not allowed",
                        "hint": f"this route takes {allowed}" if allowed else None}
            elif exc.status_code == 404:
                body = {"error": "not_found", "message": f"{where}: no such API route",
                        "hint": "the routes are listed in the README (REST API)"}
            else:
                body = {"error": "http_error", "message": f"{where}: {exc.detail}"}
            response = JSONResponse({k: v for k, v in body.items() if v}, exc.status_code, headers=exc.headers)
            await response(scope, receive, send)


def _error(exc: ProxyError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidArguments("request body too large")
    try:
        body = json.loads(raw or b"{}", parse_constant=_not_a_number, parse_float=_finite)
    except ValueError as exc:
        raise InvalidArguments(f"request body is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidArguments(f"request body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    if not isinstance(body, dict):
        raise InvalidArguments("request body must be a JSON object")
    found = problems(body, "field")
    if found:
        raise InvalidArguments("request body: " + "; ".join(first_few(found)))
    return body


def _not_a_number(constant: str) -> float:
    """Python's parser reads ``NaN`` and ``Infinity``; JSON has no such numbers."""
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _int_param(request: Request, name: str, default: int) -> int:
    """An integer query parameter; a value that is not one is the caller's error (400), not ours."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArguments(f"'{name}' must be an integer, not {raw!r}") from None


def build_rest_routes(gw: Gateway) -> list[Route]:
    def handler(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)  # type: ignore[no-any-return]
            except ProxyError as exc:
                return _error(exc)

        return endpoint

    async def status(request: Request) -> Response:
        servers = server_listing(gw)
        for item in servers:  # circuit, queue, and a health verdict with a suggested action
            item.update(gw.ops.health(item["name"]))
            item.update(server_health(item))
        counts: dict[str, int] = {}
        for s in servers:
            counts[s["state"]] = counts.get(s["state"], 0) + 1
        return JSONResponse(
            {
                "version": __version__,
                "listen": gw.settings.listen,
                "data_dir": str(gw.data_dir),
                "config_path": str(gw.config_path) if gw.config_path else None,
                "uptime_s": round(time.time() - gw.started_at, 1),
                "tools_indexed": len(gw.index),
                "all_attempted": gw.all_attempted(),
                "states": counts,
                "servers": servers,
                "config_error": gw.last_config_error.to_dict() if gw.last_config_error else None,
            }
        )

    async def list_servers(request: Request) -> Response:
        return JSONResponse({"servers": server_listing(gw)})

    async def add_server(request: Request) -> Response:
        body = await _json_body(request)
        name = body.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError("'name' is required", key="name")
        refuse_unknown_keys(name, body)
        spec = await gw.state.add(spec_from_entry(name, body))
        return JSONResponse({"added": name, "server": mask_config(spec.to_config())}, status_code=201)

    async def get_server(request: Request) -> Response:
        name = request.path_params["name"]
        gw.state.get(name)
        item = next(s for s in server_listing(gw) if s["name"] == name)
        item["config"] = mask_config(gw.state.get(name).to_config())
        return JSONResponse(item)

    async def update_server(request: Request) -> Response:
        name, changes = request.path_params["name"], await _json_body(request)
        gw.state.get(name)  # an unknown server is a 404 before its keys are looked at
        refuse_unknown_keys(name, changes)
        spec = await gw.state.update(name, changes)
        return JSONResponse({"updated": spec.name, "server": mask_config(spec.to_config())})

    async def delete_server(request: Request) -> Response:
        await gw.state.remove(request.path_params["name"])
        return JSONResponse({"removed": request.path_params["name"]})

    async def server_action(request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        if action in ("enable", "disable"):
            await gw.enable(name, action == "enable")
        elif action == "restart":
            gw.restart(name)
        elif action == "approve":
            released = await gw.approve_server(name, by="api")
            return JSONResponse({"server": name, "action": action, "released_tools": released})
        elif action == "quarantine":
            await gw.quarantine_server(name, by="api")
        else:
            raise InvalidArguments(
                f"unknown action '{action}'", hint="enable, disable, restart, approve or quarantine"
            )
        return JSONResponse({"server": name, "action": action})

    async def create_token(request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("name") or f"token-{int(time.time())}"
        servers = body.get("servers")
        if servers is not None and (not isinstance(servers, list) or not all(isinstance(x, str) for x in servers)):
            raise InvalidArguments("'servers' must be a list of server names")
        expires = positive_seconds(body.get("expires_in"), "expires_in")
        secret, record = await gw.create_token(str(name), str(body.get("tier", "read")), servers, expires)
        return JSONResponse({**record.to_dict(), "token": secret}, status_code=201)

    async def list_tokens(request: Request) -> Response:
        return JSONResponse({"tokens": [t.to_dict() for t in gw.tokens()]})

    async def revoke_token(request: Request) -> Response:
        await gw.revoke_token(request.path_params["id"])
        return JSONResponse({"revoked": request.path_params["id"]})

    async def security_overview(request: Request) -> Response:
        return JSONResponse({
            "quarantined_servers": gw.security.quarantined_servers(gw.state.servers),
            "held_tools": [p.to_dict() for p in gw.security.held_tools()],
        })

    async def security_server(request: Request) -> Response:
        name = request.path_params["name"]
        gw.state.get(name)
        tools = []
        for entry in gw.catalog.tools_of(name):
            item = describe_entries([entry])[0]
            pin = gw.security.pin(name, entry.name)
            item.update(pin.to_dict() if pin is not None else {"status": "pending"})
            item["name"] = entry.key
            tools.append(item)
        return JSONResponse({"server": name, "approval": gw.security.server_status(name),
                             "reason": gw.security.server_reason(name), "tools": tools})

    async def security_tool(request: Request) -> Response:
        key, action = request.path_params["key"], request.path_params["action"]
        server, sep, tool = key.partition(":")
        if not sep:
            raise InvalidArguments("the tool is named server:tool")
        if request.method == "GET" and action == "diff":
            return JSONResponse(gw.security.diff(server, tool))
        if request.method == "POST" and action in ("approve", "block"):
            return JSONResponse(await gw.decide_tool(key, action, by="api"))
        raise InvalidArguments(f"unknown action '{action}'", hint="GET diff, POST approve or block")

    async def security_scan(request: Request) -> Response:
        name = request.path_params["name"]
        gw.state.get(name)
        tools = [e.tool.model_dump(by_alias=True, mode="json", exclude_none=True) for e in gw.catalog.tools_of(name)]
        others = Catalog.from_tools({
            s: [e.tool.model_dump(by_alias=True, mode="json", exclude_none=True) for e in gw.catalog.tools_of(s)
                if gw.visible(e)]
            for s in gw.catalog.servers() if s != name
        })
        policy = ScanPolicy(warn_above=gw.settings.scan_warn_above,
                            quarantine_above=max(gw.settings.scan_warn_above, gw.settings.scan_quarantine_above))
        reports = await anyio.to_thread.run_sync(lambda: scan_tools(tools, server=name, others=others, policy=policy))
        return JSONResponse({"server": name, "reports": [r.to_dict() for r in reports]})

    async def server_logs(request: Request) -> Response:
        name = request.path_params["name"]
        if request.query_params.get("offset") is not None:
            path = gw.server_log(name)
            data, end = await _read_from(path, _int_param(request, "offset", 0))
            return JSONResponse({"server": name, "offset": end, "text": mask_known(data)})
        lines = max(1, _int_param(request, "lines", 50))  # 0 or less would slice to the whole tail
        path = gw.server_log(name)
        size = (await anyio.Path(path).stat()).st_size if await anyio.Path(path).exists() else 0
        return JSONResponse({"server": name, "lines": await tail_lines(gw, name, lines), "offset": size})

    async def list_tools(request: Request) -> Response:
        server = request.query_params.get("server")
        if server is not None:
            gw.state.get(server)  # a filter naming no server is the caller's mistake (404), not an empty list
        entries = [e for e in gw.visible_tools() if server is None or e.server == server]
        return JSONResponse({"tools": describe_entries(entries), "count": len(entries)})

    async def get_tool(request: Request) -> Response:
        entry = gw.resolve(f"{request.path_params['server']}:{request.path_params['tool']}")
        return JSONResponse(describe_entries([entry])[0])

    async def search(request: Request) -> Response:
        query = request.query_params.get("q", "")
        if not query.strip():
            raise InvalidArguments("'q' is required")
        limit = max(1, min(100, _int_param(request, "limit", gw.settings.tools_limit)))
        def flag(name: str) -> bool:
            return request.query_params.get(name) in ("1", "true")

        filters = SearchFilters(
            read_only_only=flag("read_only_only"),
            exclude_destructive=flag("exclude_destructive"),
            exclude_open_world=flag("exclude_open_world"),
        )
        diversify = request.query_params.get("diversify") not in ("0", "false")
        results = gw.search(query, limit, filters, diversify=diversify, explain=flag("explain"))
        tools = describe_entries([r.entry for r in results])
        for item, r in zip(tools, results, strict=True):
            item["score"] = round(r.score, 4)
            if r.why is not None:
                item["why"] = r.why
        return JSONResponse({"query": query, "tools": tools})

    async def call(request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidArguments("'name' is required ('server:tool')")
        args = body.get("args")
        args = {} if args is None else args
        if not isinstance(args, dict):
            raise InvalidArguments("'args' must be an object")
        tier_name = body.get("tier")
        tier = None
        if tier_name is not None:
            try:
                tier = Tier[str(tier_name).upper()]
            except KeyError:
                raise InvalidArguments("'tier' is read, write or destructive") from None
        client = request.client.host if request.client else None
        ctx = CallContext(via="rest", tier=tier, client=client, timeout=caller_timeout(body.get("timeout")))
        result = await gw.call_tool(name, args, ctx)
        return JSONResponse(result.model_dump(by_alias=True, mode="json", exclude_none=True))

    return [
        Route("/status", handler(status), methods=["GET"]),
        Route("/servers", handler(list_servers), methods=["GET"]),
        Route("/servers", handler(add_server), methods=["POST"]),
        Route("/servers/{name}", handler(get_server), methods=["GET"]),
        Route("/servers/{name}", handler(update_server), methods=["PATCH"]),
        Route("/servers/{name}", handler(delete_server), methods=["DELETE"]),
        Route("/servers/{name}/logs", handler(server_logs), methods=["GET"]),
        Route("/servers/{name}/{action}", handler(server_action), methods=["POST"]),
        Route("/tools", handler(list_tools), methods=["GET"]),
        Route("/tools/{server}/{tool:path}", handler(get_tool), methods=["GET"]),
        Route("/search", handler(search), methods=["GET"]),
        Route("/security", handler(security_overview), methods=["GET"]),
        Route("/tokens", handler(list_tokens), methods=["GET"]),
        Route("/tokens", handler(create_token), methods=["POST"]),
        Route("/tokens/{id}", handler(revoke_token), methods=["DELETE"]),
        Route("/security/servers/{name}", handler(security_server), methods=["GET"]),
        Route("/security/scan/{name}", handler(security_scan), methods=["GET"]),
        Route("/security/tools/{key}/{action}", handler(security_tool), methods=["GET", "POST"]),
        Route("/call", handler(call), methods=["POST"]),
        *build_activity_routes(gw),
    ]


async def _read_from(path: Path, offset: int) -> tuple[str, int]:
    def read() -> tuple[str, int]:
        if not path.exists():
            return "", 0
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            start = offset if 0 <= offset <= size else max(0, size - 64 * 1024)
            fh.seek(start)
            data = fh.read(1024 * 1024)
        return data.decode("utf-8", errors="replace"), start + len(data)

    return await anyio.to_thread.run_sync(read)
