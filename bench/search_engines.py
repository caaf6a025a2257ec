"""Engine comparison behind the choice of ``BM25Index``: quality and latency side by side.

Usage: ``python bench/search_engines.py DATASET_DIR [--tools 10000] [--searches 1000]``

Every engine gets the same terms (``mcpproxy.search.tokenize``) and the same field weights, so the
comparison is about the engine and its scoring model, not about text analysis:

- ``BM25Index``: the default, pure Python, two-level BM25F (tools, then servers).
- ``FTS5 two-level``: SQLite FTS5 in memory (stdlib ``sqlite3``), one table of tools and one of
  servers, ``bm25()`` with column weights, the two levels combined in Python as ``BM25Index``
  does. FTS5 normalises length over the whole row, with its fixed k1 1.2 and b 0.75.
- ``FTS5 flat``: the plain FTS5 set-up, one row per tool with the server name and context as
  extra columns.
- ``bm25s``: if the package is importable, one text per tool with field weights as repeated
  terms. bm25s has no incremental update, so ``replace_server`` rebuilds the whole index, and
  the build is done once, in bulk.

Prints quality on the dev queries (527 tools) and latency on ``--tools`` tools.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import multiprocessing
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mcpproxy.search.base import Allow, Hit, ToolDoc, ToolIndex
from mcpproxy.search.bm25 import (
    CONTEXT_WEIGHT,
    DESCRIPTION_WEIGHT,
    NAME_WEIGHT,
    PARAM_DESCRIPTION_WEIGHT,
    PARAM_NAME_WEIGHT,
    SERVER_NAME_WEIGHT,
    SERVER_SHARE,
    TITLE_WEIGHT,
    BM25Index,
    schema_text,
)
from mcpproxy.search.tokenize import tokenize
from search_dataset import (
    Latency,
    Server,
    evaluate,
    fill,
    load_servers,
    load_tasks,
    measure,
    oversubscription,
    replicate_to,
)

TOOL_WEIGHTS = (NAME_WEIGHT, TITLE_WEIGHT, DESCRIPTION_WEIGHT, PARAM_NAME_WEIGHT, PARAM_DESCRIPTION_WEIGHT)


QUALITY = ("R@5", "R@10", "NDCG@10", "MRR", "srv R@5")


def tool_texts(tool: ToolDoc) -> list[str]:
    """The tool's five fields as space-joined terms."""
    title = tool.title or tool.annotations.get("title") or ""
    names, descriptions = schema_text(tool.input_schema)
    fields = [tool.name, str(title), tool.description, " ".join(names), " ".join(descriptions)]
    return [" ".join(tokenize(text)) for text in fields]


def first_of_each_name(tools: Sequence[ToolDoc]) -> list[ToolDoc]:
    unique: dict[str, ToolDoc] = {}
    for tool in tools:
        unique.setdefault(tool.name, tool)
    return list(unique.values())


def match_expression(query: str) -> str | None:
    terms = list(dict.fromkeys(tokenize(query)))
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms) if terms else None


