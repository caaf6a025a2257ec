"""The tools of other servers, which cross-server shadowing rules compare a tool against.

A tool cannot be judged a copy or an imitation on its own: ``search_pubmed_v1`` is only
suspicious next to a ``search_pubmed`` on another server. The gateway knows every server's
``tools/list``, so it hands the scanner a ``Catalog``. Names are enough for collision and
imitation checks; descriptions, when given, also let the scanner spot a tool that copies
another server's description under a new name (a "tool transfer").

Lookups are by index only (exact name, visual skeleton, description shingles), so checking one
tool costs O(words in its description), not O(size of the catalog), and a batch of 10,000 tools
can be checked against itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mcpproxy.policy.scanner.text import normalise_words, skeleton

SHINGLE = 6
"""Descriptions shorter than this many words are too generic to count as copies."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One known tool of some server.

    Attributes:
        server: The server that exposes it.
        name: Tool name.
        words: Normalised words of its description (empty when unknown).
    """

    server: str
    name: str
    words: tuple[str, ...] = ()


class Catalog:
    """Known tools of several servers, indexed for the shadowing rules.

    Args:
        entries: Initial entries; more can be added with ``add``.
    """

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._by_name: dict[str, dict[str, Entry]] = {}
        self._by_skeleton: dict[str, set[str]] = {}
        self._shingles: dict[tuple[str, ...], list[Entry]] = {}
        for entry in entries:
            self._insert(entry)

    @classmethod
    def from_names(cls, names: Mapping[str, Iterable[str]]) -> Catalog:
        """A catalog from ``{server: [tool name, ...]}``."""
        return cls(Entry(server, name) for server, tools in names.items() for name in tools)

    @classmethod
    def from_tools(cls, tools: Mapping[str, Iterable[Mapping[str, Any]]]) -> Catalog:
        """A catalog from ``{server: [MCP tool, ...]}``; descriptions enable copy detection."""
        catalog = cls()
        for server, defs in tools.items():
            for tool in defs:
                catalog.add(server, tool.get("name"), tool.get("description"))
        return catalog

    def add(self, server: str, name: Any, description: Any = None) -> None:
        """Add one tool; a name that is not a string is ignored."""
        if isinstance(name, str) and name:
            words = normalise_words(description) if isinstance(description, str) else ()
            self._insert(Entry(server, name, words))

    def merged(self, other: Catalog) -> Catalog:
        """A new catalog holding the entries of both."""
        return Catalog([*self.entries(), *other.entries()])

    def entries(self) -> Iterator[Entry]:
        """Every entry, in insertion order per name."""
        for per_server in self._by_name.values():
            yield from per_server.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())

    def _insert(self, entry: Entry) -> None:
        per_server = self._by_name.setdefault(entry.name, {})
        if entry.server in per_server:
            return
        per_server[entry.server] = entry
        self._by_skeleton.setdefault(skeleton(entry.name), set()).add(entry.name)
        if len(entry.words) >= SHINGLE:
            self._shingles.setdefault(entry.words[:SHINGLE], []).append(entry)

    def named(self, name: str) -> list[Entry]:
        """Entries with exactly this name, on any server."""
        return list(self._by_name.get(name, {}).values())

    def has(self, server: str, name: str) -> bool:
        """Whether ``server`` exposes a tool called ``name``."""
        return server in self._by_name.get(name, {})

    def lookalikes(self, name: str) -> list[Entry]:
        """Entries whose name differs from ``name`` but has the same visual skeleton."""
        names = self._by_skeleton.get(skeleton(name), set())
        return [e for n in sorted(names) if n != name for e in self._by_name[n].values()]

    def copied_in(self, words: tuple[str, ...]) -> list[Entry]:
        """Entries whose whole description occurs, word for word, inside ``words``."""
        found: list[Entry] = []
        seen: set[tuple[str, str]] = set()
        for i in range(len(words) - SHINGLE + 1):
            for entry in self._shingles.get(words[i : i + SHINGLE], ()):
                key = (entry.server, entry.name)
                if key not in seen and words[i : i + len(entry.words)] == entry.words:
                    seen.add(key)
                    found.append(entry)
        return found
