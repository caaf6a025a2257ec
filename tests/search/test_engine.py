"""ToolSearch: whole tasks, several requests, diversity, explanations, usage, filters and vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from mcpproxy.search.base import ToolDoc
from mcpproxy.search.engine import ToolSearch, embedding_text
from mcpproxy.search.usage import MAX_BOOST, UsageCounts


def _schema(*params: str) -> dict[str, Any]:
    return {"type": "object", "properties": {p: {"type": "string"} for p in params}}


CATALOGUE: dict[str, tuple[str, list[ToolDoc]]] = {
    "excel": (
        "Read and write Excel workbooks.",
        [
            ToolDoc("excel", "excel_read_sheet", "Read data from an Excel sheet.", _schema("filepath", "sheet")),
            ToolDoc("excel", "excel_write_to_sheet", "Write data to an Excel sheet.", _schema("filepath", "data")),
        ],
    ),
    "charts": (
        "Generate charts from data.",
        [
            ToolDoc("charts", "generate_bar_chart", "Generate a bar chart to compare values.", _schema("data")),
            ToolDoc("charts", "generate_pie_chart", "Generate a pie chart of shares.", _schema("data")),
        ],
    ),
    "filesystem": (
        "Secure file operations.",
        [
            ToolDoc("filesystem", "write_file", "Create a new file or overwrite a file.", _schema("path", "content")),
            ToolDoc("filesystem", "read_file", "Read the complete contents of a file.", _schema("path")),
        ],
    ),
    "weather": (
        "Weather forecasts.",
        [ToolDoc("weather", "get_forecast", "Weather forecast for a city.", _schema("city"))],
    ),
}


def _index(**kwargs: Any) -> ToolSearch:
    index = ToolSearch(**kwargs)
    for server, (context, tools) in CATALOGUE.items():
        index.replace_server(server, tools, context)
    return index


def _keys(matches: Sequence[Any]) -> list[str]:
    return [m.key for m in matches]


def test_a_whole_task_finds_a_tool_for_each_of_its_steps() -> None:
    found = _keys(
        _index(split=True).find(
            ["Read the sales data in /data/sales.xlsx, plot it as a bar chart by month and save it to /out/s.md"], 5
        )
    )
    assert {"excel:excel_read_sheet", "charts:generate_bar_chart", "filesystem:write_file"} <= set(found)


def test_grouped_by_server_the_servers_follow_the_whole_request_and_steps_only_choose_tools() -> None:
    task = ["Read the sales data in /data/sales.xlsx, plot it as a bar chart by month and save it to /out/s.md"]
    flat = _keys(_index(split=True).find(task, 6))
    grouped = _keys(_index(split=True).find(task, 6, by_server=True))
    assert sorted(grouped) == sorted(flat)  # the same results, regrouped

    def server(key: str) -> str:
        return key.partition(":")[0]

    servers = list(dict.fromkeys(server(k) for k in grouped))
    assert [server(k) for k in grouped] == sorted((server(k) for k in grouped), key=servers.index)  # contiguous
    for name in servers:  # each server's tools keep their fused order
        assert [k for k in grouped if server(k) == name] == [k for k in flat if server(k) == name]
    whole = list(dict.fromkeys(server(k) for k in _keys(_index(split=False).find(task, 50))))
    ranked = [s for s in whole if s in servers]
    assert servers[: len(ranked)] == ranked  # servers ranked on the whole request, step-only ones after
    assert servers != list(dict.fromkeys(server(k) for k in flat))  # which is not the flat list's order here


def test_several_requests_in_one_call_find_the_tools_of_each() -> None:
    found = _keys(_index().find(["weather forecast for Paris", "pie chart of my budget"], 2))
    assert set(found) == {"weather:get_forecast", "charts:generate_pie_chart"}


def test_steps_are_searched_in_hybrid_mode_only_unless_asked() -> None:
    query = ["read the sheet, plot a bar chart, then save the file /tmp/x.md"]
    kinds = {f["by"] for m in _index().find(query, 10, explain=True) for f in (m.why or {})["found_by"]}
    assert kinds == {"words"}
    kinds = {f["by"] for m in _index(split=True).find(query, 10, explain=True) for f in (m.why or {})["found_by"]}
    assert kinds == {"words", "step"}
    hybrid = _index(embedder=FakeEmbedder())
    for server in hybrid.servers():
        hybrid.embed_server(server)
    kinds = {f["by"] for m in hybrid.find(query, 10, explain=True) for f in (m.why or {})["found_by"]}
    assert "step" in kinds


def test_a_single_request_ranks_like_the_words_index_when_nothing_else_applies() -> None:
    index = _index(split=False)
    words = [tool.key for tool, _ in index.lexical.ranked([("forecast", 1.0)], 10)]
    assert _keys(index.find(["forecast"], 10)) == words


def test_refused_tools_never_appear_in_any_channel() -> None:
    index = _index(split=True)
    found = index.find(
        ["read the sheet, plot a bar chart, then save the file /tmp/x.md"],
        10,
        allow=lambda server, tool: server != "charts",
    )
    assert found
    assert all(m.server != "charts" for m in found)


def test_results_do_not_depend_on_the_order_servers_were_indexed_in() -> None:
    forward = _index(split=True)
    backward = ToolSearch(split=True)
    for server, (context, tools) in reversed(CATALOGUE.items()):
        backward.replace_server(server, tools, context)
    query = ["read the sheet and plot a chart then write the file"]
    assert forward.find(query, 8) == backward.find(query, 8)


def _forks(index: ToolSearch, copies: int) -> None:
    for i in range(copies):
        server = f"weather_fork{i}"
        index.replace_server(
            server, [ToolDoc(server, "get_forecast", "Weather forecast for a city, fast.", _schema("city"))]
        )


def test_near_copies_of_a_tool_on_other_servers_come_after_distinct_tools() -> None:
    index = _index()
    _forks(index, 5)
    index.replace_server("air", [ToolDoc("air", "get_air_quality", "Air quality forecast for a city.")])
    found = _keys(index.find(["forecast for a city"], 3))
    assert found[:2] == ["weather:get_forecast", "air:get_air_quality"] or found[1] == "air:get_air_quality"
    assert sum(key.endswith(":get_forecast") for key in found[:2]) == 1


def test_every_copy_is_listed_in_score_order_when_diversity_is_off() -> None:
    index = _index()
    _forks(index, 5)
    found = _keys(index.find(["forecast for a city"], 6, diversify=False))
    assert sum(key.endswith(":get_forecast") for key in found) == 6


def test_tools_with_the_same_name_but_different_descriptions_are_not_copies() -> None:
    index = ToolSearch()
    index.replace_server("arxiv", [ToolDoc("arxiv", "search", "Search arXiv papers by keyword.")])
    index.replace_server("news", [ToolDoc("news", "search", "Search news stories and comments.")])
    found = index.find(["search"], 2, explain=True)
    assert len(found) == 2
    assert all(m.why is not None and "near_copy_of" not in m.why for m in found)


def test_explain_says_which_words_matched_where_and_which_channels_found_the_tool() -> None:
    found = _index().find(["save the report to /tmp/out/report.md"], 1, explain=True)
    assert found[0].key == "filesystem:write_file"
    why = found[0].why
    assert why is not None
    assert "name" in why["matched"]["write"]
    assert "parameter names" in why["matched"]["path"]
    assert "write" in why["expanded"]
    assert why["found_by"][0] == {"by": "words", "rank": 1}


def test_explain_names_the_original_of_a_near_copy() -> None:
    index = _index()
    _forks(index, 1)
    found = index.find(["weather forecast"], 2, explain=True)
    assert found[1].why is not None
    assert found[1].why["near_copy_of"] == found[0].key


def test_usage_lifts_a_tool_for_the_client_that_called_it_and_no_other() -> None:
    usage = UsageCounts()
    index = _index(usage=usage)
    query = ["generate a chart"]
    before = _keys(index.find(query, 2, client="alice"))
    assert sorted(before) == ["charts:generate_bar_chart", "charts:generate_pie_chart"]
    for _ in range(5):
        usage.record("alice", before[1])
    assert _keys(index.find(query, 2, client="alice")) == [before[1], before[0]]
    assert _keys(index.find(query, 2, client="bob")) == before
    assert _keys(index.find(query, 2)) == before


def test_usage_never_brings_a_tool_that_does_not_match() -> None:
    usage = UsageCounts()
    index = _index(usage=usage)
    for _ in range(100):
        usage.record("alice", "weather:get_forecast")
    assert "weather:get_forecast" not in _keys(index.find(["generate a chart"], 10, client="alice"))


def test_the_usage_bonus_grows_with_calls_and_is_bounded() -> None:
    usage = UsageCounts()
    factors = [usage.factor("c", "s:t")]
    for _ in range(100):
        usage.record("c", "s:t")
        factors.append(usage.factor("c", "s:t"))
    assert factors[0] == 0.0
    assert factors == sorted(factors)
    assert factors[-1] == MAX_BOOST


class FakeEmbedder:
    """Vectors from a tiny fixed vocabulary of meanings, so tests know which texts are close."""

    model_id = "fake"
    dimension = 3
    MEANINGS: ClassVar[dict[str, int]] = {
        "painting": 0, "artwork": 0, "museum": 0, "weather": 1, "forecast": 1, "chart": 2, "plot": 2
    }

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        out = np.full((len(texts), self.dimension), 0.01, dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(":", " ").split():
                if word in self.MEANINGS:
                    out[row, self.MEANINGS[word]] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_hybrid_mode_finds_a_tool_described_in_other_words() -> None:
    index = _index(embedder=FakeEmbedder())
    index.replace_server("met", [ToolDoc("met", "search_objects", "Search the museum collection for artwork.")])
    for server in index.servers():
        index.embed_server(server)
    assert "met:search_objects" not in _keys(_index().find(["that painting"], 5))
    found = index.find(["that painting"], 5, explain=True)
    assert found[0].key == "met:search_objects"
    assert found[0].why is not None and found[0].why["found_by"][0]["by"] == "meaning"


def test_a_tool_whose_text_changed_loses_its_vector_and_an_unchanged_one_keeps_it() -> None:
    index = _index(embedder=FakeEmbedder())
    index.embed_server("weather")
    assert index.without_vectors("weather") == {}
    index.replace_server("weather", CATALOGUE["weather"][1], "Weather forecasts, now faster.")
    assert index.without_vectors("weather") == {}
    changed = [ToolDoc("weather", "get_forecast", "Hourly weather forecast for a city.")]
    index.replace_server("weather", changed)
    assert index.without_vectors("weather") == {"get_forecast": embedding_text(changed[0])}


def test_a_vector_computed_for_an_older_text_is_not_stored() -> None:
    index = _index(embedder=FakeEmbedder())
    stale = {"get_forecast": "an older description"}
    vector = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    assert index.set_vectors("weather", {"get_forecast": vector}, stale) == 0
    assert "get_forecast" in index.without_vectors("weather")


def test_removing_a_server_removes_its_tools_from_every_channel() -> None:
    index = _index(embedder=FakeEmbedder())
    for server in index.servers():
        index.embed_server(server)
    index.remove_server("weather")
    assert all(m.server != "weather" for m in index.find(["weather forecast"], 10))
    assert len(index.dense) == sum(len(tools) for _, tools in CATALOGUE.values()) - 1


def test_a_repeated_request_is_embedded_once_and_the_cache_is_bounded() -> None:
    embedder = FakeEmbedder()
    index = _index(embedder=embedder, query_cache=2)
    for server in index.servers():
        index.embed_server(server)
    before = embedder.calls
    first = index.find(["weather forecast"], 5)
    assert embedder.calls == before + 1
    assert index.find(["weather forecast"], 5) == first
    assert embedder.calls == before + 1
    index.find(["plot a chart", "weather forecast"], 5)  # one batch, for the new request only
    assert embedder.calls == before + 2
    index.find(["painting"], 5)
    index.find(["plot a chart"], 5)
    assert embedder.calls == before + 3
    index.find(["weather forecast"], 5)  # pushed out by the two more recent ones
    assert embedder.calls == before + 4


def test_without_a_cache_every_search_embeds_its_request() -> None:
    embedder = FakeEmbedder()
    index = _index(embedder=embedder, query_cache=0)
    index.embed_server("weather")
    before = embedder.calls
    index.find(["weather forecast"], 5)
    index.find(["weather forecast"], 5)
    assert embedder.calls == before + 2


@pytest.mark.parametrize("limit", [0, -1])
def test_a_non_positive_limit_returns_nothing(limit: int) -> None:
    assert _index().find(["chart"], limit) == []


def test_blank_requests_return_nothing() -> None:
    assert _index().find(["", "   "], 5) == []
