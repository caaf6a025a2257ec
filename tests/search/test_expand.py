"""Query expansion adds "current" to questions about the present, and nothing else."""

from __future__ import annotations

import pytest

from mcpproxy.search.base import ToolDoc
from mcpproxy.search.bm25 import BM25Index
from mcpproxy.search.expand import query_terms
from mcpproxy.search.tokenize import tokenize

CURRENT = tokenize("current")[0]


@pytest.mark.parametrize(
    "query",
    [
        "what time is it in Tokyo",
        "What day is it?",
        "what's the weather right now",
        "stock price now",
        "who is currently on call",
    ],
)
def test_questions_about_the_present_gain_the_word_current(query: str) -> None:
    assert CURRENT in query_terms(query)


@pytest.mark.parametrize("query", ["convert 3pm London to Tokyo", "what is a monad", "news from today", "time zones"])
def test_other_queries_are_left_as_they_are(query: str) -> None:
    assert query_terms(query) == list(dict.fromkeys(tokenize(query)))


def test_the_current_time_tool_beats_the_conversion_tool_for_a_question_about_now() -> None:
    index = BM25Index()
    index.replace_server(
        "time",
        [
            ToolDoc(
                "time",
                "get_current_time",
                "Get current time in a specific timezones",
                {"type": "object", "properties": {"timezone": {"type": "string", "description": "IANA timezone name"}}},
            ),
            ToolDoc(
                "time",
                "convert_time",
                "Convert time between timezones",
                {
                    "type": "object",
                    "properties": {
                        "source_timezone": {"type": "string"},
                        "time": {"type": "string"},
                        "target_timezone": {"type": "string"},
                    },
                },
            ),
        ],
    )
    assert index.search("what time is it in Tokyo", 2)[0].name == "get_current_time"
    assert index.search("convert 14:00 from London time to Tokyo time", 2)[0].name == "convert_time"
