"""The default tool index: two-level fielded BM25 in pure Python.

A tool is scored on two levels. Its own fields (name, title, description, parameter names,
parameter descriptions) form one BM25F document: each field's term frequency is length-normalised
against that field's average, weighted, and summed before a single saturation, so a word found in
the name and the description is not counted twice over. Its server (server name and the
``context`` string given to ``replace_server``) forms a second, server-level BM25F document, scored
against the other servers; a share of that score is added to every tool of the server. The server
level is what lets "save it as a Word document" reach ``add_paragraph`` on a server described as a
Word editor, and it costs one posting per server instead of one per tool.

Updates are incremental and exact. Postings keep raw term frequencies, each tagged with a slot of
a small table holding ``weight / (1 - b + b * length / average)`` for every (field, length) in use.
Replacing a server edits that server's postings and recomputes the table (a few hundred entries), so
averages and document counts are always those of the current contents, and IDF is computed at
query time. (Storing finished per-posting impacts instead would tie every posting to the current
averages: any update would have to re-weight the whole index.) A term's posting groups the
documents that share frequencies and field lengths, so a query computes each contribution once per
group and then only adds floats into a list indexed by tool id. Per tool, a score is summed in
query-term order and ties are broken by tool key, so results are a function of the index contents
alone, whatever the order of updates. The engine was chosen by measurement against SQLite FTS5 and
bm25s; see docs/search.md.

Over a large catalogue, and when numpy is installed (the ``embeddings`` extra brings it), the same
sums are done with numpy (``_Fielded.scores_numpy``): the same floats, added in the same order, so
the same ranking; the pure Python way is the default install's.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import compress, count, repeat
from typing import Any, Generic, TypeGuard, TypeVar

from mcpproxy.search.base import Allow, Hit, ToolDoc
from mcpproxy.search.expand import weighted_terms
from mcpproxy.search.tokenize import tokenize

__all__ = [
    "CONTEXT_WEIGHT",
    "DESCRIPTION_WEIGHT",
    "NAME_WEIGHT",
    "PARAM_DESCRIPTION_WEIGHT",
    "PARAM_NAME_WEIGHT",
    "SERVER_NAME_WEIGHT",
    "SERVER_SHARE",
    "TITLE_WEIGHT",
    "TOOL_FIELDS",
    "BM25Index",
    "FieldWeights",
    "ToolRef",
    "WeightedTerm",
    "schema_text",
]

K1 = 1.2
"""Term-frequency saturation (the usual BM25 value)."""

NAME_WEIGHT = 3.0
"""Tool names are a handful of words chosen to say what the tool does: the strongest signal."""
TITLE_WEIGHT = 2.0
"""A human title restates the name in words, usually as precisely."""
DESCRIPTION_WEIGHT = 1.0
"""The reference field: informative but wordy, often with usage notes that are off-topic."""
PARAM_NAME_WEIGHT = 0.5
"""Parameter names say what a tool works on (``timezone``, ``url``, ``path``), not what it does."""
PARAM_DESCRIPTION_WEIGHT = 0.3
"""Parameter descriptions are long and generic ("the path of the file"); a weak but useful hint."""
SERVER_NAME_WEIGHT = 2.0
"""Within the server document: the configured name is short and usually names the domain."""
CONTEXT_WEIGHT = 1.0
"""Within the server document: the server's description, as wordy as a tool description."""
SERVER_SHARE = 0.5
"""Share of a server's score added to each of its tools: enough to rank the right server's tools
above a stray word match elsewhere, not enough to rank all of them above a tool that matches on
its own fields."""

# Length normalisation (BM25's b) per field: full for prose, mild for names, whose length says
# little about how much of the name is on topic.
_TOOL_B = (0.3, 0.3, 0.75, 0.5, 0.75)
_SERVER_B = (0.3, 0.75)