class Fts5TwoLevel:
    """FTS5 tables for tools and for servers, combined as ``BM25Index`` combines its levels."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE tools USING fts5(name, title, description, param_names, param_descriptions)"
        )
        self.db.execute("CREATE VIRTUAL TABLE servers USING fts5(name, context)")
        self.tools: dict[int, tuple[str, str]] = {}
        self.servers: dict[str, tuple[int, list[int]]] = {}
        self.next_id = itertools.count(1)

    def __len__(self) -> int:
        return len(self.tools)

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        self.remove_server(server)
        unique = first_of_each_name(tools)
        if not unique:
            return
        ids = []
        for tool in unique:
            rowid = next(self.next_id)
            self.db.execute(
                "INSERT INTO tools(rowid, name, title, description, param_names, param_descriptions)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rowid, *tool_texts(tool)),
            )
            self.tools[rowid] = (server, tool.name)
            ids.append(rowid)
        srv_id = next(self.next_id)
        self.db.execute(
            "INSERT INTO servers(rowid, name, context) VALUES (?, ?, ?)",
            (srv_id, " ".join(tokenize(server)), " ".join(tokenize(context))),
        )
        self.servers[server] = (srv_id, ids)

    def remove_server(self, server: str) -> None:
        entry = self.servers.pop(server, None)
        if entry is None:
            return
        srv_id, ids = entry
        self.db.executemany("DELETE FROM tools WHERE rowid = ?", [(i,) for i in ids])
        self.db.execute("DELETE FROM servers WHERE rowid = ?", (srv_id,))
        for i in ids:
            del self.tools[i]

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        expression = match_expression(query)
        if expression is None or limit <= 0:
            return []
        by_server_row = {srv_id: name for name, (srv_id, _) in self.servers.items()}
        totals: dict[int, float] = {}
        server_sql = "SELECT rowid, -bm25(servers, ?, ?) FROM servers WHERE servers MATCH ?"
        for srv_row, score in self.db.execute(server_sql, (SERVER_NAME_WEIGHT, CONTEXT_WEIGHT, expression)):
            share = SERVER_SHARE * score
            for rowid in self.servers[by_server_row[srv_row]][1]:
                totals[rowid] = share
        tool_sql = "SELECT rowid, -bm25(tools, ?, ?, ?, ?, ?) FROM tools WHERE tools MATCH ?"
        for rowid, score in self.db.execute(tool_sql, (*TOOL_WEIGHTS, expression)):
            totals[rowid] = totals.get(rowid, 0.0) + score
        return rank(totals, self.tools, limit, allow)


class Fts5Flat:
    """One FTS5 row per tool, the server's name and context as two more columns."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE tools USING fts5("
            "name, title, description, param_names, param_descriptions, server, context)"
        )
        self.tools: dict[int, tuple[str, str]] = {}
        self.servers: dict[str, list[int]] = {}
        self.next_id = itertools.count(1)
        self.weights = (*TOOL_WEIGHTS, SERVER_NAME_WEIGHT * SERVER_SHARE, CONTEXT_WEIGHT * SERVER_SHARE)

    def __len__(self) -> int:
        return len(self.tools)

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        self.remove_server(server)
        ids = []
        server_text, context_text = " ".join(tokenize(server)), " ".join(tokenize(context))
        for tool in first_of_each_name(tools):
            rowid = next(self.next_id)
            self.db.execute(
                "INSERT INTO tools(rowid, name, title, description, param_names, param_descriptions,"
                " server, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (rowid, *tool_texts(tool), server_text, context_text),
            )
            self.tools[rowid] = (server, tool.name)
            ids.append(rowid)
        self.servers[server] = ids

    def remove_server(self, server: str) -> None:
        for rowid in self.servers.pop(server, []):
            self.db.execute("DELETE FROM tools WHERE rowid = ?", (rowid,))
            del self.tools[rowid]

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        expression = match_expression(query)
        if expression is None or limit <= 0:
            return []
        sql = "SELECT rowid, -bm25(tools, ?, ?, ?, ?, ?, ?, ?) FROM tools WHERE tools MATCH ?"
        totals = dict(self.db.execute(sql, (*self.weights, expression)).fetchall())
        return rank(totals, self.tools, limit, allow)


def rank(
    totals: dict[int, float], tools: dict[int, tuple[str, str]], limit: int, allow: Allow | None
) -> list[Hit]:
    """Best first, ties by key, ``allow`` applied before the cut."""
    hits = [Hit(*tools[i], score) for i, score in totals.items() if score > 0]
    hits.sort(key=lambda h: (-h.score, h.key))
    if allow is not None:
        hits = [h for h in hits if allow(h.server, h.name)]
    return hits[:limit]


