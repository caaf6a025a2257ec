"""The gateway's side of search: feeding the index, vectors in the background, the usage signal.

``SearchService`` sits between the gateway and ``ToolSearch``. The gateway hands it every tool list
(``index_server``) with the server's description and instructions as context; the words index is
updated at once. In hybrid mode the vectors follow in the background: the tools' hashes are looked
up in the database, only tools never embedded (or whose text changed) are embedded, in a worker
thread, then stored; until then a tool is found by words alone. Embedding one server at a time
never blocks the event loop, and a newer tool list of the same server wins over an older one still
being embedded.

When ``search_usage_boost`` is on, the service remembers which tools each client's last searches
returned, and as a call observer counts a successful call of one of them by the same client
(memory and database). Clients without an identity are not counted.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import mcp_types as types
from anyio.abc import TaskGroup

from mcpproxy.errors import ProxyError
from mcpproxy.search.base import ToolDoc
from mcpproxy.search.embed import Embedder, load_embedder
from mcpproxy.search.engine import ToolSearch
from mcpproxy.search.usage import UsageCounts
from mcpproxy.store.db import Store
from mcpproxy.store.tools import tool_hash
from mcpproxy.store.vectors import SearchStore, StoredVector, text_hash

if TYPE_CHECKING:
    from mcpproxy.gateway import CallRecord

logger = logging.getLogger(__name__)

__all__ = ["SearchService", "server_context", "tool_doc"]

RECENT_CLIENTS = 256
"""Clients whose last search results are remembered for the usage signal."""
RECENT_RESULTS = 100
"""Results remembered per client (the most recent searches first)."""


def tool_doc(server: str, tool: types.Tool) -> ToolDoc:
    """What the index keeps of a listed tool."""
    ann = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
    return ToolDoc(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema or {}),
        title=tool.title,
        annotations=ann,
    )


def server_context(description: str | None, instructions: str | None) -> str:
    """The server-level text searched with its tools: the configured description, then its instructions."""
    return "\n".join(part for part in (description, instructions) if part)


class SearchService:
    """Feeds and queries a ``ToolSearch`` for a running gateway (see the module docstring).

    Args:
        index: The index (the gateway's ``index``).
        mode: ``bm25`` or ``hybrid``.
        usage_boost: Whether the usage signal is on.
        embedder: The embedder for hybrid mode (default: ``load_embedder()``, which raises
            ``EmbeddingsUnavailable`` when the extra is missing).
    """

    def __init__(
        self, index: ToolSearch, *, mode: str = "bm25", usage_boost: bool = False, embedder: Embedder | None = None
    ) -> None:
        self.index = index
        self.embedder: Embedder | None = None
        if mode == "hybrid":
            self.embedder = embedder or load_embedder()
            index.enable_embeddings(self.embedder)
        self.usage = UsageCounts() if usage_boost else None
        index.usage = self.usage
        self._store: SearchStore | None = None
        self._tg: TaskGroup | None = None
        self._pending: dict[str, list[types.Tool]] = {}
        self._generation: dict[str, int] = {}
        self._recent: OrderedDict[str, list[str]] = OrderedDict()
        self._idle = anyio.Event()
        self._idle.set()
        self._running = 0

    async def open(self, store: Store) -> None:
        """Attach the database and load the usage counts."""
        self._store = SearchStore(store)
        if self.usage is not None:
            self.usage.load(await self._store.usage())

    def start(self, tg: TaskGroup) -> None:
        """Start embedding in the background (hybrid); tool lists given before this are embedded now."""
        self._tg = tg
        pending, self._pending = self._pending, {}
        for server, tools in pending.items():
            self._schedule(server, tools)

    # -- feeding ------------------------------------------------------------------------------

    def index_server(self, server: str, tools: Sequence[types.Tool], context: str = "") -> None:
        """Index ``tools`` of ``server`` now (words); their vectors follow in the background."""
        self.index.replace_server(server, [tool_doc(server, t) for t in tools], context)
        self._generation[server] = self._generation.get(server, 0) + 1
        if self.embedder is None:
            return
        if self._tg is None:
            self._pending[server] = list(tools)
        else:
            self._schedule(server, list(tools))

    def remove_server(self, server: str) -> None:
        self._generation[server] = self._generation.get(server, 0) + 1
        self._pending.pop(server, None)
        self.index.remove_server(server)

    def _schedule(self, server: str, tools: list[types.Tool]) -> None:
        assert self._tg is not None
        self._busy()
        self._tg.start_soon(self._embed_guarded, server, tools, self._generation.get(server, 0))

    async def _embed_guarded(self, server: str, tools: list[types.Tool], generation: int) -> None:
        try:
            await self.embed_server(server, tools, generation)
        except ProxyError as exc:
            logger.warning("cannot embed the tools of %s: %s", server, exc)
        except Exception:
            logger.exception("embedding the tools of %s failed", server)
        finally:
            self._done()

    def _busy(self) -> None:
        if not self._running:
            self._idle = anyio.Event()
        self._running += 1

    def _done(self) -> None:
        self._running -= 1
        if not self._running:
            self._idle.set()

    async def wait_embedded(self) -> None:
        """Return when no embedding (nor usage write) is in progress (tests, benchmarks)."""
        while self._running:
            await self._idle.wait()

    async def embed_server(self, server: str, tools: Sequence[types.Tool], generation: int | None = None) -> int:
        """Give the tools of ``server`` their vectors: stored ones reused, missing ones computed and stored.

        Returns:
            How many vectors were computed (not found in the database).
        """
        embedder = self.embedder
        if embedder is None:
            return 0
        import numpy as np

        texts = self.index.without_vectors(server)
        if not texts:
            return 0
        hashes = {
            t.name: tool_hash(t.model_dump(by_alias=True, mode="json", exclude_none=True))
            for t in tools
            if t.name in texts
        }
        stored = await self._store.vectors(embedder.model_id, list(hashes.values())) if self._store else {}
        found: dict[str, Any] = {}
        missing: list[str] = []
        for name, text in texts.items():
            row = stored.get(hashes.get(name, ""))
            if row is not None and row.text_hash == text_hash(text):
                found[name] = np.frombuffer(row.vector, dtype="<f4").astype(np.float32)
            else:
                missing.append(name)
        computed: dict[str, Any] = {}
        if missing:
            matrix = await anyio.to_thread.run_sync(embedder.embed, [texts[n] for n in missing])
            computed = dict(zip(missing, matrix, strict=True))
            if self._store is not None:
                await self._store.save_vectors(
                    embedder.model_id,
                    [
                        StoredVector(hashes[n], text_hash(texts[n]), np.asarray(v, dtype="<f4").tobytes())
                        for n, v in computed.items()
                        if n in hashes
                    ],
                )
        if generation is not None and self._generation.get(server, 0) != generation:
            return len(computed)  # a newer tool list arrived meanwhile; it brings its own vectors
        self.index.set_vectors(server, {**found, **computed}, texts)
        return len(computed)

    # -- usage signal ----------------------------------------------------------------------------

    def remember(self, client: str | None, keys: Iterable[str]) -> None:
        """Note the tools a search returned to ``client`` (usage signal only)."""
        if self.usage is None or client is None:
            return
        recent = self._recent.pop(client, [])
        recent = list(dict.fromkeys([*keys, *recent]))[:RECENT_RESULTS]
        self._recent[client] = recent
        while len(self._recent) > RECENT_CLIENTS:
            self._recent.popitem(last=False)

    def call_started(self, record: CallRecord) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        """Count a successful call of a tool the same client was just shown by a search."""
        client = record.ctx.client
        entry = record.entry
        if self.usage is None or client is None or entry is None or record.status != "ok":
            return
        if entry.key not in self._recent.get(client, ()):
            return
        self.usage.record(client, entry.key)
        if self._tg is not None and self._store is not None:
            self._busy()
            self._tg.start_soon(self._save_usage, client, entry.server, entry.name)

    async def _save_usage(self, client: str, server: str, name: str) -> None:
        try:
            if self._store is not None:
                await self._store.record_usage(client, server, name)
        except ProxyError as exc:
            logger.warning("cannot record search usage: %s", exc)
        finally:
            self._done()

