"""The tool index behind a small protocol.

The gateway feeds the index one server at a time (``replace_server`` after every
``tools/list``, ``remove_server`` when a server goes away) and asks it ``search``. Engines
are variants behind ``ToolIndex``; the default is chosen by measurement (docs/search.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolDoc:
    """What the index knows of one tool.

    Attributes:
        server: Server name.
        name: Tool name as the server gives it.
        description: Tool description ("" when none).
        input_schema: JSON schema of the arguments.
        title: Human title, when the server gives one.
        annotations: Tool annotations (``readOnlyHint``, ...), wire names.
    """

    server: str
    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the tool's key and its score (higher is better)."""

    server: str
    name: str
    score: float

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


Allow = Callable[[str, str], bool]
"""``allow(server, tool)``: whether a tool may appear in results (policy filter)."""


class ToolIndex(Protocol):
    """A searchable index of tools, updated one server at a time."""

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        """Replace every tool of ``server`` with ``tools``; ``context`` describes the server."""

    def remove_server(self, server: str) -> None:
        """Forget every tool of ``server``."""

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        """The best ``limit`` tools for ``query``, best first, only those ``allow`` accepts."""

    def __len__(self) -> int:
        """Number of tools indexed."""