class Bm25s:
    """bm25s over one text per tool, field weights as repetitions; rebuilt on every update."""

    REPEATS = (3, 2, 1, 1, 1)  # name, title, description, parameter names, parameter descriptions

    def __init__(self) -> None:
        self.bm25s: Any = importlib.import_module("bm25s")
        self.docs: dict[str, list[tuple[ToolDoc, list[str]]]] = {}
        self.keys: list[tuple[str, str]] = []
        self.retriever: Any = None
        self.deferred = False

    def __len__(self) -> int:
        return len(self.keys)

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        server_terms = tokenize(server) * 2 + tokenize(context)
        self.docs[server] = [(t, self._terms(t) + server_terms) for t in first_of_each_name(tools)]
        self.rebuild()

    def remove_server(self, server: str) -> None:
        self.docs.pop(server, None)
        self.rebuild()

    def _terms(self, tool: ToolDoc) -> list[str]:
        return [
            term
            for text, times in zip(tool_texts(tool), self.REPEATS, strict=True)
            for term in text.split() * times
        ]

    def rebuild(self) -> None:
        if self.deferred:
            return
        entries = [(server, tool, terms) for server, docs in self.docs.items() for tool, terms in docs]
        self.keys = [(server, tool.name) for server, tool, _ in entries]
        self.retriever = self.bm25s.BM25()
        self.retriever.index([terms for _, _, terms in entries], show_progress=False)

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        terms = [t for t in dict.fromkeys(tokenize(query)) if t in self.retriever.vocab_dict]
        if not terms or limit <= 0:
            return []
        scores = self.retriever.get_scores(terms)
        totals = {i: float(s) for i, s in enumerate(scores) if s > 0}
        return rank(totals, dict(enumerate(self.keys)), limit, allow)


def bulk_fill(index: ToolIndex, servers: Sequence[Server]) -> ToolIndex:
    if isinstance(index, Bm25s):
        index.deferred = True
        fill(index, servers)
        index.deferred = False
        index.rebuild()
        return index
    return fill(index, servers)


def engines() -> dict[str, Callable[[], ToolIndex]]:
    rows: dict[str, Callable[[], ToolIndex]] = {
        "BM25Index (pure Python)": BM25Index,
        "FTS5 two-level": Fts5TwoLevel,
        "FTS5 flat": Fts5Flat,
    }
    if importlib.util.find_spec("bm25s") is not None:
        rows["bm25s (rebuild on update)"] = Bm25s
    return rows


def _latency(label: str, dataset: Path, n_tools: int, searches: int) -> Latency:
    """Latency of one engine; run in a fresh process so its memory figure is its own."""
    base = load_servers(dataset)
    queries = [task.query for task in load_tasks(dataset, base)]
    make = engines()[label]
    return measure(make, replicate_to(base, n_tools), queries, searches, load=bulk_fill, replace_rounds=10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="folder with tools.json and queries-dev.json")
    parser.add_argument(
        "--tools", type=int, default=10_000, help="catalogue size for latency (default 10000)"
    )
    parser.add_argument("--searches", type=int, default=1000, help="minimum number of timed searches")
    args = parser.parse_args(argv)

    base = load_servers(args.dataset)
    tasks = load_tasks(args.dataset, base)
    n_tools = sum(len(s.tools) for s in base)
    table = Table(
        title=f"quality: {len(tasks)} dev tasks over {n_tools} tools; latency: {args.tools} tools, limit 10"
    )
    table.add_column("engine")
    for metric in QUALITY:
        table.add_column(metric, justify="right")
    for label in ("build s", "p50 ms", "p99 ms", "CPU p50", "CPU p99", "replace ms", "RSS MiB"):
        table.add_column(label, justify="right")
    if importlib.util.find_spec("bm25s") is None:
        Console().print("bm25s is not installed: its row is skipped")
    spawn = multiprocessing.get_context("spawn")
    for label, make in engines().items():
        quality = evaluate(bulk_fill(make(), base), base, tasks)
        with spawn.Pool(1) as pool:
            speed = pool.apply(_latency, (label, args.dataset, args.tools, args.searches))
        table.add_row(
            label,
            *(f"{quality[m]:.3f}" for m in QUALITY),
            f"{speed.build_s:.2f}",
            f"{speed.search_p50:.2f}",
            f"{speed.search_p99:.2f}",
            f"{speed.search_cpu_p50:.2f}",
            f"{speed.search_cpu_p99:.2f}",
            f"{speed.replace_p50:.2f}",
            f"{speed.rss_mb:.1f}",
        )
    Console(width=160).print(table)
    print(f"wall/CPU time of a fixed loop right after: {oversubscription():.2f} (1.00 on an idle machine)")


if __name__ == "__main__":
    main()
