"""Latency and memory of the tool index on a large catalogue.

Usage: ``python bench/search_latency.py DATASET_DIR [--tools 10000] [--searches 1000]``

Copies the LiveMCPBench servers under new names (description sentences shuffled) until the
catalogue holds ``--tools`` tools, builds a ``BM25Index`` one ``replace_server`` at a time, and
prints the build time, the resident memory the index added, p50/p99 search latency over the dev
queries (repeated to at least ``--searches`` samples, limit 10), and the time to re-index one
server of about 20 tools (alternating two versions of its tools, so each call changes content).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mcpproxy.search.bm25 import BM25Index
from search_dataset import Latency, load_servers, load_tasks, measure, oversubscription, replicate_to


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
    args = parser.parse_args(argv)

    base = load_servers(args.dataset)
    queries = [task.query for task in load_tasks(args.dataset, base)]
    servers = replicate_to(base, args.tools)
    result = measure(BM25Index, servers, queries, min_searches=args.searches)
    table = Table(title=f"BM25Index, {len(servers)} servers")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for row in latency_rows(result):
        table.add_row(*row)
    Console(width=120).print(table)
    print(f"wall/CPU time of a fixed loop right after: {oversubscription():.2f} (1.00 on an idle machine)")


if __name__ == "__main__":
    main()
