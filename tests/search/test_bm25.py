"""Behaviour of the default tool index on a small, realistic catalogue."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mcpproxy.search.bm25 as bm25_module
from mcpproxy.search.base import Hit, ToolDoc, ToolIndex
from mcpproxy.search.bm25 import MAX_QUERY_TERMS, BM25Index, schema_text
from mcpproxy.search.expand import weighted_terms


def _schema(**params: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in params.items()},
    }


TIME = [
    ToolDoc(
        "time",
        "get_current_time",
        "Get current time in a specific timezone",
        _schema(
            timezone="IANA timezone name (e.g., 'America/New_York', 'Europe/London'). "
            "Use 'UTC' as local timezone if no timezone provided by the user."
        ),
    ),
    ToolDoc(
        "time",
        "convert_time",
        "Convert time between timezones",
        _schema(
            source_timezone="Source IANA timezone name",
            time="Time to convert in 24-hour format (HH:MM)",
            target_timezone="Target IANA timezone name",
        ),
    ),
]
FILESYSTEM = [
    ToolDoc(
        "filesystem",
        "read_file",
        "Read the complete contents of a file from the file system.",
        _schema(path=""),
    ),
    ToolDoc(
        "filesystem",
        "write_file",
        "Create a new file or completely overwrite an existing file with new content.",
        _schema(path="", content=""),
    ),
    ToolDoc(
        "filesystem",
        "list_directory",
        "Get a detailed listing of all files and directories in a specified path.",
        _schema(path=""),
    ),
    ToolDoc(
        "filesystem",
        "search_files",
        "Recursively search for files and directories matching a pattern.",
        _schema(path="", pattern=""),
    ),
]
MEMORY = [
    ToolDoc(
        "memory",
        "create_entities",
        "Create multiple new entities in the knowledge graph",
        {
            "type": "object",
            "properties": {
                "entities": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "description": "The name of the entity"},
                            "observations": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                }
            },
        },
    ),
    ToolDoc(
        "memory",
        "search_nodes",
        "Search for nodes in the knowledge graph based on a query",
        _schema(query=""),
    ),
    ToolDoc("memory", "read_graph", "Read the entire knowledge graph", {}),
]
FETCH = [
    ToolDoc(
        "fetch",
        "fetch",
        "Fetches a URL from the internet and optionally extracts its contents as markdown.",
        _schema(url="URL to fetch"),
    )
]
EXCHANGE = [
    ToolDoc(
        "exchange",
        "lookup",
        "Look up a value.",
        _schema(base="ISO 4217 currency code to convert from", quote="ISO 4217 currency code to convert to"),
    )
]

CATALOGUE: Mapping[str, list[ToolDoc]] = {
    "time": TIME,
    "filesystem": FILESYSTEM,
    "memory": MEMORY,
    "fetch": FETCH,
    "exchange": EXCHANGE,
}


def _index(catalogue: Mapping[str, list[ToolDoc]] = CATALOGUE) -> BM25Index:
    index = BM25Index()
    for server, tools in catalogue.items():
        index.replace_server(server, tools)
    return index


def _keys(hits: list[Hit]) -> list[str]:
    return [hit.key for hit in hits]


def test_bm25_index_satisfies_the_tool_index_protocol() -> None:
    index: ToolIndex = BM25Index()
    assert len(index) == 0


def test_a_time_tool_comes_first_for_what_time_is_it_in_tokyo() -> None:
    hits = _index().search("what time is it in Tokyo", 3)
    assert {hit.key for hit in hits[:2]} == {"time:get_current_time", "time:convert_time"}


def test_the_current_time_tool_comes_first_when_asked_for_the_current_time() -> None:
    assert _index().search("current time in Tokyo", 1)[0].key == "time:get_current_time"


def test_file_tools_are_found_by_plain_words() -> None:
    assert _index().search("write the report to a new file", 1)[0].key == "filesystem:write_file"
    assert _index().search("show what is in the folder directory", 1)[0].key == "filesystem:list_directory"


def test_camel_case_and_snake_case_names_match_spoken_words() -> None:
    index = BM25Index()
    index.replace_server("recipes", [ToolDoc("recipes", "getRecipeById", "")])
    index.replace_server("notes", [ToolDoc("notes", "append_note", "")])
    assert _keys(index.search("recipe", 5)) == ["recipes:getRecipeById"]
    assert _keys(index.search("append a note", 5)) == ["notes:append_note"]


def test_parameter_descriptions_are_searchable() -> None:
    assert _index().search("currency code", 1)[0].key == "exchange:lookup"


def test_parameters_of_nested_objects_and_arrays_are_searchable() -> None:
    assert _index().search("observations", 1)[0].key == "memory:create_entities"


def test_schema_walk_reaches_nested_properties_items_and_enums() -> None:
    names, descriptions = schema_text(
        {
            "type": "object",
            "properties": {
                "format": {"type": "string", "enum": ["pdf", "docx"], "description": "Output format"},
                "rows": {"type": "array", "items": {"type": "object", "properties": {"cell": {}}}},
            },
            "$defs": {"Style": {"properties": {"font": {"description": "Font family"}}}},
        }
    )
    assert names == ["format", "rows", "cell", "font"]
    assert descriptions == ["Output format", "pdf", "docx", "Font family"]


def test_a_tool_title_is_searchable() -> None:
    index = BM25Index()
    index.replace_server(
        "npm", [ToolDoc("npm", "npmDeps", "", annotations={"title": "Get Package Dependencies"})]
    )
    index.replace_server("git", [ToolDoc("git", "git_log", "Show the commit logs", title="Commit history")])
    assert _keys(index.search("package dependencies", 5)) == ["npm:npmDeps"]
    assert _keys(index.search("history", 5)) == ["git:git_log"]


def test_chinese_descriptions_are_found_by_chinese_queries() -> None:
    index = _index()
    index.replace_server(
        "bing", [ToolDoc("bing", "bing_search", "使用必应搜索指定的关键词，并返回搜索结果列表")]
    )
    assert index.search("必应搜索", 1)[0].key == "bing:bing_search"


def test_server_context_lifts_that_servers_tools() -> None:
    tools = ["create_document", "add_paragraph", "save"]
    index = BM25Index()
    index.replace_server(
        "docs", [ToolDoc("docs", name, f"{name.replace('_', ' ')}") for name in tools], "Edit Google Docs"
    )
    index.replace_server(
        "office",
        [ToolDoc("office", name, f"{name.replace('_', ' ')}") for name in tools],
        "Edit Microsoft Word files",
    )
    hits = index.search("add a paragraph to my Word file", 2)
    assert _keys(hits) == ["office:add_paragraph", "docs:add_paragraph"]


def test_a_tool_matching_only_through_its_server_is_still_found() -> None:
    index = _index()
    index.replace_server(
        "weather", [ToolDoc("weather", "forecast", "Seven-day outlook")], "Weather data from Open-Meteo"
    )
    assert _keys(index.search("weather", 5)) == ["weather:forecast"]


def test_replace_server_replaces_only_that_servers_tools() -> None:
    index = _index()
    before = len(index)
    index.replace_server("time", [ToolDoc("time", "now", "Current time in a timezone")])
    assert len(index) == before - len(TIME) + 1
    assert _keys(index.search("convert time between timezones", 5))[0] == "time:now"
    assert "time:convert_time" not in _keys(index.search("convert time", 10))
    assert index.search("knowledge graph", 1)[0].server == "memory"


def test_incremental_updates_score_exactly_like_a_fresh_build() -> None:
    index = _index()
    index.replace_server("time", [ToolDoc("time", "now", "Current time")])
    index.remove_server("fetch")
    index.replace_server("fetch", FETCH, "Web content fetching")
    index.replace_server("time", TIME)
    fresh = BM25Index()
    for server in ["fetch", "exchange", "memory", "filesystem", "time"]:
        fresh.replace_server(server, CATALOGUE[server], "Web content fetching" if server == "fetch" else "")
    for query in ["what time is it", "fetch a web page", "read a file", "knowledge graph entities"]:
        assert index.search(query, 10) == fresh.search(query, 10)


_POOL = [tool for tools in CATALOGUE.values() for tool in tools]
_UPDATES = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.one_of(st.none(), st.lists(st.sampled_from(range(len(_POOL))), max_size=4)),
        st.sampled_from(["", "files and folders", "knowledge graph memory"]),
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(_UPDATES)
def test_any_sequence_of_updates_scores_exactly_like_a_fresh_build(updates: list[Any]) -> None:
    index = BM25Index()
    final: dict[str, tuple[list[ToolDoc], str]] = {}
    for server, picks, context in updates:
        if picks is None:
            index.remove_server(server)
            final.pop(server, None)
        else:
            tools = [
                ToolDoc(server, _POOL[i].name, _POOL[i].description, _POOL[i].input_schema) for i in picks
            ]
            index.replace_server(server, tools, context)
            final[server] = (tools, context)
    fresh = BM25Index()
    for server, (tools, context) in sorted(final.items()):
        fresh.replace_server(server, tools, context)
    assert len(index) == len(fresh)
    for query in ["what time is it", "read a file", "knowledge graph", "files folders fetch url"]:
        assert index.search(query, 5) == fresh.search(query, 5)


def test_remove_server_forgets_its_tools() -> None:
    index = _index()
    index.remove_server("filesystem")
    assert len(index) == sum(len(tools) for tools in CATALOGUE.values()) - len(FILESYSTEM)
    assert all(
        hit.server != "filesystem" for hit in index.search("read write list search files directory", 20)
    )


def test_removing_an_unknown_server_changes_nothing() -> None:
    index = _index()
    before = index.search("time", 10)
    index.remove_server("nope")
    assert index.search("time", 10) == before


def test_replacing_a_server_with_no_tools_removes_it() -> None:
    index = _index()
    index.replace_server("memory", [])
    assert all(hit.server != "memory" for hit in index.search("knowledge graph", 10))


def test_allow_filter_excludes_tools_without_shrinking_the_result() -> None:
    index = _index()
    unfiltered = index.search("file", 3)
    refused = unfiltered[0].key
    hits = index.search("file", 3, allow=lambda server, tool: f"{server}:{tool}" != refused)
    assert refused not in _keys(hits)
    assert len(hits) == 3
    assert _keys(hits)[:2] == _keys(unfiltered)[1:]


def test_allow_filter_reaches_past_many_refused_tools() -> None:
    index = BM25Index()
    index.replace_server("dict", [ToolDoc("dict", f"lookup_{i:02d}", "Look up a word") for i in range(40)])
    hits = index.search("look up a word", 5, allow=lambda server, tool: tool >= "lookup_30")
    assert _keys(hits) == [f"dict:lookup_{i}" for i in range(30, 35)]


def test_allow_filter_that_refuses_everything_returns_nothing() -> None:
    assert _index().search("file", 5, allow=lambda server, tool: False) == []


def test_ties_are_broken_by_key_whatever_the_insertion_order() -> None:
    def build(order: list[str]) -> BM25Index:
        index = BM25Index()
        for server in order:
            index.replace_server(server, [ToolDoc(server, "lookup", "Look up a word in the dictionary")])
        return index

    expected = ["alpha:lookup", "beta:lookup", "gamma:lookup"]
    assert _keys(build(["gamma", "alpha", "beta"]).search("dictionary", 3)) == expected
    assert _keys(build(["beta", "gamma", "alpha"]).search("dictionary", 3)) == expected


def test_limit_is_respected() -> None:
    index = _index()
    assert len(index.search("file directory path", 2)) == 2
    assert index.search("file", 0) == []


@pytest.mark.parametrize("query", ["", "   \t\n", "the of and", "?!"])
def test_empty_or_contentless_queries_return_nothing(query: str) -> None:
    assert _index().search(query, 5) == []


def test_search_on_an_empty_index_returns_nothing() -> None:
    assert BM25Index().search("time", 5) == []


def test_results_are_best_first_with_positive_scores() -> None:
    hits = _index().search("search files in a directory", 10)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)


@pytest.mark.parametrize("numpy", [False, True])
def test_search_does_not_change_the_index(numpy: bool) -> None:
    if numpy:
        pytest.importorskip("numpy")
    index = _index()
    before = pickle.dumps(index)
    with _path(numpy=numpy):  # either way fills only caches, which are not part of the contents
        index.search("what time is it", 5, allow=lambda server, tool: server != "time")
        index.ranked_sparse(weighted_terms("knowledge graph"), 3)
    assert pickle.dumps(index) == before


def test_a_repeated_tool_name_in_one_listing_keeps_the_first() -> None:
    index = BM25Index()
    index.replace_server(
        "s", [ToolDoc("s", "echo", "Repeat a message"), ToolDoc("s", "echo", "Something else")]
    )
    assert len(index) == 1
    assert _keys(index.search("repeat message", 5)) == ["s:echo"]


# -- the numpy path: the same floats, so the same ranking -------------------------------------------

_QUERIES = [
    "what time is it in tokyo",
    "read a file and write it to ~/notes/out.md",
    "knowledge graph entities",
    "files folders fetch url",
    "convert currency",
    "time",
]


def _reference(index: BM25Index, query: str, limit: int, allow: Any = None) -> list[tuple[str, float]]:
    """The ranking from its definition: own score plus the server's share, summed in term order."""
    terms = weighted_terms(query)[:MAX_QUERY_TERMS]
    own: dict[int, float] = {}
    index._tools.accumulate(terms, 1.0, own)
    servers: dict[str, float] = {}
    index._server_docs.accumulate(terms, index._share, servers)
    totals = []
    for ident, tool in enumerate(index._tool):
        if tool is None:
            continue
        total = own.get(ident, 0.0) + servers.get(tool.server, 0.0)
        if total > 0.0 and (allow is None or allow(tool.server, tool.name)):
            totals.append((tool.key, total))
    totals.sort(key=lambda entry: (-entry[1], entry[0]))
    return totals[:limit]


