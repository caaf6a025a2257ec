"""Namespaced resource URIs and prompt names, and rewriting them inside results.

On the aggregated endpoints (``/mcp`` and ``/mcp/all``) every upstream's resources share one
list, so each URI carries its server: ``mcpproxy://<server>/<original URI>``. The original
text is kept verbatim after the prefix (never re-encoded), so:

- any URI a client was given reads back exactly (``split_uri`` inverts ``namespace_uri``);
- a resource template stays a valid RFC 6570 template, and its expansion is the namespaced
  form of the original template's expansion (``mcpproxy://s/test://item/{id}`` expands to
  ``mcpproxy://s/test://item/42``, which maps back to ``test://item/42``).

Prompts are named ``server__prompt`` like tools in direct mode. A server name never contains
``/`` nor ``__`` (settings enforce it), so both split unambiguously at the first separator.

Rewriting: resource links and embedded resources inside tool results, prompt messages and
read results are namespaced with the same function, so every URI a client sees on an
aggregated endpoint is one it can read back. On ``/mcp/s/<server>`` nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import mcp_types as types
from pydantic import BaseModel

from mcpproxy.errors import NotFound

SCHEME = "mcpproxy"
URI_PREFIX = f"{SCHEME}://"
PROMPT_SEPARATOR = "__"

Rewrite = Callable[[str], str]
"""Maps one URI as the upstream wrote it to the URI the client sees."""

_M = TypeVar("_M", bound=BaseModel)


RESOURCE_NOT_FOUND = -32002
"""The spec's error code for a resource that does not exist."""


class UnknownResource(NotFound):
    """A resource URI or prompt name that no server owns."""

    kind = "unknown_resource"
    code = RESOURCE_NOT_FOUND


def namespace_uri(server: str, uri: str) -> str:
    """``uri`` of ``server`` as the aggregated endpoints show it."""
    return f"{URI_PREFIX}{server}/{uri}"


def split_uri(uri: str) -> tuple[str, str]:
    """A namespaced URI -> ``(server, original URI)``.

    Raises:
        UnknownResource: ``uri`` is not of the form ``mcpproxy://<server>/<uri>``.
    """
    if uri.startswith(URI_PREFIX):
        rest = uri[len(URI_PREFIX) :]
        server, sep, original = rest.partition("/")
        if sep and server and original:
            return server, original
    raise UnknownResource(
        f"'{uri}' is not a resource URI of this gateway",
        hint="use a URI exactly as resources/list or resources/templates/list returned it, "
        "e.g. 'mcpproxy://server/file:///notes.txt'",
        data={"uri": uri},
    )


def namespace_prompt(server: str, name: str) -> str:
    """Prompt ``name`` of ``server`` as the aggregated endpoints show it."""
    return f"{server}{PROMPT_SEPARATOR}{name}"


class UnknownPrompt(NotFound):
    """A prompt name that no server owns."""

    kind = "unknown_prompt"
    code = types.INVALID_PARAMS


def split_prompt(name: str) -> tuple[str, str]:
    """``server__prompt`` -> ``(server, prompt)``.

    Raises:
        UnknownPrompt: ``name`` has no server part.
    """
    server, sep, prompt = name.partition(PROMPT_SEPARATOR)
    if sep and server and prompt:
        return server, prompt
    raise UnknownPrompt(
        f"'{name}' is not a prompt name of this gateway",
        hint="use a name exactly as prompts/list returned it, e.g. 'server__prompt'",
        data={"name": name},
    )


def identity(uri: str) -> str:
    """The rewrite of the single-server endpoints: URIs stay as the upstream wrote them."""
    return uri


def namespacer(server: str) -> Rewrite:
    """The rewrite of the aggregated endpoints for results of ``server``."""

    def rewrite(uri: str) -> str:
        return namespace_uri(server, uri)

    return rewrite


def _rewrite_block(block: Any, rewrite: Rewrite) -> Any:
    if isinstance(block, types.ResourceLink):
        return block.model_copy(update={"uri": rewrite(block.uri)})
    if isinstance(block, types.EmbeddedResource):
        inner = block.resource.model_copy(update={"uri": rewrite(block.resource.uri)})
        return block.model_copy(update={"resource": inner})
    return block


def rewrite_content(blocks: Sequence[Any], rewrite: Rewrite) -> list[Any]:
    """Content blocks with every resource link and embedded resource URI rewritten."""
    return [_rewrite_block(block, rewrite) for block in blocks]


def rewrite_call_result(result: types.CallToolResult, rewrite: Rewrite) -> types.CallToolResult:
    """A tool result whose resource links point where the client can read them."""
    if rewrite is identity:
        return result
    return result.model_copy(update={"content": rewrite_content(result.content, rewrite)})


def rewrite_prompt_result(result: types.GetPromptResult, rewrite: Rewrite) -> types.GetPromptResult:
    """A prompt whose embedded resources and links point where the client can read them."""
    if rewrite is identity:
        return result
    messages = [m.model_copy(update={"content": _rewrite_block(m.content, rewrite)}) for m in result.messages]
    return result.model_copy(update={"messages": messages})


def rewrite_read_result(result: types.ReadResourceResult, rewrite: Rewrite) -> types.ReadResourceResult:
    """Read contents under the URI the client asked with (and sub-resources namespaced)."""
    if rewrite is identity:
        return result
    contents = [c.model_copy(update={"uri": rewrite(c.uri)}) for c in result.contents]
    return result.model_copy(update={"contents": contents})


def renamed(model: _M, **update: Any) -> _M:
    """A copy of a listed item (resource, template, prompt) with new identifying fields."""
    copy: _M = model.model_copy(update=update)
    return copy
