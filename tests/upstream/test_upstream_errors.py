"""Foreign exceptions from the SDK, httpx and the OS become gateway errors with a usable reason."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcpproxy.errors import (
    ProxyError,
    UnknownTool,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from mcpproxy.upstream.errors import describe, is_connection_loss, map_upstream_errors, translate


def validation_error() -> ValidationError:
    try:
        types.Tool.model_validate({"name": 3})
    except ValidationError as exc:
        return exc
    raise AssertionError("the payload was expected to be invalid")


def http_status_error(status: int) -> httpx2.HTTPStatusError:
    request = httpx2.Request("POST", "https://example.com/mcp")
    response = httpx2.Response(status, request=request)
    return httpx2.HTTPStatusError(f"status {status}", request=request, response=response)


def raised_through_map(exc: BaseException, timeout: float | None = None) -> ProxyError:
    with pytest.raises(ProxyError) as info, map_upstream_errors("docs", timeout=timeout):
        raise exc
    assert info.value.__cause__ is exc or isinstance(exc, ProxyError)
    return info.value


# --- the translation table ---------------------------------------------------------------


def test_a_timeout_becomes_upstream_timeout_naming_the_limit() -> None:
    err = translate("docs", TimeoutError(), timeout=7.5)
    assert type(err) is UpstreamTimeout
    assert err.message == "server 'docs' did not answer within 7.5 s"
    assert err.hint is not None and "call_timeout" in err.hint
    assert err.data == {"server": "docs"}


def test_a_timeout_without_a_known_limit_still_says_it_timed_out() -> None:
    err = translate("docs", TimeoutError())
    assert type(err) is UpstreamTimeout
    assert err.message == "server 'docs' timed out"


def test_a_closed_connection_makes_the_server_unavailable() -> None:
    err = translate("docs", MCPError(types.CONNECTION_CLOSED, "Connection closed"))
    assert type(err) is UpstreamUnavailable
    assert err.message == "server 'docs' is unavailable: connection closed by the server"
    assert err.hint is not None and "mcpproxy upstream logs docs" in err.hint


def test_a_refused_connection_makes_the_server_unavailable() -> None:
    err = translate("docs", httpx2.ConnectError("[Errno 111] Connection refused"))
    assert type(err) is UpstreamUnavailable
    assert err.message == "server 'docs' is unavailable: cannot connect: [Errno 111] Connection refused"


@pytest.mark.parametrize(
    "exc",
    [anyio.BrokenResourceError(), anyio.ClosedResourceError(), anyio.EndOfStream(), ConnectionResetError(104, "reset")],
    ids=lambda e: type(e).__name__,
)
def test_a_broken_stream_makes_the_server_unavailable(exc: Exception) -> None:
    err = translate("docs", exc)
    assert type(err) is UpstreamUnavailable
    assert err.data == {"server": "docs"}


def test_a_missing_command_is_reported_as_such() -> None:
    err = translate("git", FileNotFoundError(2, "No such file or directory", "uvx"))
    assert type(err) is UpstreamUnavailable
    assert err.message == "server 'git' is unavailable: command not found: uvx"


def test_an_http_error_status_names_the_status_and_url() -> None:
    err = translate("docs", http_status_error(401))
    assert type(err) is UpstreamUnavailable
    assert "HTTP 401 from https://example.com/mcp" in err.message


def test_an_error_answer_from_the_server_keeps_its_code_and_data() -> None:
    err = translate("docs", MCPError(types.INVALID_PARAMS, "path must be absolute", data={"path": "x"}))
    assert type(err) is UpstreamError
    assert err.message == "server 'docs' answered with an error: path must be absolute"
    assert err.data == {"server": "docs", "upstream_code": types.INVALID_PARAMS, "upstream_data": {"path": "x"}}


def test_an_error_answer_without_data_has_no_upstream_data() -> None:
    err = translate("docs", MCPError(types.INTERNAL_ERROR, "boom"))
    assert err.data == {"server": "docs", "upstream_code": types.INTERNAL_ERROR}


@pytest.mark.parametrize(
    "exc",
    [validation_error(), ValueError("bad JSON"), RuntimeError("unexpected message")],
    ids=["ValidationError", "ValueError", "RuntimeError"],
)
def test_an_invalid_response_is_a_protocol_error(exc: Exception) -> None:
    err = translate("docs", exc)
    assert type(err) is UpstreamProtocolError
    assert err.message.startswith("server 'docs' sent an invalid response: ")


def test_an_unexpected_error_is_a_plain_upstream_error_with_its_type() -> None:
    err = translate("docs", LookupError("no such thing"))
    assert type(err) is UpstreamError
    assert err.message == "server 'docs' failed: LookupError: no such thing"
    assert "upstream_code" not in err.data


def test_a_gateway_error_passes_through_unchanged() -> None:
    original = UnknownTool("nope")
    assert translate("docs", original) is original


# --- map_upstream_errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), UpstreamTimeout),
        (MCPError(types.CONNECTION_CLOSED, "closed"), UpstreamUnavailable),
        (httpx2.ConnectError("refused"), UpstreamUnavailable),
        (anyio.BrokenResourceError(), UpstreamUnavailable),
        (OSError("pipe"), UpstreamUnavailable),
        (MCPError(-32601, "Method not found"), UpstreamError),
        (validation_error(), UpstreamProtocolError),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__,
)
def test_the_context_manager_translates_and_keeps_the_cause(exc: Exception, expected: type[ProxyError]) -> None:
    err = raised_through_map(exc, timeout=3)
    assert type(err) is expected
    assert err.__cause__ is exc


def test_the_context_manager_lets_gateway_errors_through() -> None:
    original = UnknownTool("nope")
    assert raised_through_map(original) is original


def test_the_context_manager_lets_a_programming_error_through() -> None:
    with pytest.raises(KeyError), map_upstream_errors("docs"):
        raise KeyError("bug")


def test_the_context_manager_does_nothing_on_success() -> None:
    with map_upstream_errors("docs"):
        value = 1
    assert value == 1


# --- exception groups --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (httpx2.ConnectError("refused"), UpstreamUnavailable),
        (TimeoutError(), UpstreamTimeout),
        (MCPError(types.INTERNAL_ERROR, "boom"), UpstreamError),
        (validation_error(), UpstreamProtocolError),
        (anyio.BrokenResourceError(), UpstreamUnavailable),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__,
)
def test_a_group_from_a_task_group_is_unwrapped(inner: Exception, expected: type[ProxyError]) -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [inner])
    err = raised_through_map(group, timeout=2)
    assert type(err) is expected
    assert err.__cause__ is group


def test_a_nested_group_is_unwrapped_to_the_first_error() -> None:
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [MCPError(types.INVALID_PARAMS, "bad")])])
    err = translate("docs", group)
    assert type(err) is UpstreamError
    assert err.data["upstream_code"] == types.INVALID_PARAMS
    assert err.message == "server 'docs' answered with an error: bad"


def test_a_gateway_error_inside_a_group_is_returned_as_is() -> None:
    original = UpstreamTimeout("slow")
    assert translate("docs", ExceptionGroup("g", [original])) is original


def test_describe_and_is_connection_loss_look_inside_groups() -> None:
    group = ExceptionGroup("g", [ExceptionGroup("h", [httpx2.ConnectError("refused")])])
    assert describe(group) == "cannot connect: refused"
    assert is_connection_loss(group)


# --- cancellation and interrupts are never swallowed ----------------------------------------


@pytest.mark.anyio
async def test_cancellation_passes_through_the_context_manager() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        with map_upstream_errors("docs"):
            await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_cancellation_in_a_group_is_reraised_even_next_to_a_transport_error() -> None:
    group = BaseExceptionGroup("g", [asyncio.CancelledError(), httpx2.ConnectError("refused")])
    with pytest.raises(BaseExceptionGroup) as info, map_upstream_errors("docs"):
        raise group
    assert info.value is group


@pytest.mark.anyio
async def test_cancellation_nested_in_a_group_is_reraised() -> None:
    group = ExceptionGroup("outer", [ValueError("x")])
    outer = BaseExceptionGroup("top", [group, BaseExceptionGroup("c", [asyncio.CancelledError()])])
    with pytest.raises(BaseExceptionGroup) as info, map_upstream_errors("docs"):
        raise outer
    assert info.value is outer


@pytest.mark.anyio
async def test_a_cancelled_task_group_around_an_upstream_call_is_still_cancelled() -> None:
    with anyio.CancelScope() as scope:
        with map_upstream_errors("docs"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep_forever)
                scope.cancel()
    assert scope.cancelled_caught


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(1)], ids=lambda e: type(e).__name__)
def test_interrupts_pass_through(exc: BaseException) -> None:
    with pytest.raises(type(exc)), map_upstream_errors("docs"):
        raise exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(1)], ids=lambda e: type(e).__name__)
def test_interrupts_in_a_group_pass_through(exc: BaseException) -> None:
    group = BaseExceptionGroup("g", [exc, httpx2.ConnectError("refused")])
    with pytest.raises(BaseExceptionGroup) as info, map_upstream_errors("docs"):
        raise group
    assert info.value is group