def _ranked(index: BM25Index, query: str, limit: int, allow: Any = None) -> list[tuple[str, float]]:
    return [(tool.key, score) for tool, score in index.ranked(weighted_terms(query), limit, allow)]


def _sparse(index: BM25Index, query: str, limit: int) -> list[tuple[str, float]]:
    found = index.ranked_sparse(weighted_terms(query), limit, max_share=0.5)
    return [(tool.key, score) for tool, score in found]


def _refuse_some(server: str, name: str) -> bool:
    return (len(server) + len(name)) % 3 != 0


@settings(max_examples=40, deadline=None)
@given(_UPDATES)
def test_both_ways_of_adding_scores_rank_exactly_as_the_definition(updates: list[Any]) -> None:
    pytest.importorskip("numpy")
    pure, fast = BM25Index(), BM25Index()
    for server, picks, context in updates:
        for index in (pure, fast):
            if picks is None:
                index.remove_server(server)
            else:
                tools = [
                    ToolDoc(server, _POOL[i].name, _POOL[i].description, _POOL[i].input_schema) for i in picks
                ]
                index.replace_server(server, tools, context)
        # Searching between updates fills both paths' caches (group contributions, per-term
        # arrays), which an update must drop.
        with _path(numpy=False):
            _ranked(pure, "read files in a folder", 3)
            _sparse(pure, "knowledge graph", 3)
        with _path(numpy=True):
            _ranked(fast, "read files in a folder", 3)
            _sparse(fast, "knowledge graph", 3)
    for query in _QUERIES:
        for limit in (1, 3, 50):
            for allow in (None, _refuse_some):
                expected = _reference(pure, query, limit, allow)
                with _path(numpy=False):
                    assert _ranked(pure, query, limit, allow) == expected
                with _path(numpy=True):
                    assert _ranked(fast, query, limit, allow) == expected
        with _path(numpy=False):
            expected_sparse = _sparse(pure, query, 5)
        with _path(numpy=True):
            assert _sparse(fast, query, 5) == expected_sparse