TOOL_FIELDS = ("name", "title", "description", "parameter names", "parameter descriptions")
"""Names of the tool-level fields, in index order (``explain`` reports them)."""
SERVER_FIELDS = ("server name", "server description")
"""Names of the server-level fields, in index order."""

MAX_NORM_LENGTH = 4095
"""Field lengths are clipped here for length normalisation (a longer field is simply "very long")."""
_STRIDE = MAX_NORM_LENGTH + 1
MAX_SCHEMA_DEPTH = 4
MAX_SCHEMA_PARAMS = 128
"""Bounds on the schema walk: deeper or wider schemas are data formats, not search hints."""
MAX_QUERY_TERMS = 256
"""Distinct query terms used (the first ones): bounds the cost of a document pasted as a query."""


@dataclass(frozen=True, slots=True)
class FieldWeights:
    """Field weights of a ``BM25Index``; the defaults are the module constants.

    A weight of 0 takes a field out of scoring.
    """

    name: float = NAME_WEIGHT
    title: float = TITLE_WEIGHT
    description: float = DESCRIPTION_WEIGHT
    param_names: float = PARAM_NAME_WEIGHT
    param_descriptions: float = PARAM_DESCRIPTION_WEIGHT
    server_name: float = SERVER_NAME_WEIGHT
    context: float = CONTEXT_WEIGHT
    server_share: float = SERVER_SHARE


WeightedTerm = tuple[str, float]
"""``(term, weight)``: a query term and how much it counts (1 for a word of the query)."""

_Pair = tuple[int, int]
"""``(tf, slot)``: a term's frequency in one field, and the scale-table slot of (field, length)."""


@dataclass(slots=True)
class _Doc:
    """An analysed document: its distinct terms, each one's ``(tf, slot)`` pairs, field lengths."""

    terms: tuple[str, ...]
    pairs: tuple[tuple[_Pair, ...], ...]
    lengths: tuple[int, ...]


@dataclass(slots=True)
class ToolRef:
    """An indexed tool: its key (``server:name``), server and name."""

    key: str
    server: str
    name: str


_Tool = ToolRef


K = TypeVar("K", int, str)


