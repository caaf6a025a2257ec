"""Tool search as the gateway runs it: channels, fusion, diversity, usage and explanations.

``ToolSearch`` is the index behind ``retrieve_tools``. It is a ``ToolIndex`` (the gateway feeds it
one server at a time) and answers a request through several ranked *channels*, fused by weighted
reciprocal rank (RRF: each channel gives a tool ``weight / (RRF_K + rank)``, the sums are sorted):

- **words**: the two-level BM25F index (``bm25.py``) over the request and its expansions
  (``expand.py``: synonyms, terms read from file paths and URLs, "current" for the present);
- **steps** (hybrid mode by default): when a request is a whole task ("read the sales sheet, plot it
  as a bar chart and save it as a PNG"), each step (``split.py``) is searched on its own and is a
  channel of weight ``STEP_WEIGHT``, so that the tools of every step reach the list, not only those
  of the step with the most words;
- **meaning** (hybrid mode only): cosine similarity between the request's sentence embedding and
  each tool's (``embed.py``, ``dense.py``), which finds tools described in other words ("find the
  painting" -> ``search-museum-objects``). The model sees the request with its paths and URLs said
  in words (``expand.meaning_text``); recent requests' vectors are kept (``QUERY_CACHE``).

A list of requests in one call gives each request its channels; a tool found by several rises.
Rank fusion needs no calibration between BM25 scores and cosines, and a channel that finds nothing
simply adds nothing. Then:

- **usage** (optional, per client): tools the same client called after earlier searches get a
  bounded bonus (``usage.py``);
- **diversity**: a tool whose name and description nearly repeat a tool already ranked higher (the
  same tool served by several servers, forks) is moved after the distinct ones, unless the caller
  asks for every copy (``diversify=False``);
- **explain**: each result can say why it matched: the words that matched in which fields (the
  tool's and its server's), which of them came from expansion, which channels found it at what
  rank, its similarity, its usage bonus, and what it is a near copy of;
- **by server** (``group_by_server``): the same results, server by server; when steps were
  searched, servers are ranked on the whole request's channels alone (``_server_by_server``).

Results depend only on the index contents and the request (and, with usage on, the client's
counts): ties are broken by tool key.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mcpproxy.search.base import Allow, Hit, ToolDoc
from mcpproxy.search.bm25 import BM25Index, FieldWeights, WeightedTerm
from mcpproxy.search.embed import Embedder, Vectors
from mcpproxy.search.expand import meaning_text, weighted_terms
from mcpproxy.search.split import split_steps
from mcpproxy.search.tokenize import tokenize
from mcpproxy.search.usage import UsageCounts

__all__ = [
    "COPY_SIMILARITY",
    "DEPTH",
    "MIN_SIMILARITY",
    "RRF_K",
    "SEMANTIC_WEIGHT",
    "STEP_DEPTH",
    "STEP_WEIGHT",
    "Match",
    "ToolSearch",
    "embedding_text",
]

RRF_K = 10
"""Rank offset of reciprocal rank fusion: small, so a channel's first places count clearly more than
its tenth (the usual 60 is meant for fusing many long lists of similar quality)."""
STEP_WEIGHT = 0.5
"""Weight of a step's channel relative to the whole request's: a step is evidence for part of the
task only."""
STEP_MAX_SHARE = 0.25
"""A step leaves out terms found in more than this share of the tools ("file", "get"): the whole
request's channel already counts them, and for a step they cost the most time for the least
information."""
SEMANTIC_WEIGHT = 1.0
"""Weight of the meaning channel relative to the words channel."""
DEPTH = 100
"""Candidates taken from each channel."""
STEP_DEPTH = 5
"""Candidates taken from a step's channel: a step is one narrow need, and what it adds is its few
best tools; deeper, a tool that is mediocre for every step (it takes a file path...) would gather
votes from all of them."""
COPY_SIMILARITY = 0.5
"""Two tools with the same name whose description word sets overlap at least this much (Jaccard)
are near copies."""
MIN_SIMILARITY = 0.15
"""Cosine below which the meaning channel does not count a tool as found: sentence embeddings of
unrelated texts still have small positive similarities, and a request that matches nothing should
not return the catalogue's least unrelated tools."""
MAX_QUERIES = 10
"""Requests used from one call (the first ones)."""
WORKER_START_WAIT = 0.05
"""Seconds a search waits at most for the embedding worker to start (it is idle between searches,
so it starts at once; the bound only keeps a search from hanging on a stuck worker)."""
QUERY_CACHE = 256
"""Request vectors kept (the most recently used): an agent that repeats a request, or several
sessions that ask the same thing, do not pay for its embedding again."""


