"""Retrieval quality of the tool index on LiveMCPBench queries.

Usage: ``python bench/search_quality.py DATASET_DIR [--pool-multiplier N] [--ablations] [--hybrid]``

Indexes the catalogue through ``BM25Index`` (one ``replace_server`` per server, the server's
description as context), runs every dev query and prints tool-level Recall@1/5/10, NDCG@10 and
MRR, and server-level Recall@5 and NDCG@5 (see ``search_dataset``). A plain BM25 over tool name and
description (Okapi, k1 1.5, b 0.75, lower-cased words with identifiers split, no stemming, the
dataset's published baseline) is computed in the same run for comparison. ``--pool-multiplier N``
indexes N near-duplicate copies of the catalogue, to see how rankings hold up in a crowded pool.
``--ablations`` adds rows with one design choice undone at a time. ``--hybrid`` adds the hybrid rows
(needs the ``embeddings`` extra); the vectors of the 527 original tools are computed once per run,
and in a pool with ``--pool-multiplier`` a copy of a tool reuses its original's vector (a copy's text
differs only by shuffled sentences and a few words; recomputing 5,000 vectors per run is what the
latency benchmark's build figure measures).

The rows ``ToolSearch ...`` are what the gateway runs (``mcpproxy.search.engine``); ``BM25Index``
rows are its words channel alone. "no expansion" rows use the query's own words only (plus the
"current" rule of the first release), to show what synonyms and path terms add; "embedded as
written" gives the meaning channel the request with its paths and URLs, as before
``expand.meaning_text``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import mcpproxy.search.bm25 as bm25_module
import mcpproxy.search.engine as engine_module
import mcpproxy.search.tokenize as tokenize_module
from mcpproxy.search.base import Allow, Hit, ToolDoc, ToolIndex
from mcpproxy.search.bm25 import BM25Index, FieldWeights
from mcpproxy.search.engine import ToolSearch, embedding_text
from mcpproxy.search.expand import _PRESENT_PHRASES, _PRESENT_QUESTION, _PRESENT_WORDS
from mcpproxy.search.tokenize import tokenize
from search_dataset import SERVER_METRICS, TOOL_METRICS, evaluate, fill, load_servers, load_tasks, replicate


def plain_tokens(text: str) -> list[str]:
    """Lower-cased words, snake/kebab/camel identifiers split; no stop words, no stemming."""
    return re.findall(r"[^\W_]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text).lower())


class PlainBM25:
    """Okapi BM25 as rank-bm25 computes it (negative IDF floored at 0.25 x mean IDF), over
    tool name + description. Recomputed per query: a yardstick, not an engine."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.servers: dict[str, list[tuple[ToolDoc, list[str]]]] = {}

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        self.servers[server] = [(t, plain_tokens(f"{t.name} {t.description}")) for t in tools]

    def remove_server(self, server: str) -> None:
        self.servers.pop(server, None)

    def __len__(self) -> int:
        return sum(len(docs) for docs in self.servers.values())

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        docs = [doc for docs in self.servers.values() for doc in docs]
        n = len(docs)
        avgdl = sum(len(tokens) for _, tokens in docs) / n
        df: dict[str, int] = {}
        for _, tokens in docs:
            for term in set(tokens):
                df[term] = df.get(term, 0) + 1
        idf = {t: math.log(n - c + 0.5) - math.log(c + 0.5) for t, c in df.items()}
        floor = self.epsilon * sum(idf.values()) / len(idf)
        idf = {t: v if v >= 0 else floor for t, v in idf.items()}
        terms = plain_tokens(query)
        hits: list[Hit] = []
        for tool, tokens in docs:
            tf: dict[str, int] = {}
            for token in tokens:
                tf[token] = tf.get(token, 0) + 1
            norm = self.k1 * (1 - self.b + self.b * len(tokens) / avgdl)
            score = sum(idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in terms if t in tf)
            if score > 0 and (allow is None or allow(tool.server, tool.name)):
                hits.append(Hit(tool.server, tool.name, score))
        hits.sort(key=lambda h: (-h.score, h.key))
        return hits[:limit]


@contextmanager
def no_stemming() -> Iterator[None]:
    original = tokenize_module.stem
    tokenize_module.stem = lambda word: word  # type: ignore[assignment]
    tokenize_module._chunk_terms.cache_clear()
    try:
        yield
    finally:
        tokenize_module.stem = original
        tokenize_module._chunk_terms.cache_clear()


def words_only(query: str) -> list[tuple[str, float]]:
    """The first release's query terms: the query's words, plus "current" for questions about now."""
    terms = dict.fromkeys(tokenize(query), 1.0)
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", query)}
    if _PRESENT_QUESTION.search(query) or _PRESENT_PHRASES.search(query) or words & _PRESENT_WORDS:
        terms.update(dict.fromkeys(tokenize("current"), 1.0))
    return list(terms.items())


@contextmanager
def values_as_written() -> Iterator[None]:
    """The meaning channel embeds the request as written, paths and URLs included."""
    original = getattr(engine_module, "meaning_text")  # noqa: B009
    setattr(engine_module, "meaning_text", lambda query: query)  # noqa: B010
    try:
        yield
    finally:
        setattr(engine_module, "meaning_text", original)  # noqa: B010


@contextmanager
def no_expansion() -> Iterator[None]:
    modules = (bm25_module, engine_module)
    saved = [getattr(m, "weighted_terms") for m in modules]  # noqa: B009
    for module in modules:
        setattr(module, "weighted_terms", words_only)  # noqa: B010
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, "weighted_terms", original)  # noqa: B010


