"""Query expansion adds "current" to questions about the present, and nothing else."""

from __future__ import annotations

import pytest

from mcpproxy.search.base import ToolDoc
from mcpproxy.search.bm25 import BM25Index
from mcpproxy.search.expand import EXPANSION_WEIGHT, VALUE_WEIGHT, meaning_text, query_terms, weighted_terms
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


@pytest.mark.parametrize("query", ["what is a monad", "time zones", "tokyo london"])
def test_queries_without_a_rule_to_apply_are_left_as_they_are(query: str) -> None:
    assert query_terms(query) == list(dict.fromkeys(tokenize(query)))


def test_words_of_the_query_keep_weight_one_and_come_before_expansions() -> None:
    terms = weighted_terms("save the picture")
    words = tokenize("save the picture")
    assert terms[: len(words)] == [(w, 1.0) for w in words]
    assert all(weight < 1.0 for _, weight in terms[len(words) :])


def test_a_synonym_brings_the_other_words_of_its_group() -> None:
    expanded = dict(weighted_terms("plot the monthly sales"))
    assert expanded[tokenize("chart")[0]] == EXPANSION_WEIGHT
    assert expanded[tokenize("graph")[0]] == EXPANSION_WEIGHT


def test_a_file_path_names_a_file_and_its_kind() -> None:
    expanded = dict(weighted_terms("summarise the quarter into /home/me/reports/q3.docx"))
    for word in ("file", "path", "word", "document"):
        assert expanded[tokenize(word)[0]] == VALUE_WEIGHT


def test_saving_to_a_path_asks_for_writing() -> None:
    assert tokenize("write")[0] in query_terms("save it in /tmp/out/report.md")
    assert tokenize("write")[0] not in query_terms("read /tmp/out/report.md")


def test_a_path_without_extension_is_a_directory_and_a_url_is_a_url() -> None:
    assert tokenize("directory")[0] in query_terms("list everything under /var/log/nginx/")
    terms = query_terms("summarise https://example.com/post?id=3")
    assert "url" in terms
    assert "file" not in terms


def test_a_fraction_or_a_date_is_not_a_path() -> None:
    assert "file" not in query_terms("split 3/4 of the budget on 2024/05/01")


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


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("plot it and save it in /root/figs/sale.png", "plot it and save it in  a file "),
        ("list everything under /root/pdf/", "list everything under  a folder "),
        ("summarise https://example.org/a?b=1 for me", "summarise  a web page  for me"),
        ("what time is it in Tokyo", "what time is it in Tokyo"),
        ("either / or", "either / or"),
    ],
)
def test_the_meaning_channel_gets_values_said_in_words(query: str, said: str) -> None:
    assert meaning_text(query) == said


@pytest.mark.parametrize(
    ("path", "said", "directory", "kind_words"),
    [
        ("/root/figs/sale.png", " a file ", False, "image"),
        ("/var/log/nginx/", " a folder ", True, None),
        ("/var/log/nginx", " a folder ", True, None),
        ("/srv/releases/v1.2/", " a folder ", True, None),
        ("/srv/notes.md/", " a folder ", True, None),
        ("C:\\Users\\me\\report.docx", " a file ", False, "word document"),
        ("C:\\Users\\me\\", " a folder ", True, None),
        ("~/.config", " a path ", False, None),
        ("/root/ppt/deck.pptx.", " a file .", False, "powerpoint presentation"),
    ],
)
def test_both_channels_read_a_path_the_same_way(path: str, said: str, directory: bool, kind_words: str | None) -> None:
    query = f"look at {path} please"
    assert meaning_text(query) == f"look at {said} please"
    terms = query_terms(query)
    assert (tokenize("directory")[0] in terms) is directory
    assert tokenize("file")[0] in terms
    if kind_words is not None:
        assert all(t in terms for t in tokenize(kind_words))
    else:
        assert not any(t in terms for t in tokenize("markdown image"))