def test_the_numpy_path_ranks_a_crowded_catalogue_exactly_as_the_pure_path() -> None:
    pytest.importorskip("numpy")
    index = BM25Index()
    for copy in range(40):
        for server, tools in CATALOGUE.items():
            name = f"{server}{copy}"
            edited = [
                ToolDoc(name, t.name, f"{t.description} {' extra' * (copy % 5)}", t.input_schema) for t in tools
            ]
            index.replace_server(name, edited, "files and folders" if copy % 2 else "knowledge graph memory")
    for query in _QUERIES:
        for limit in (1, 10, 100, 1000):
            with _path(numpy=False):
                expected = _ranked(index, query, limit, _refuse_some)
                expected_sparse = _sparse(index, query, limit)
            with _path(numpy=True):
                assert _ranked(index, query, limit, _refuse_some) == expected
                assert _sparse(index, query, limit) == expected_sparse
            assert expected == _reference(index, query, limit, _refuse_some)


@contextmanager
def _path(*, numpy: bool) -> Iterator[None]:
    """Force the numpy path (any catalogue size) or the pure Python one."""
    saved = (bm25_module.NUMPY_MIN_TOOLS, bm25_module._numpy)
    if numpy:
        bm25_module.NUMPY_MIN_TOOLS = 0
    else:
        bm25_module._numpy = lambda: None  # type: ignore[assignment]
    try:
        yield
    finally:
        bm25_module.NUMPY_MIN_TOOLS, bm25_module._numpy = saved