class _Fielded(Generic[K]):
    """BM25F postings of one level (tools, or servers), with live per-field averages.

    A posting keeps raw ``(tf, slot)`` pairs, not scores: the length normalisation
    ``weight / (1 - b + b * length / average)`` lives in ``scale``, one entry per (field, length)
    in use, so an update recomputes a few hundred table entries instead of every posting. Within a
    term's posting, documents are grouped by their pairs: documents with the same frequencies and
    field lengths get the same contribution, so a query computes it once per group and then only
    adds it to each member's score.
    """

    def __init__(self, weights: tuple[float, ...], bs: tuple[float, ...]) -> None:
        self.weights = weights
        self.bs = bs
        self.postings: dict[str, dict[tuple[_Pair, ...], list[K]]] = {}
        self.df: dict[str, int] = {}
        self.docs: dict[K, _Doc] = {}
        self.length_sums = [0] * len(weights)
        self.length_counts: list[dict[int, int]] = [{} for _ in weights]
        self.scale = [0.0] * (len(weights) * _STRIDE)
        # One shared tuple per distinct pair list: documents repeat the same few thousand, and
        # sharing them keeps memory per posting to a reference. Bounded by fields x tf x lengths.
        self.interned: dict[tuple[_Pair, ...], tuple[_Pair, ...]] = {}
        # numpy path only (``scores_numpy``): per term, its posting as arrays, built when a query
        # first needs it and dropped when a document with that term is added or removed; and the
        # scale table as an array, dropped by ``settle``.
        self.arrays: dict[str, tuple[Any, Any, Any, Any, Any]] = {}
        self.scale_array: Any = None

    def __len__(self) -> int:
        return len(self.docs)

    _CACHES = ("arrays", "scale_array")

    def __getstate__(self) -> dict[str, Any]:
        """The index contents without the query caches (rebuilt as queries need them)."""
        return {key: value for key, value in self.__dict__.items() if key not in self._CACHES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.arrays = {}
        self.scale_array = None

    def remove(self, ident: K) -> None:
        doc = self.docs.pop(ident)
        if self.arrays:
            for term in doc.terms:
                self.arrays.pop(term, None)
        for term, pairs in zip(doc.terms, doc.pairs, strict=True):
            groups = self.postings[term]
            members = groups[pairs]
            members.remove(ident)
            if not members:
                del groups[pairs]
                if not groups:
                    del self.postings[term]
            self.df[term] -= 1
            if not self.df[term]:
                del self.df[term]
        for f, length in enumerate(doc.lengths):
            self.length_sums[f] -= length
            counts = self.length_counts[f]
            counts[length] -= 1
            if not counts[length]:
                del counts[length]

    def add(self, ident: K, fields: Sequence[Sequence[str]]) -> None:
        """Index one document given as the token lists of its fields."""
        lengths = tuple(min(len(tokens), MAX_NORM_LENGTH) for tokens in fields)
        by_term: dict[str, list[_Pair]] = {}
        for f, tokens in enumerate(fields):
            slot = f * _STRIDE + lengths[f]
            for term, tf in Counter(tokens).items():
                found = by_term.get(term)
                if found is None:
                    by_term[term] = [(tf, slot)]
                else:
                    found.append((tf, slot))
        intern = self.interned.setdefault
        doc = _Doc(tuple(by_term), tuple(intern(t := tuple(p), t) for p in by_term.values()), lengths)
        self.docs[ident] = doc
        if self.arrays:
            for term in doc.terms:
                self.arrays.pop(term, None)
        for term, pairs in zip(doc.terms, doc.pairs, strict=True):
            groups = self.postings.get(term)
            if groups is None:
                self.postings[term] = {pairs: [ident]}
                self.df[term] = 1
                continue
            members = groups.get(pairs)
            if members is None:
                groups[pairs] = [ident]
            else:
                members.append(ident)
            self.df[term] += 1
        for f, length in enumerate(lengths):
            self.length_sums[f] += length
            counts = self.length_counts[f]
            counts[length] = counts.get(length, 0) + 1

    def settle(self) -> None:
        """Bring the scale table in line with the current averages (after a batch of updates)."""
        n = len(self.docs)
        self.scale_array = None
        for f, (weight, b) in enumerate(zip(self.weights, self.bs, strict=True)):
            average = self.length_sums[f] / n if n and self.length_sums[f] else 1.0
            base = f * _STRIDE
            for length in self.length_counts[f]:
                self.scale[base + length] = weight / (1.0 - b + b * length / average)

    def idf(self, term: str) -> float:
        """BM25's IDF of ``term`` over the current documents (0 for an unknown term)."""
        df = self.df.get(term)
        if not df:
            return 0.0
        return math.log(1.0 + (len(self.docs) - df + 0.5) / (df + 0.5))

    def weighted_groups(self, terms: Sequence[WeightedTerm]) -> Iterator[tuple[float, list[K]]]:
        """Per matching (term, group), in ``terms`` order: the group's ``weight * idf * saturated(tf)``."""
        n = len(self.docs)
        scale = self.scale
        for term, weight in terms:
            groups = self.postings.get(term)
            if groups is None:
                continue
            df = self.df[term]
            idf = weight * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            for pairs, members in groups.items():
                x = 0.0
                for tf, slot in pairs:
                    x += tf * scale[slot]
                if x > 0.0:
                    yield idf * x / (K1 + x), members

    def scores_numpy(self, np: Any, terms: Sequence[WeightedTerm], size: int) -> Any:
        """Every document's score for ``terms`` as a float64 array of ``size`` (int ids only).

        The same floats as ``weighted_groups`` added into a list: a group's ``x`` is summed over
        its pairs in order from 0.0 and its contribution is ``idf * x / (K1 + x)`` (the same
        IEEE operations, elementwise), and ``bincount`` adds contributions per document in input
        order, that is in ``terms`` order. A group with ``x`` = 0 contributes 0.0, which changes
        no sum.
        """
        if self.scale_array is None:
            self.scale_array = np.asarray(self.scale, dtype=np.float64)
        scale = self.scale_array
        n = len(self.docs)
        ids: list[Any] = []
        weights: list[Any] = []
        for term, weight in terms:
            if term not in self.postings:
                continue
            tf, slot, group, sizes, members = self._term_arrays(np, term)
            df = self.df[term]
            idf = weight * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            x = np.bincount(group, weights=tf * scale[slot], minlength=len(sizes))
            ids.append(members)
            weights.append(np.repeat(idf * x / (K1 + x), sizes))
        if not ids:
            return np.zeros(size, dtype=np.float64)
        return np.bincount(np.concatenate(ids), weights=np.concatenate(weights), minlength=size)

    def _term_arrays(self, np: Any, term: str) -> tuple[Any, Any, Any, Any, Any]:
        """The posting of ``term`` as arrays: pairs' tf, slot and group, groups' sizes, members."""
        found = self.arrays.get(term)
        if found is not None:
            return found
        tfs: list[int] = []
        slots: list[int] = []
        groups: list[int] = []
        sizes: list[int] = []
        members: list[Any] = []
        for g, (pairs, group) in enumerate(self.postings[term].items()):
            for tf, slot in pairs:
                tfs.append(tf)
                slots.append(slot)
                groups.append(g)
            sizes.append(len(group))
            members.extend(group)
        found = (
            np.asarray(tfs, dtype=np.float64),
            np.asarray(slots, dtype=np.intp),
            np.asarray(groups, dtype=np.intp),
            np.asarray(sizes, dtype=np.intp),
            np.asarray(members, dtype=np.intp),
        )
        if len(self.arrays) >= MAX_TERM_ARRAYS:
            self.arrays.pop(next(iter(self.arrays)), None)
        self.arrays[term] = found
        return found

    def term_fields(self, ident: K, terms: Sequence[WeightedTerm]) -> list[tuple[str, float, tuple[int, ...]]]:
        """For one document: each matching term's ``weight * idf * saturated(tf)`` and the fields it is in."""
        doc = self.docs.get(ident)
        if doc is None:
            return []
        where = dict(zip(doc.terms, doc.pairs, strict=True))
        out: list[tuple[str, float, tuple[int, ...]]] = []
        for term, weight in terms:
            pairs = where.get(term)
            if pairs is None:
                continue
            x = sum(tf * self.scale[slot] for tf, slot in pairs)
            if x > 0.0:
                fields = tuple(sorted({slot // _STRIDE for _, slot in pairs}))
                out.append((term, weight * self.idf(term) * x / (K1 + x), fields))
        return out

    def accumulate(self, terms: Sequence[WeightedTerm], factor: float, scores: dict[K, float]) -> None:
        """Add ``factor * idf * saturated(tf)`` to each matching document's entry in ``scores``."""
        get = scores.get
        for contribution, members in self.weighted_groups(terms):
            contribution *= factor
            for ident in members:
                scores[ident] = get(ident, 0.0) + contribution


def _accumulate_into(index: _Fielded[int], terms: Sequence[WeightedTerm], scores: list[float]) -> None:
    """``_Fielded.accumulate`` into a list indexed by document id."""
    for contribution, members in index.weighted_groups(terms):
        for ident in members:
            scores[ident] += contribution


MAX_TERM_ARRAYS = 8192
"""Terms whose posting arrays are kept for the numpy path (the oldest is dropped first)."""
NUMPY_MIN_TOOLS = 2048
"""From this many tool ids on, ``BM25Index.ranked`` adds scores with numpy when it is installed
(the ``embeddings`` extra brings it); below, or without numpy, in pure Python. Both give the same
floats, so the same ranking."""


@cache
def _numpy() -> Any:
    """The numpy module, or ``None`` when it is not installed (the default install)."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def schema_text(schema: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Parameter names and descriptions found in a JSON schema.

    Walks ``properties`` (nested objects too), ``items``, ``anyOf``/``oneOf``/``allOf``,
    ``additionalProperties`` and ``$defs``/``definitions``, to a bounded depth and count. String
    ``enum`` values count as description text: they name what a parameter can be.

    Args:
        schema: A tool's input schema.

    Returns:
        ``(names, descriptions)``, in schema order.
    """
    names: list[str] = []
    descriptions: list[str] = []
    if _is_map(schema):
        _walk(schema, 0, names, descriptions)
    return names, descriptions


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _walk(node: Mapping[str, Any], depth: int, names: list[str], descriptions: list[str]) -> None:
    properties = node.get("properties")
    if _is_map(properties):
        for name, sub in properties.items():
            if len(names) >= MAX_SCHEMA_PARAMS:
                return
            names.append(str(name))
            if _is_map(sub):
                description = sub.get("description")
                if isinstance(description, str):
                    descriptions.append(description)
                enum = sub.get("enum")
                if isinstance(enum, list):
                    descriptions.extend(v for v in enum if isinstance(v, str))
                if depth < MAX_SCHEMA_DEPTH:
                    _walk(sub, depth + 1, names, descriptions)
    if depth >= MAX_SCHEMA_DEPTH:
        return
    children: list[Any] = [node.get("items"), node.get("additionalProperties")]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems", "items"):
        value = node.get(key)
        if isinstance(value, list):
            children.extend(value)
    for key in ("$defs", "definitions"):
        value = node.get(key)
        if _is_map(value):
            children.extend(value.values())
    for child in children:
        if _is_map(child):
            _walk(child, depth + 1, names, descriptions)


def _tool_fields(tool: ToolDoc) -> list[list[str]]:
    title = tool.title
    if title is None:
        annotated = tool.annotations.get("title")
        title = annotated if isinstance(annotated, str) else ""
    param_names, param_descriptions = schema_text(tool.input_schema)
    return [
        tokenize(tool.name),
        tokenize(title),
        tokenize(tool.description),
        tokenize(" ".join(param_names)),
        tokenize(" ".join(param_descriptions)),
    ]


class BM25Index:
    """Two-level fielded BM25 over tools and their servers (see the module docstring).

    Example:
        >>> index = BM25Index()
        >>> index.replace_server("time", [ToolDoc("time", "get_current_time", "Current time")])
        >>> [hit.key for hit in index.search("what time is it", 5)]
        ['time:get_current_time']
    """

    def __init__(self, weights: FieldWeights | None = None) -> None:
        """Create an empty index.

        Args:
            weights: Field weights; the module defaults when omitted.
        """
        w = weights or FieldWeights()
        self._share = w.server_share
        tool_weights = (w.name, w.title, w.description, w.param_names, w.param_descriptions)
        self._tools: _Fielded[int] = _Fielded(tool_weights, _TOOL_B)
        self._server_docs: _Fielded[str] = _Fielded((w.server_name, w.context), _SERVER_B)
        # Tools and servers get small integer ids, reused after removal, so that a query can
        # accumulate scores in flat lists (much faster than dicts in CPython). Slot 0 of the
        # server table is a server that never scores: free tool ids point at it.
        self._tool: list[_Tool | None] = []
        self._keys: list[str] = []
        self._tool_server: list[int] = []
        self._free_tools: list[int] = []
        self._servers: dict[str, tuple[int, list[int]]] = {}
        self._free_servers: list[int] = []
        self._server_count = 1
        self._size = 0
        self._tool_server_array: Any = None  # numpy copy of _tool_server, rebuilt after updates

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> dict[str, Any]:
        """The index contents without the query caches (rebuilt as queries need them)."""
        return {**self.__dict__, "_tool_server_array": None}

    def replace_server(self, server: str, tools: Sequence[ToolDoc], context: str = "") -> None:
        """Replace every tool of ``server``; touches only that server's postings.

        Args:
            server: Server name.
            tools: The server's whole tool list. A repeated tool name keeps its first entry.
            context: Free text about the server (its description), searched at server level.
        """
        self._drop(server)
        unique: dict[str, ToolDoc] = {}
        for tool in tools:
            unique.setdefault(tool.name, tool)
        if unique:
            slot = self._free_servers.pop() if self._free_servers else self._new_server_slot()
            ids = [self._add_tool(server, slot, tool) for tool in unique.values()]
            self._servers[server] = (slot, ids)
            self._server_docs.add(server, [tokenize(server), tokenize(context)])
        self._tools.settle()
        self._server_docs.settle()

    def remove_server(self, server: str) -> None:
        """Forget every tool of ``server`` (a no-op for an unknown server)."""
        self._drop(server)
        self._tools.settle()
        self._server_docs.settle()

    def _new_server_slot(self) -> int:
        self._server_count += 1
        return self._server_count - 1

    def _add_tool(self, server: str, server_slot: int, tool: ToolDoc) -> int:
        entry = _Tool(f"{server}:{tool.name}", server, tool.name)
        if self._free_tools:
            ident = self._free_tools.pop()
            self._tool[ident] = entry
            self._keys[ident] = entry.key
            self._tool_server[ident] = server_slot
            self._tool_server_array = None
        else:
            ident = len(self._tool)
            self._tool.append(entry)
            self._keys.append(entry.key)
            self._tool_server.append(server_slot)
            self._tool_server_array = None
        self._tools.add(ident, _tool_fields(tool))
        self._size += 1
        return ident

    def _drop(self, server: str) -> None:
        entry = self._servers.pop(server, None)
        if entry is None:
            return
        slot, ids = entry
        for ident in ids:
            self._tools.remove(ident)
            self._tool[ident] = None
            self._keys[ident] = ""
            self._tool_server[ident] = 0
            self._tool_server_array = None
            self._free_tools.append(ident)
        self._size -= len(ids)
        self._free_servers.append(slot)
        self._server_docs.remove(server)

    def search(self, query: str, limit: int, allow: Allow | None = None) -> list[Hit]:
        """The best ``limit`` tools for ``query``, best first; ties in key order.

        A tool scores its own BM25F score plus ``server_share`` times its server's, so a tool that
        matches only through its server still ranks, by its server.

        Args:
            query: Free text; an empty or stop-word-only query matches nothing.
            limit: Maximum number of hits.
            allow: Policy filter, applied before the cut so refused tools never take a place.

        Returns:
            Hits with positive scores, highest first.
        """
        return [Hit(tool.server, tool.name, score) for tool, score in self.ranked(weighted_terms(query), limit, allow)]

    def ranked(
        self, terms: Sequence[WeightedTerm], limit: int, allow: Allow | None = None
    ) -> list[tuple[ToolRef, float]]:
        """The best ``limit`` tools for weighted ``terms``, best first, with their scores.

        Args:
            terms: ``(term, weight)`` pairs, as ``expand.weighted_terms`` gives them.
            limit: Maximum number of tools.
            allow: Policy filter, applied before the cut.

        Returns:
            ``(tool, score)`` pairs with positive scores, in (score desc, key asc) order.
        """
        if limit <= 0 or not self._size:
            return []
        terms = list(terms)[:MAX_QUERY_TERMS]
        if not terms:
            return []
        server_scores: dict[str, float] = {}
        self._server_docs.accumulate(terms, self._share, server_scores)
        np = _numpy() if len(self._tool) >= NUMPY_MIN_TOOLS else None
        if np is not None:
            return self._ranked_numpy(np, terms, server_scores, limit, allow)
        totals = [0.0] * len(self._tool)
        _accumulate_into(self._tools, terms, totals)
        # The server's share is added last to each of its tools (``own + share``, as the numpy
        # way does); a loop over the matching servers' tools costs a quarter of a pass over all.
        servers = self._servers
        for server, score in server_scores.items():
            for ident in servers[server][1]:
                totals[ident] += score
        return [(tool, totals[ident]) for ident, tool in self._top(totals, limit, allow)]

    def _ranked_numpy(
        self,
        np: Any,
        terms: Sequence[WeightedTerm],
        server_scores: Mapping[str, float],
        limit: int,
        allow: Allow | None,
        *,
        own_only: bool = False,
    ) -> list[tuple[ToolRef, float]]:
        """``ranked`` (``ranked_sparse`` with ``own_only``) with numpy: the same floats, added in the
        same order, in C loops.

        Own scores come from ``_Fielded.scores_numpy`` (see there); the server scores are added
        last, as in the pure path, so every total is bit for bit the pure path's and so is the
        ranking (``tests/search/test_bm25.py`` compares the two).
        """
        n = len(self._tool)
        totals = self._tools.scores_numpy(np, terms, n)
        matched = totals > 0.0 if own_only else None
        if server_scores:
            by_slot = np.zeros(self._server_count, dtype=np.float64)
            servers = self._servers
            by_slot[[servers[server][0] for server in server_scores]] = list(server_scores.values())
            if self._tool_server_array is None or len(self._tool_server_array) != n:
                self._tool_server_array = np.asarray(self._tool_server, dtype=np.intp)
            totals = totals + by_slot[self._tool_server_array]
            if matched is not None:
                totals[~matched] = 0.0  # a tool that matches through its server alone is left out
        candidates = np.flatnonzero(totals > 0.0)
        values = totals[candidates]
        positive = len(values)
        keys = self._keys
        score_of: dict[int, float] = {}

        def pool_for(k: int) -> tuple[list[int], bool]:
            # Every tool at or above the k-th best score, ties included (all of them past ``positive``).
            taken = values >= np.partition(values, positive - k)[positive - k] if k < positive else slice(None)
            pool: list[int] = candidates[taken].tolist()
            score_of.update(zip(pool, values[taken].tolist(), strict=True))
            pool.sort(key=lambda ident: (-score_of[ident], keys[ident]))
            return pool, k >= positive

        return [(tool, score_of[ident]) for ident, tool in self._pick(pool_for, limit, allow)]

    def ranked_sparse(
        self, terms: Sequence[WeightedTerm], limit: int, allow: Allow | None = None, *, max_share: float = 1.0
    ) -> list[tuple[ToolRef, float]]:
        """Like ``ranked``, for tools that match on their own fields only, in time linear in the matches.

        Meant for short queries over a large catalogue (the steps of a long request): it touches
        only the postings of ``terms``, not every tool, and leaves out tools that match through
        their server alone.

        Args:
            terms: ``(term, weight)`` pairs.
            limit: Maximum number of tools.
            allow: Policy filter, applied before the cut.
            max_share: Terms found in more than this share of the tools are left out: their IDF is
                low, so they barely change the order, while their postings are the longest.
        """
        if limit <= 0 or not self._size:
            return []
        cap = max_share * len(self._tools)
        terms = [(t, w) for t, w in list(terms)[:MAX_QUERY_TERMS] if self._tools.df.get(t, 0) <= cap]
        np = _numpy() if len(self._tool) >= NUMPY_MIN_TOOLS else None
        if np is not None:
            server_scores_np: dict[str, float] = {}
            self._server_docs.accumulate(terms, self._share, server_scores_np)
            return self._ranked_numpy(np, terms, server_scores_np, limit, allow, own_only=True)
        own: dict[int, float] = {}
        self._tools.accumulate(terms, 1.0, own)
        if not own:
            return []
        server_scores: dict[str, float] = {}
        self._server_docs.accumulate(terms, self._share, server_scores)
        if server_scores:
            slot_scores = {self._servers[server][0]: score for server, score in server_scores.items()}
            tool_server = self._tool_server
            for ident in own:
                own[ident] += slot_scores.get(tool_server[ident], 0.0)
        keys = self._keys
        k = limit
        taken = 0
        out: list[tuple[ToolRef, float]] = []
        while True:
            # The k-th best score (a C-level pass over floats), then only the few at or above it
            # are sorted exactly; ties at the cut are all kept.
            cut = heapq.nlargest(k, own.values())[-1] if k < len(own) else -math.inf
            best = sorted((i for i, v in own.items() if v >= cut), key=lambda i: (-own[i], keys[i]))
            for ident in best[taken:]:
                tool = self._tool[ident]
                if tool is not None and (allow is None or allow(tool.server, tool.name)):
                    out.append((tool, own[ident]))
                    if len(out) == limit:
                        return out
            if k >= len(own):
                return out
            taken = len(best)
            k *= 4

    def explain(self, terms: Sequence[WeightedTerm], server: str, name: str) -> dict[str, Any]:
        """Why a tool scores what it does for ``terms``: its matching terms, by field, and its server's.

        Args:
            terms: ``(term, weight)`` pairs.
            server: The tool's server.
            name: The tool's name.

        Returns:
            ``{"tool": {term: [field, ...]}, "server": {term: [field, ...]}, "tool_score": x,
            "server_score": y}``; empty maps when nothing matches (or the tool is unknown).
        """
        entry = self._servers.get(server)
        ident = None
        if entry is not None:
            ident = next((i for i in entry[1] if self._keys[i] == f"{server}:{name}"), None)
        tool_terms = self._tools.term_fields(ident, terms) if ident is not None else []
        server_terms = self._server_docs.term_fields(server, terms)
        return {
            "tool": {term: [TOOL_FIELDS[f] for f in fields] for term, _, fields in tool_terms},
            "server": {term: [SERVER_FIELDS[f] for f in fields] for term, _, fields in server_terms},
            "tool_score": sum(score for _, score, _ in tool_terms),
            "server_score": self._share * sum(score for _, score, _ in server_terms),
        }

    def tools_of(self, server: str) -> list[ToolRef]:
        """The indexed tools of ``server`` (``[]`` for an unknown server)."""
        entry = self._servers.get(server)
        if entry is None:
            return []
        return [tool for ident in entry[1] if (tool := self._tool[ident]) is not None]

    def _top(self, totals: list[float], limit: int, allow: Allow | None) -> list[tuple[int, _Tool]]:
        """The first ``limit`` allowed tools in (score desc, key asc) order, scores above 0."""
        keys = self._keys

        def pool_for(k: int) -> tuple[list[int], bool]:
            cut = heapq.nlargest(k, totals)[-1] if k < len(totals) else 0.0
            if cut <= 0.0:
                cut = math.ulp(0.0)
            pool = list(compress(count(), map(operator.ge, totals, repeat(cut))))
            pool.sort(key=lambda ident: (-totals[ident], keys[ident]))
            return pool, cut == math.ulp(0.0)

        return self._pick(pool_for, limit, allow)

    def _pick(
        self, pool_for: Callable[[int], tuple[list[int], bool]], limit: int, allow: Allow | None
    ) -> list[tuple[int, _Tool]]:
        """The first ``limit`` allowed tools of a ranking, taken from its head.

        ``pool_for(k)`` gives every tool scoring at least the k-th best score (ties at the cut
        included), sorted exactly, and whether that is every tool with a positive score; k is
        widened (x4) only when ``allow`` refused too many of them.
        """
        tools = self._tool
        k = limit
        seen = 0
        picked: list[tuple[int, _Tool]] = []
        while True:
            pool, whole = pool_for(k)
            for ident in pool[seen:]:
                tool = tools[ident]
                if tool is None:  # a free id; it scores 0, so this cannot happen
                    continue
                if allow is None or allow(tool.server, tool.name):
                    picked.append((ident, tool))
                    if len(picked) == limit:
                        return picked
            if whole:
                return picked
            seen = len(pool)
            k *= 4
