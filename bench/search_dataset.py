"""Shared parts of the search benchmarks: the LiveMCPBench catalogue, its queries, the metrics.

The dataset is a folder with ``tools.json`` (servers with their real ``tools/list`` answers) and
``queries-dev.json`` (tasks whose annotated tool names are the gold). Gold names are bare tool
names: a name counts wherever it is found, gold names absent from the catalogue are dropped, and a
task left without gold is dropped. Metrics follow the usual definitions with binary relevance,
computed per task over the first 100 results and averaged; a gold name is credited at its first
position in the ranking. The server ranking is the order in which servers first appear in the tool
ranking, and a server is relevant when it holds a gold tool. ``srv any R@5`` is the share of gold
tools with at least one holder among the first five servers: a gold name held by several servers
(``write_file`` by two) is then found when one of them is, where ``srv R@5`` needs every holder.

Larger catalogues are made by copying servers under new names and lightly editing their
descriptions with a seeded generator, so copies are near duplicates, as forks are in real
registries. Everything here is deterministic.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpproxy.search.base import Hit, ToolDoc, ToolIndex


@dataclass(frozen=True, slots=True)
class Server:
    """One catalogue server: its configured name, description and tools."""

    name: str
    description: str
    tools: tuple[ToolDoc, ...]


@dataclass(frozen=True, slots=True)
class Task:
    """One query with its gold tool names."""

    query: str
    gold: frozenset[str]


@dataclass(slots=True)
class Metrics:
    """Per-task metric values, averaged by ``means``."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def means(self) -> dict[str, float]:
        return {name: statistics.fmean(vals) for name, vals in self.values.items()}


TOOL_METRICS = ("R@1", "R@5", "R@10", "NDCG@10", "MRR")
SERVER_METRICS = ("srv R@5", "srv NDCG@5", "srv any R@5")


def load_servers(dataset: Path) -> list[Server]:
    """The catalogue's servers, one per ``tools`` key, in file order."""
    raw: list[dict[str, Any]] = json.loads((dataset / "tools.json").read_text(encoding="utf-8"))
    servers: list[Server] = []
    for entry in raw:
        description = str(entry.get("description") or "")
        for key, listing in entry["tools"].items():
            tools = tuple(
                ToolDoc(
                    server=key,
                    name=str(tool["name"]),
                    description=str(tool.get("description") or ""),
                    input_schema=tool.get("inputSchema") or {},
                    title=tool.get("title"),
                    annotations=tool.get("annotations") or {},
                )
                for tool in listing["tools"]
            )
            servers.append(Server(key, description, tools))
    return servers


def load_tasks(dataset: Path, servers: Sequence[Server], split: str = "dev") -> list[Task]:
    """Tasks with gold restricted to tool names present in ``servers``."""
    raw: list[dict[str, Any]] = json.loads((dataset / f"queries-{split}.json").read_text(encoding="utf-8"))
    known = {tool.name for server in servers for tool in server.tools}
    tasks: list[Task] = []
    for entry in raw:
        lines = str(entry["Annotator Metadata"]["Tools"]).splitlines()
        names = {re.sub(r"^\s*\d+\s*[.)]\s*", "", line).strip() for line in lines}
        gold = frozenset(name for name in names if name in known)
        if gold:
            tasks.append(Task(str(entry["Question"]), gold))
    return tasks


def replicate(servers: Sequence[Server], copies: int, seed: int = 7) -> list[Server]:
    """``servers`` followed by ``copies - 1`` renamed, lightly edited copies.

    A copy shuffles the sentences of the server's and each tool's description, and appends to each
    tool description 0-6 words drawn from the server's description, so copies differ in length
    and wording as forks of a server do, and do not all share one set of field lengths.
    """
    rng = random.Random(seed)
    out = list(servers)
    for copy in range(1, copies):
        for server in servers:
            name = f"{server.name}_{copy:02d}"
            words = server.description.split() or ["tool"]
            tools = tuple(
                ToolDoc(
                    name,
                    t.name,
                    " ".join([*_shuffled(t.description, rng), *rng.choices(words, k=rng.randint(0, 6))]),
                    t.input_schema,
                    t.title,
                    t.annotations,
                )
                for t in server.tools
            )
            out.append(Server(name, " ".join(_shuffled(server.description, rng)), tools))
    return out


def _shuffled(text: str, rng: random.Random) -> list[str]:
    sentences = [s for s in re.split(r"(?<=[.!?。])\s*", text) if s]
    rng.shuffle(sentences)
    return sentences


def replicate_to(servers: Sequence[Server], n_tools: int) -> list[Server]:
    """Copies of ``servers`` (whole servers) until at least ``n_tools`` tools."""
    per_copy = sum(len(s.tools) for s in servers)
    copies = max(1, math.ceil(n_tools / per_copy))
    out: list[Server] = []
    total = 0
    for server in replicate(servers, copies):
        if total >= n_tools:
            break
        out.append(server)
        total += len(server.tools)
    return out


def fill(index: ToolIndex, servers: Sequence[Server]) -> ToolIndex:
    """Feed ``servers`` to ``index`` one by one, as the gateway does after each ``tools/list``."""
    for server in servers:
        index.replace_server(server.name, server.tools, server.description)
    return index


