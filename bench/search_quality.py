"""Retrieval quality of the tool index on LiveMCPBench queries.

Usage: ``python bench/search_quality.py DATASET_DIR [--pool-multiplier N] [--ablations]``

Indexes the catalogue through ``BM25Index`` (one ``replace_server`` per server, the server's
description as context), runs every dev query and prints tool-level Recall@1/5/10, NDCG@10 and
MRR, and server-level Recall@5 and NDCG@5 (see ``search_dataset``). A plain BM25 over tool name and
description (Okapi, k1 1.5, b 0.75, lower-cased words with identifiers split, no stemming, the
dataset's published baseline) is computed in the same run for comparison. ``--pool-multiplier N``
indexes N near-duplicate copies of the catalogue, to see how rankings hold up in a crowded pool.
``--ablations`` adds rows with one design choice undone at a time.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

import mcpproxy.search.tokenize as tokenize_module
from mcpproxy.search.base import Allow, Hit, ToolDoc, ToolIndex
from mcpproxy.search.bm25 import BM25Index, FieldWeights
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


Variant = tuple[str, Callable[[], ToolIndex], Callable[[], AbstractContextManager[None]]]


def variants(ablations: bool) -> list[Variant]:
    """Rows of the table: label, index factory, and the context to index and query in."""
    rows: list[Variant] = [
        ("plain BM25 name+description (baseline)", PlainBM25, nullcontext),
        ("BM25Index (default)", BM25Index, nullcontext),
    ]
    if not ablations:
        return rows
    weights = {
        "  without server level": FieldWeights(server_share=0.0),
        "  without server context": FieldWeights(context=0.0),
        "  without parameters": FieldWeights(param_names=0.0, param_descriptions=0.0),
        "  all tool fields weight 1": FieldWeights(
            name=1, title=1, description=1, param_names=1, param_descriptions=1
        ),
        "  server share 0.25": FieldWeights(server_share=0.25),
        "  server share 1.0": FieldWeights(server_share=1.0),
    }
    for label, w in weights.items():
        rows.append((label, partial(BM25Index, w), nullcontext))
    rows.append(("  without stemming", BM25Index, no_stemming))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="folder with tools.json and queries-dev.json")
    parser.add_argument(
        "--pool-multiplier", type=int, default=1, metavar="N", help="index N copies of the catalogue"
    )
    parser.add_argument("--ablations", action="store_true", help="also score variants with one choice undone")
    args = parser.parse_args(argv)

    base = load_servers(args.dataset)
    tasks = load_tasks(args.dataset, base)
    servers = replicate(base, max(1, args.pool_multiplier))
    n_tools = sum(len(s.tools) for s in servers)
    table = Table(title=f"dev queries: {len(tasks)} tasks, {len(servers)} servers, {n_tools} tools")
    table.add_column("index")
    for metric in TOOL_METRICS + SERVER_METRICS:
        table.add_column(metric, justify="right")
    for label, make, context in variants(args.ablations):
        with context():
            result = evaluate(fill(make(), servers), servers, tasks)
        table.add_row(label, *(f"{result[m]:.3f}" for m in TOOL_METRICS + SERVER_METRICS))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