@dataclass(frozen=True, slots=True)
class Match:
    """One result of ``ToolSearch.find``.

    Attributes:
        server: Server name.
        name: Tool name.
        score: Fused score (higher is better; comparable within one answer only).
        why: Why it matched, when asked for (see the module docstring).
    """

    server: str
    name: str
    score: float
    why: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def embedding_text(tool: ToolDoc) -> str:
    """The text a tool's vector is computed from: its name in words, its title and its description."""
    words = re.sub(r"[_\-.:/]+", " ", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", tool.name)).strip()
    title = tool.title or (tool.annotations.get("title") if isinstance(tool.annotations.get("title"), str) else "")
    head = f"{words}: {title}." if title else f"{words}:"
    return f"{head} {tool.description}".strip()


def _signature(tool: ToolDoc) -> tuple[str, frozenset[str]]:
    return re.sub(r"[^0-9a-z]+", "", tool.name.lower()), frozenset(tokenize(tool.description))


def _near_copy(a: tuple[str, frozenset[str]], b: tuple[str, frozenset[str]]) -> bool:
    if a[0] != b[0]:
        return False
    if not a[1] and not b[1]:
        return True
    return len(a[1] & b[1]) / len(a[1] | b[1]) >= COPY_SIMILARITY


@dataclass(slots=True)
class _Channel:
    kind: str  # "words", "step" or "meaning"
    query: str
    weight: float
    ranking: list[tuple[str, float]]


def _fuse(channels: Sequence[_Channel]) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: each channel gives a tool ``weight / (RRF_K + rank)``."""
    fused: dict[str, float] = {}
    for channel in channels:
        for rank, (key, _) in enumerate(channel.ranking, 1):
            fused[key] = fused.get(key, 0.0) + channel.weight / (RRF_K + rank)
    return fused


def _server_by_server(picked: list[str], channels: Sequence[_Channel], copies: Mapping[str, str]) -> list[str]:
    """``picked`` (tool keys, in the order of the answer) regrouped server by server.

    Without steps, servers come in the order of their first tool in the answer. When the steps of a
    whole task were searched, servers are ranked by their best tool in the fusion of the whole
    request's channels (words, meaning) alone: the steps bring each step's best tools into the
    results, which is what a flat list needs, but they say less about which servers the whole task
    needs, and ranking servers by them put the servers of stray step matches ahead
    (docs/search.md, "Server level"). Servers found only through steps follow, and a server whose
    tools here are all near copies of others' comes after those with a tool of its own, as in the
    flat list.
    """
    first_seen: dict[str, int] = {}
    for key in picked:
        first_seen.setdefault(key.partition(":")[0], len(first_seen))
    server_rank: dict[str, int] = {}
    if any(channel.kind == "step" for channel in channels):
        whole = _fuse([channel for channel in channels if channel.kind != "step"])
        for key in sorted(whole, key=lambda k: (-whole[k], k)):
            server_rank.setdefault(key.partition(":")[0], len(server_rank))
    own = {key.partition(":")[0] for key in picked if key not in copies}
    unranked = len(server_rank)

    def place(item: tuple[int, str]) -> tuple[bool, int, int, int]:
        server = item[1].partition(":")[0]
        return server not in own, server_rank.get(server, unranked), first_seen[server], item[0]

    return [key for _, key in sorted(enumerate(picked), key=place)]


class ToolSearch:
    """The gateway's tool index (see the module docstring).

    Args:
        embedder: Sentence embedder for hybrid mode; ``None`` for words only (BM25 mode).
        weights: BM25 field weights (module defaults when omitted).
        usage: Per-client call counts, when the usage signal is on.
        split: Whether to search the steps of a whole-task request separately; ``None`` (the
            default) does so in hybrid mode only, where it was measured to help and its cost
            overlaps the request's embedding (in bm25 mode it doubled the cost of a long request
            for no gain; see docs/search.md).
        query_cache: Request vectors kept for reuse (hybrid mode); 0 embeds every request.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        weights: FieldWeights | None = None,
        usage: UsageCounts | None = None,
        split: bool | None = None,
        query_cache: int = QUERY_CACHE,
    ) -> None:
        self.lexical = BM25Index(weights)
        self.query_cache = query_cache
        self._query_vectors: OrderedDict[str, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.embedder = embedder
        self.usage = usage
        self.split = split
        self.dense: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._docs: dict[str, dict[str, ToolDoc]] = {}
        self._signatures: dict[str, tuple[str, frozenset[str]]] = {}
        if embedder is not None:
            self.enable_embeddings(embedder)

    def enable_embeddings(self, embedder: Embedder) -> None:
        """Switch to hybrid mode with ``embedder`` (tools get vectors through ``set_vectors``)."""
        from mcpproxy.search.dense import DenseIndex

        self.embedder = embedder
        self.dense = DenseIndex(embedder.dimension)
        with self._cache_lock:
            self._query_vectors.clear()

    @property
    def mode(self) -> str:
        """``hybrid`` with an embedder, else ``bm25``."""
        return "hybrid" if self.embedder is not None else "bm25"

    def __len__(self) -> int:
        return len(self.lexical)

    # -- feeding -------------------------------------------------------------------------------

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        """Replace every tool of ``server``; vectors of tools whose text changed are dropped."""
        unique: dict[str, ToolDoc] = {}
        for tool in tools:
            unique.setdefault(tool.name, tool)
        old = self._docs.pop(server, {})
        for name, doc in old.items():
            key = f"{server}:{name}"
            self._signatures.pop(key, None)
            new = unique.get(name)
            if self.dense is not None and (new is None or embedding_text(new) != embedding_text(doc)):
                self.dense.remove(key)
        self.lexical.replace_server(server, list(unique.values()), context)
        if unique:
            self._docs[server] = unique
            for name, doc in unique.items():
                self._signatures[f"{server}:{name}"] = _signature(doc)

    def remove_server(self, server: str) -> None:
        """Forget every tool of ``server`` and its vectors."""
        for name in self._docs.pop(server, {}):
            key = f"{server}:{name}"
            self._signatures.pop(key, None)
            if self.dense is not None:
                self.dense.remove(key)
        self.lexical.remove_server(server)

    def tools(self, server: str) -> list[ToolDoc]:
        """The indexed tools of ``server``."""
        return list(self._docs.get(server, {}).values())

    def servers(self) -> list[str]:
        return sorted(self._docs)

    def without_vectors(self, server: str) -> dict[str, str]:
        """``name -> embedding text`` of the tools of ``server`` that have no vector yet (hybrid)."""
        if self.dense is None:
            return {}
        return {
            name: embedding_text(doc)
            for name, doc in self._docs.get(server, {}).items()
            if f"{server}:{name}" not in self.dense
        }

    def set_vectors(self, server: str, vectors: Mapping[str, Vectors], texts: Mapping[str, str]) -> int:
        """Store vectors of tools of ``server``, each only if the tool still has the text it was made from.

        Args:
            server: Server name.
            vectors: ``tool name -> unit vector``.
            texts: ``tool name -> the embedding text the vector was computed from``.

        Returns:
            How many vectors were stored.
        """
        if self.dense is None:
            return 0
        docs = self._docs.get(server, {})
        stored = 0
        for name, vector in vectors.items():
            doc = docs.get(name)
            if doc is not None and embedding_text(doc) == texts.get(name):
                self.dense.set(f"{server}:{name}", vector)
                stored += 1
        return stored

    def embed_server(self, server: str) -> int:
        """Compute the missing vectors of ``server`` now, in this thread; returns how many."""
        if self.embedder is None:
            return 0
        texts = self.without_vectors(server)
        if not texts:
            return 0
        names = list(texts)
        matrix = self.embedder.embed([texts[n] for n in names])
        return self.set_vectors(server, dict(zip(names, matrix, strict=True)), texts)

    # -- searching -----------------------------------------------------------------------------

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        """``ToolIndex.search``: ``find([query], limit, allow)`` as hits."""
        return [Hit(m.server, m.name, m.score) for m in self.find([query], limit, allow)]

    def find(
        self,
        queries: Sequence[str],
        limit: int,
        allow: Allow | None = None,
        *,
        diversify: bool = True,
        explain: bool = False,
        client: str | None = None,
        by_server: bool = False,
    ) -> list[Match]:
        """The best ``limit`` tools for one or more requests (see the module docstring).

        Args:
            queries: Requests: a short query, a whole task, or several of either.
            limit: Maximum number of results.
            allow: ``allow(server, tool)``, applied in every channel before its cut.
            diversify: Move near copies of a higher-ranked tool after the distinct tools.
            explain: Attach ``why`` to each result.
            client: The client asking (for the usage signal; ignored when it is off).
            by_server: Order the same results server by server (``group_by_server``): servers
                by how well they fit the whole request, each server's tools in fused order.

        Returns:
            Matches, best first (server by server with ``by_server``).
        """
        queries = [q for q in queries if q and q.strip()][:MAX_QUERIES]
        if limit <= 0 or not queries or not len(self.lexical):
            return []
        channels = self._channels(queries, allow)
        fused = _fuse(channels)
        if self.usage is not None and client is not None:
            unit = 1.0 / (RRF_K + 1)
            for key in fused:
                fused[key] += unit * self.usage.factor(client, key)
        order = sorted(fused, key=lambda k: (-fused[k], k))
        picked, copies = self._diversified(order, limit) if diversify else (order[:limit], {})
        if by_server:
            picked = _server_by_server(picked, channels, copies)
        out: list[Match] = []
        for key in picked:
            server, _, name = key.partition(":")
            why = self._why(key, queries, channels, copies.get(key), client) if explain else None
            out.append(Match(server, name, fused[key], why))
        return out

    def _channels(self, queries: Sequence[str], allow: Allow | None) -> list[_Channel]:
        # The requests are embedded in a worker thread while the words channels are computed here:
        # onnxruntime releases the GIL, so on two cores a hybrid search costs about the longer of
        # the two, not their sum. The worker needs the GIL to start, and a thread that waits for
        # it gets it only when its holder blocks or after the switch interval (5 ms): so this
        # thread waits until the worker has started, which then holds the GIL only to tokenize
        # (tens of microseconds) before the model releases it.
        embedding: Future[Any] | None = None
        if self.embedder is not None and self.dense is not None and len(self.dense):
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpproxy-embed")
            started = threading.Event()

            def embed(texts: list[str]) -> list[Any]:
                started.set()
                return self._embed_queries(texts)

            embedding = self._executor.submit(embed, list(queries))
            started.wait(WORKER_START_WAIT)
        per_query: list[tuple[_Channel, list[_Channel]]] = []
        for query in queries:
            terms = weighted_terms(query)
            ranking = [(tool.key, score) for tool, score in self.lexical.ranked(terms, DEPTH, allow)]
            steps: list[_Channel] = []
            if self.split if self.split is not None else self.embedder is not None:
                for step in split_steps(query):
                    step_terms = weighted_terms(step)
                    found = self.lexical.ranked_sparse(step_terms, STEP_DEPTH, allow, max_share=STEP_MAX_SHARE)
                    steps.append(_Channel("step", step, STEP_WEIGHT, [(t.key, s) for t, s in found]))
            per_query.append((_Channel("words", query, 1.0, ranking), steps))
        vectors = embedding.result() if embedding is not None else None
        channels: list[_Channel] = []
        for i, (words, steps) in enumerate(per_query):
            channels.append(words)
            if vectors is not None:
                found_meaning = self.dense.ranked(vectors[i], DEPTH, allow)
                meaning = [(k, c) for k, c in found_meaning if c >= MIN_SIMILARITY]
                channels.append(_Channel("meaning", words.query, SEMANTIC_WEIGHT, meaning))
            channels.extend(steps)
        return channels

    def _embed_queries(self, queries: Sequence[str]) -> list[Any]:
        """The vectors of ``queries``: cached ones reused, the others embedded in one batch, each
        with its paths and URLs said in words (``expand.meaning_text``)."""
        assert self.embedder is not None
        with self._cache_lock:
            known = {q: self._query_vectors[q] for q in queries if q in self._query_vectors}
            for q in known:
                self._query_vectors.move_to_end(q)
        missing = [q for q in dict.fromkeys(queries) if q not in known]
        if missing:
            known.update(zip(missing, self.embedder.embed([meaning_text(q) for q in missing]), strict=True))
            if self.query_cache > 0:
                with self._cache_lock:
                    for q in missing:
                        self._query_vectors[q] = known[q]
                    while len(self._query_vectors) > self.query_cache:
                        self._query_vectors.popitem(last=False)
        return [known[q] for q in queries]

    def _diversified(self, order: list[str], limit: int) -> tuple[list[str], dict[str, str]]:
        """``order`` with near copies of higher-ranked tools moved after the distinct ones."""
        picked: list[str] = []
        deferred: list[str] = []
        copies: dict[str, str] = {}
        by_name: dict[str, list[str]] = {}
        for key in order:
            signature = self._signatures.get(key)
            if signature is None:
                picked.append(key)
            else:
                original = next(
                    (k for k in by_name.get(signature[0], ()) if _near_copy(self._signatures[k], signature)), None
                )
                if original is None:
                    by_name.setdefault(signature[0], []).append(key)
                    picked.append(key)
                else:
                    copies[key] = original
                    deferred.append(key)
            if len(picked) >= limit:
                break
        return (picked + deferred)[:limit], copies

    def _why(
        self, key: str, queries: Sequence[str], channels: Sequence[_Channel], copy_of: str | None, client: str | None
    ) -> dict[str, Any]:
        server, _, name = key.partition(":")
        own: dict[str, float] = {}
        for query in queries:
            for term, weight in weighted_terms(query):
                own[term] = max(own.get(term, 0.0), weight)
        terms: list[WeightedTerm] = list(own.items())
        detail = self.lexical.explain(terms, server, name)
        said = {term for query in queries for term in tokenize(query)}
        expanded = sorted(t for t in {*detail["tool"], *detail["server"]} if t not in said)
        found_by = []
        for channel in channels:
            for rank, (k, score) in enumerate(channel.ranking, 1):
                if k == key:
                    entry: dict[str, Any] = {"by": channel.kind, "rank": rank}
                    if len(queries) > 1 or channel.kind == "step":
                        entry["query"] = channel.query
                    if channel.kind == "meaning":
                        entry["similarity"] = round(score, 3)
                    found_by.append(entry)
                    break
        why: dict[str, Any] = {"matched": detail["tool"], "server_matched": detail["server"], "found_by": found_by}
        if expanded:
            why["expanded"] = expanded
        if self.usage is not None and client is not None:
            calls = self.usage.count(client, key)
            if calls:
                why["usage_calls"] = calls
        if copy_of is not None:
            why["near_copy_of"] = copy_of
        return why
