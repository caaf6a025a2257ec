"""Behaviour of the search tokeniser: identifier splitting, stop words, stemming, CJK."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpproxy.search.tokenize import stem, tokenize


def test_camel_case_names_split_into_words_and_keep_the_joined_form() -> None:
    assert tokenize("getCurrentTime") == ["getcurrenttime", "get", "current", "time"]


def test_acronyms_inside_camel_case_stay_whole() -> None:
    assert tokenize("parseHTTPResponse") == ["parsehttpresponse", "parse", "http", "response"]


def test_snake_kebab_dotted_and_slashed_names_split_on_their_separators() -> None:
    assert tokenize("read_file list-directory fs.write_file path/to/doc") == [
        "read",
        "file",
        "list",
        "directori",
        "fs",
        "write",
        "file",
        "path",
        "doc",
    ]


def test_letter_digit_boundaries_split_but_the_whole_token_is_kept() -> None:
    assert tokenize("base64") == ["base64", "base", "64"]


def test_words_are_lower_cased_and_stop_words_dropped() -> None:
    assert tokenize("What is THE Weather in Paris") == ["weather", "pari"]


def test_request_phrasing_is_not_content() -> None:
    assert tokenize("please help me, I need to know") == []


def test_plurals_and_verb_endings_fold_to_one_stem() -> None:
    assert stem("files") == stem("file")
    assert stem("queries") == stem("query")
    assert stem("running") == stem("run")
    assert stem("created") == stem("create")
    assert stem("making") == stem("make")


def test_news_is_not_folded_into_new() -> None:
    assert stem("news") != stem("new")


def test_cjk_runs_become_character_bigrams() -> None:
    assert tokenize("搜索关键词") == ["搜索", "索关", "关键", "键词"]


def test_a_lone_cjk_character_is_kept() -> None:
    assert tokenize("日 weather") == ["日", "weather"]


def test_full_width_letters_read_as_ascii() -> None:
    assert tokenize("ＦＩＬＥ") == ["file"]


def test_base64_blobs_in_a_question_are_ignored() -> None:
    blob = base64.b64encode(bytes(range(256)) * 2).decode()
    assert tokenize(f"what does this image mean {blob}") == ["image", "mean"]


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_any_text_gives_non_empty_lower_case_terms(text: str) -> None:
    for term in tokenize(text):
        assert term
        assert term == term.lower()
        assert not any(ch.isspace() for ch in term)