def score_task(
    hits: Sequence[Hit],
    task: Task,
    holders: dict[str, set[str]],
    metrics: Metrics,
    grouped: Sequence[Hit] | None = None,
) -> None:
    """Add one task's tool-level and server-level metrics to ``metrics``.

    Tool metrics rank ``hits``; server metrics rank servers by first appearance in ``grouped``
    (the ``group_by_server`` answer) when given, else in ``hits``.
    """
    first: dict[str, int] = {}
    for rank, hit in enumerate(hits, 1):
        first.setdefault(hit.name, rank)
    servers: list[str] = []
    for hit in grouped if grouped is not None else hits:
        if hit.server not in servers:
            servers.append(hit.server)
    ranks = sorted(first[g] for g in task.gold if g in first)
    for k in (1, 5, 10):
        metrics.add(f"R@{k}", sum(r <= k for r in ranks) / len(task.gold))
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= 10)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(task.gold), 10) + 1))
    metrics.add("NDCG@10", dcg / ideal)
    metrics.add("MRR", 1.0 / ranks[0] if ranks else 0.0)

    relevant = set().union(*(holders[g] for g in task.gold))
    top = servers[:5]
    metrics.add("srv R@5", sum(s in relevant for s in top) / len(relevant))
    dcg = sum(1.0 / math.log2(i + 2) for i, s in enumerate(top) if s in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 5)))
    metrics.add("srv NDCG@5", dcg / ideal)
    metrics.add("srv any R@5", sum(not holders[g].isdisjoint(top) for g in task.gold) / len(task.gold))


def evaluate(
    index: ToolIndex, servers: Sequence[Server], tasks: Sequence[Task], depth: int = 100
) -> dict[str, float]:
    """Mean metrics of ``index`` (already filled with ``servers``) over ``tasks``."""
    holders: dict[str, set[str]] = {}
    for server in servers:
        for tool in server.tools:
            holders.setdefault(tool.name, set()).add(server.name)
    metrics = Metrics()
    by_server = getattr(index, "search_by_server", None)
    for task in tasks:
        grouped = by_server(task.query, depth) if by_server is not None else None
        score_task(index.search(task.query, depth), task, holders, metrics, grouped)
    return metrics.means()


@dataclass(frozen=True, slots=True)
class Latency:
    """Timings of one engine on a catalogue, in milliseconds unless named otherwise.

    Wall-clock figures include time the process waited for a core; the CPU figures (process CPU
    time) do not, and are the steadier numbers on a busy machine.
    """

    tools: int
    build_s: float
    build_cpu_s: float
    search_p50: float
    search_p99: float
    search_cpu_p50: float
    search_cpu_p99: float
    searches: int
    replace_p50: float
    replace_max: float
    replace_cpu_p50: float
    replace_tools: int
    rss_mb: float


def rss_bytes() -> int:
    """Resident set size of this process now (Linux), or the peak elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def oversubscription(rounds: int = 50) -> float:
    """Median wall-clock / CPU time of a fixed pure-Python loop: 1.0 on an idle machine.

    Printed beside latency figures: above 1, the machine ran other work and the wall-clock
    figures include time spent waiting for a core.
    """
    ratios: list[float] = []
    for _ in range(rounds):
        c0, t0 = time.process_time(), time.perf_counter()
        total = 0
        for i in range(100_000):
            total += i
        cpu = time.process_time() - c0
        if cpu > 0:
            ratios.append((time.perf_counter() - t0) / cpu)
    return statistics.median(ratios) if ratios else 1.0


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    make: Callable[[], ToolIndex],
    servers: Sequence[Server],
    queries: Sequence[str],
    min_searches: int = 1000,
    limit: int = 10,
    replace_rounds: int = 50,
    load: Callable[[ToolIndex, Sequence[Server]], ToolIndex] = fill,
) -> Latency:
    """Build time, search and re-index latency, and memory of one engine on ``servers``."""
    import gc

    gc.collect()
    before = rss_bytes()
    c0, start = time.process_time(), time.perf_counter()
    index = load(make(), servers)
    build_s = time.perf_counter() - start
    build_cpu_s = time.process_time() - c0
    gc.collect()
    rss_mb = (rss_bytes() - before) / 2**20

    for query in queries:  # warm-up: first-use caches (stemmer, SQLite pages)
        index.search(query, limit)
    rounds = max(1, math.ceil(min_searches / len(queries)))
    samples: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for query in queries:
            c0, t0 = time.process_time(), time.perf_counter()
            index.search(query, limit)
            samples.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)

    # Re-index the server closest to 20 tools, alternating two versions so each call changes content.
    target = min(servers, key=lambda s: (abs(len(s.tools) - 20), s.name))
    edited = tuple(
        ToolDoc(t.server, t.name, t.description + " (updated)", t.input_schema, t.title, t.annotations)
        for t in target.tools
    )
    replace: list[float] = []
    replace_cpu: list[float] = []
    for i in range(replace_rounds):
        tools = edited if i % 2 == 0 else target.tools
        c0, t0 = time.process_time(), time.perf_counter()
        index.replace_server(target.name, tools, target.description)
        replace.append((time.perf_counter() - t0) * 1000)
        replace_cpu.append((time.process_time() - c0) * 1000)
    return Latency(
        tools=len(index),
        build_s=build_s,
        build_cpu_s=build_cpu_s,
        search_p50=statistics.median(samples),
        search_p99=percentile(samples, 0.99),
        search_cpu_p50=statistics.median(cpu),
        search_cpu_p99=percentile(cpu, 0.99),
        searches=len(samples),
        replace_p50=statistics.median(replace),
        replace_max=max(replace),
        replace_cpu_p50=statistics.median(replace_cpu),
        replace_tools=len(target.tools),
        rss_mb=rss_mb,
    )