class Engine:
    """``ToolSearch`` as a ``ToolIndex`` with chosen options (and shared vectors in hybrid mode)."""

    def __init__(
        self, *, split: bool | None = None, diversify: bool = True, vectors: dict[str, Any] | None = None
    ) -> None:
        self.diversify = diversify
        self.vectors = vectors
        embedder = _VectorsOnly(vectors) if vectors is not None else None
        self.index = ToolSearch(embedder, split=split)

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        self.index.replace_server(server, tools, context)
        if self.vectors is not None:
            texts = self.index.without_vectors(server)
            originals = {t.name: embedding_text(t) for t in _originals.get(server.rsplit("_", 1)[0], ())}
            found = {n: self.vectors.get(texts[n], self.vectors.get(originals.get(n, ""))) for n in texts}
            self.index.set_vectors(server, {n: v for n, v in found.items() if v is not None}, texts)

    def remove_server(self, server: str) -> None:
        self.index.remove_server(server)

    def __len__(self) -> int:
        return len(self.index)

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        found = self.index.find([query], limit, allow, diversify=self.diversify)
        return [Hit(m.server, m.name, m.score) for m in found]

    def search_by_server(self, query: str, limit: int) -> list[Hit]:
        """The order of ``group_by_server`` (what the server-level metrics rank)."""
        found = self.index.find([query], limit, diversify=self.diversify, by_server=True)
        return [Hit(m.server, m.name, m.score) for m in found]


_originals: dict[str, tuple[ToolDoc, ...]] = {}


class _VectorsOnly:
    """An embedder for queries (real model); tool vectors come from ``Engine.vectors``."""

    def __init__(self, vectors: dict[str, Any]) -> None:
        from mcpproxy.search.embed import MiniLMEmbedder

        global _EMBEDDER
        if _EMBEDDER is None:
            _EMBEDDER = MiniLMEmbedder()
        self.model_id = _EMBEDDER.model_id
        self.dimension = _EMBEDDER.dimension

    def embed(self, texts: Sequence[str]) -> Any:
        assert _EMBEDDER is not None
        return _EMBEDDER.embed(texts)


_EMBEDDER: Any = None


def tool_vectors(servers: Sequence[Any]) -> dict[str, Any]:
    """Vectors of the distinct embedding texts of ``servers`` (the real model)."""
    from mcpproxy.search.embed import MiniLMEmbedder

    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = MiniLMEmbedder()
    texts = sorted({embedding_text(t) for s in servers for t in s.tools})
    return dict(zip(texts, _EMBEDDER.embed(texts), strict=True))


Variant = tuple[str, Callable[[], ToolIndex], Callable[[], AbstractContextManager[None]]]


def variants(ablations: bool, vectors: dict[str, Any] | None) -> list[Variant]:
    """Rows of the table: label, index factory, and the context to index and query in."""
    rows: list[Variant] = [
        ("plain BM25 name+description (baseline)", PlainBM25, nullcontext),
        ("BM25Index, no expansion (first release)", BM25Index, no_expansion),
        ("ToolSearch bm25 (default)", Engine, nullcontext),
    ]
    if vectors is not None:
        rows.append(("ToolSearch hybrid", partial(Engine, vectors=vectors), nullcontext))
    if not ablations:
        return rows
    rows += [
        ("  bm25: words channel only (BM25Index)", BM25Index, nullcontext),
        ("  bm25: no expansion", Engine, no_expansion),
        ("  bm25: with step split", partial(Engine, split=True), nullcontext),
        ("  bm25: no diversity", partial(Engine, diversify=False), nullcontext),
    ]
    if vectors is not None:
        rows += [
            ("  hybrid: no expansion", partial(Engine, vectors=vectors), no_expansion),
            ("  hybrid: no step split", partial(Engine, split=False, vectors=vectors), nullcontext),
            ("  hybrid: no diversity", partial(Engine, diversify=False, vectors=vectors), nullcontext),
            ("  hybrid: paths and URLs embedded as written", partial(Engine, vectors=vectors), values_as_written),
        ]
    weights = {
        "  BM25Index without server level": FieldWeights(server_share=0.0),
        "  BM25Index without server context": FieldWeights(context=0.0),
        "  BM25Index without parameters": FieldWeights(param_names=0.0, param_descriptions=0.0),
    }
    for label, w in weights.items():
        rows.append((label, partial(BM25Index, w), nullcontext))
    rows.append(("  BM25Index without stemming", BM25Index, no_stemming))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="folder with tools.json and queries-dev.json")
    parser.add_argument(
        "--pool-multiplier", type=int, default=1, metavar="N", help="index N copies of the catalogue"
    )
    parser.add_argument("--ablations", action="store_true", help="also score variants with one choice undone")
    parser.add_argument("--hybrid", action="store_true", help="also score hybrid mode (embeddings extra)")
    args = parser.parse_args(argv)

    base = load_servers(args.dataset)
    _originals.update({s.name: s.tools for s in base})
    tasks = load_tasks(args.dataset, base)
    servers = replicate(base, max(1, args.pool_multiplier))
    vectors = tool_vectors(base) if args.hybrid else None
    n_tools = sum(len(s.tools) for s in servers)
    table = Table(title=f"dev queries: {len(tasks)} tasks, {len(servers)} servers, {n_tools} tools")
    table.add_column("index")
    for metric in TOOL_METRICS + SERVER_METRICS:
        table.add_column(metric, justify="right")
    for label, make, context in variants(args.ablations, vectors):
        with context():
            result = evaluate(fill(make(), servers), servers, tasks)
        table.add_row(label, *(f"{result[m]:.3f}" for m in TOOL_METRICS + SERVER_METRICS))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
