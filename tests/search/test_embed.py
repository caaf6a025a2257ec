"""The embeddings extra for real: the shipped model, its tokenizer, and what happens without it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpproxy.search.base import ToolDoc
from mcpproxy.search.embed import EXTRA_HINT, EmbeddingsUnavailable, MiniLMEmbedder, WordPiece, load_vocab
from mcpproxy.search.engine import ToolSearch


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_the_tokenizer_gives_the_reference_ids_of_the_model() -> None:
    # Ids from the reference BertTokenizer of all-MiniLM-L6-v2 for the same text.
    wordpiece = WordPiece(load_vocab())
    assert wordpiece.encode("Café naïve résumé, getHTTPResponse!") == [
        101, 7668, 15743, 13746, 1010, 2131, 11039, 25856, 6072, 26029, 3366, 999, 102
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_the_ascii_shortcut_splits_words_as_the_reference_way_does(text: str) -> None:
    assert WordPiece.words(text) == WordPiece.words_unicode(text)


@pytest.mark.parametrize(
    "text",
    [
        "Read the sales data under /root/excel/Local_Electronic_Sales.xlsx, plot it as a bar chart",
        "getHTTPResponse\tfs.read_file(path='a b')\r\n\x00\x1f\x7f[x]{y}~`^|@#$%&*+=<>?;:",
        "  multiple   spaces\x0b\x0cand\x1cseparators  ",
    ],
)
def test_the_ascii_shortcut_on_request_like_texts(text: str) -> None:
    assert WordPiece.words(text) == WordPiece.words_unicode(text)


def test_long_texts_are_cut_to_the_token_budget() -> None:
    ids = WordPiece(load_vocab()).encode("word " * 500, max_tokens=16)
    assert len(ids) == 16
    assert ids[0] == 101 and ids[-1] == 102


def test_vectors_are_unit_length_and_close_for_close_meanings(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["what time is it in Tokyo", "get the current time in a timezone", "delete a file"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_the_same_text_always_gets_the_same_vector(embedder: MiniLMEmbedder) -> None:
    alone = embedder.embed(["plot a bar chart"])[0]
    batched = embedder.embed(["a much longer text about something else entirely", "plot a bar chart"])[1]
    assert np.allclose(alone, batched, atol=1e-5)


def test_hybrid_search_finds_a_tool_that_shares_no_word_with_the_request(embedder: MiniLMEmbedder) -> None:
    tools = [
        ToolDoc("met", "search-museum-objects", "Search the Metropolitan Museum of Art collection."),
        ToolDoc("files", "delete_file", "Delete a file from the disk."),
        ToolDoc("weather", "get_forecast", "Weather forecast for a city."),
    ]
    lexical, hybrid = ToolSearch(), ToolSearch(embedder)
    for index in (lexical, hybrid):
        for tool in tools:
            index.replace_server(tool.server, [tool])
    for tool in tools:
        hybrid.embed_server(tool.server)
    request = ["background of the famous painting Corridor in the Asylum"]
    assert "met:search-museum-objects" not in [m.key for m in lexical.find(request, 3)]
    assert hybrid.find(request, 1)[0].key == "met:search-museum-objects"


def test_hybrid_without_the_extra_fails_with_a_message_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EmbeddingsUnavailable) as info:
        MiniLMEmbedder()
    assert "embeddings extra" in info.value.message
    assert info.value.hint == EXTRA_HINT
    assert "mcpproxy[embeddings]" in EXTRA_HINT


def test_hybrid_search_returns_nothing_for_a_request_unrelated_to_every_tool(embedder: MiniLMEmbedder) -> None:
    index = ToolSearch(embedder)
    index.replace_server("weather", [ToolDoc("weather", "get_forecast", "Weather forecast for a city.")])
    index.embed_server("weather")
    assert index.find(["qqq zzz xxyy"], 5) == []
