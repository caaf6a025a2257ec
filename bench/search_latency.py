"""Latency and memory of tool search on a large catalogue, in BM25 and hybrid mode.

Usage: ``python bench/search_latency.py DATASET_DIR [--tools 10000] [--searches 1000]
[--mode bm25|hybrid|index] [--pure-python] [--cold-terms]``

Copies the LiveMCPBench servers under new names (description sentences shuffled) until the
catalogue holds ``--tools`` tools, builds the index one ``replace_server`` at a time, and prints the
build time, the resident memory the index added, p50/p99 search latency over the dev queries
(repeated to at least ``--searches`` samples, limit 10), and the time to re-index one server of
about 20 tools (alternating two versions of its tools, so each call changes content).

``--mode bm25`` measures ``ToolSearch`` as the gateway runs it by default (words, expansions,
diversity); ``--mode index`` the bare ``BM25Index``; ``--mode hybrid`` ``ToolSearch`` with the
embedding model: each search embeds the request for real (the request-vector cache is off, so the
model runs on every timed search), while the tools' vectors are computed once for the 527 original tools and reused
for their copies, since the cost of a search does not depend on the vectors' values and embedding
10,000 texts per run would take minutes. The embedding throughput is measured on the originals and
printed, with the build time it implies for the whole catalogue (vectors are computed once per
tool and kept in the database, so this is a first-start cost); the hybrid one-server update
includes embedding that server's tools for real. With numpy installed (the ``embeddings`` extra),
the words index adds scores with numpy over large catalogues; ``--pure-python`` measures the pure
Python way of the default install (the same ranking), and ``--cold-terms`` the numpy way as if
no query term had been seen since the last update (each term's posting arrays are built on first
use and kept until an update touches the term).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import mcpproxy.search.bm25 as bm25_module
from mcpproxy.search.base import Allow, Hit, ToolDoc, ToolIndex
from mcpproxy.search.bm25 import BM25Index
from mcpproxy.search.engine import ToolSearch, embedding_text
from search_dataset import Latency, Server, load_servers, load_tasks, measure, oversubscription, replicate_to


class Searching:
    """``ToolSearch`` as a ``ToolIndex``; in hybrid mode, vectors from ``vectors`` (by original tool)."""

    def __init__(
        self, embedder: Any = None, vectors: dict[tuple[str, str], Any] | None = None, cold: bool = False
    ) -> None:
        self.index = ToolSearch(embedder, query_cache=0)  # every timed search embeds its request
        self.vectors = vectors or {}
        self.cold = cold
        self.seen: set[str] = set()

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        first = server not in self.seen
        self.seen.add(server)
        self.index.replace_server(server, tools, context)
        if self.index.embedder is None:
            return
        texts = self.index.without_vectors(server)
        original = server.rsplit("_", 1)[0] if server[-3:-2] == "_" else server
        known = {n: self.vectors[(original, n)] for n in texts if (original, n) in self.vectors}
        if first and len(known) == len(texts):
            self.index.set_vectors(server, known, texts)  # the build: copies reuse their original's vector
        else:
            self.index.embed_server(server)  # an update: changed tools are embedded for real, as the gateway does

    def remove_server(self, server: str) -> None:
        self.index.remove_server(server)

    def __len__(self) -> int:
        return len(self.index)

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        if self.cold:  # as if every term were new since the last update: no posting arrays kept
            self.index.lexical._tools.arrays.clear()
        return self.index.search(query, limit, allow)


def latency_rows(result: Latency) -> list[tuple[str, str]]:
    return [
        ("tools indexed", f"{result.tools}"),
        ("build (one replace_server per server)", f"{result.build_s:.2f} s"),
        ("build CPU", f"{result.build_cpu_s:.2f} s"),
        ("RSS added by the index", f"{result.rss_mb:.1f} MiB"),
        (f"search p50 ({result.searches} searches, limit 10)", f"{result.search_p50:.2f} ms"),
        ("search p99", f"{result.search_p99:.2f} ms"),
        ("search CPU p50 / p99", f"{result.search_cpu_p50:.2f} / {result.search_cpu_p99:.2f} ms"),
        (f"replace_server p50 ({result.replace_tools} tools)", f"{result.replace_p50:.2f} ms"),
        ("replace_server max", f"{result.replace_max:.2f} ms"),
        ("replace_server CPU p50", f"{result.replace_cpu_p50:.2f} ms"),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="folder with tools.json and queries-dev.json")
    parser.add_argument("--tools", type=int, default=10_000, help="catalogue size to reach (default 10000)")
    parser.add_argument("--searches", type=int, default=1000, help="minimum number of timed searches")
    parser.add_argument("--mode", choices=["bm25", "hybrid", "index"], default="bm25")
    parser.add_argument(
        "--pure-python", action="store_true", help="add scores in pure Python even when numpy is installed"
    )
    parser.add_argument(
        "--cold-terms", action="store_true", help="drop the words index's per-term arrays before every search"
    )
    args = parser.parse_args(argv)
    if args.pure_python:
        bm25_module.NUMPY_MIN_TOOLS = sys.maxsize
    cold = args.cold_terms

    base = load_servers(args.dataset)
    queries = [task.query for task in load_tasks(args.dataset, base)]
    servers: list[Server] = replicate_to(base, args.tools)
    extra: list[tuple[str, str]] = []
    make: Any
    if args.mode == "index":
        make = BM25Index
    elif args.mode == "bm25":

        def make() -> ToolIndex:
            return Searching(cold=cold)
    else:
        from mcpproxy.search.embed import MiniLMEmbedder

        embedder = MiniLMEmbedder()
        texts = [embedding_text(t) for s in base for t in s.tools]
        c0, t0 = time.process_time(), time.perf_counter()
        matrix = embedder.embed(texts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        pairs = [(s.name, t.name) for s in base for t in s.tools]
        vectors = dict(zip(pairs, matrix, strict=True))
        n_tools = sum(len(s.tools) for s in servers)
        extra = [
            (
                "embedding throughput (527 tools, 1 thread)",
                f"{len(texts) / wall:.1f} tools/s ({cpu / len(texts) * 1000:.1f} ms CPU each)",
            ),
            (f"vectors for {n_tools} tools, first start (implied)", f"{n_tools / (len(texts) / wall):.0f} s"),
        ]

        def make() -> ToolIndex:
            return Searching(embedder, vectors, cold=cold)

    result = measure(make, servers, queries, min_searches=args.searches)
    table = Table(title=f"{args.mode} mode, {len(servers)} servers")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for row in [*latency_rows(result), *extra]:
        table.add_row(*row)
    Console(width=130).print(table)
    print(f"wall/CPU time of a fixed loop right after: {oversubscription():.2f} (1.00 on an idle machine)")


if __name__ == "__main__":
    main()
