"""Query expansion: general rules that add the words tool descriptions use.

A request and the tool that serves it often share no word: "save it to /root/notes/x.md" and
``write_file`` ("Create a new file..."), "plot the sales" and ``generate_bar_chart``. Three kinds of
rule bridge the most common gaps; each adds terms to the query, never removes any, and none is a
list of known queries, so they carry over to requests the index has never seen:

- **The present.** People ask for the present state of something without saying "current" ("what
  time is it in Tokyo", "the weather right now"); tools say "get current time". Such questions gain
  ``current``.
- **Values that name what a tool works on.** A file path in a request means a file tool: it gains
  ``file`` and ``path``, the kind of file its extension names (``.md`` markdown, ``.docx`` word
  document, ``.xlsx`` excel spreadsheet, ``.png`` image...), ``directory`` for a folder (a path
  without an extension, or ending with a separator), and ``write`` when the request says to save,
  store or export. A URL gains ``url``.
- **Synonyms.** A short thesaurus of the vocabulary tools are described with (save/write/store,
  picture/image/photo, plot/chart/graph, folder/directory...): each word of a group brings the others.

Expansion terms weigh ``EXPANSION_WEIGHT`` (synonyms) or ``VALUE_WEIGHT`` (terms read from paths and
URLs) of an original term in BM25, so they break ties and bridge gaps without outvoting what the
user actually wrote.
"""

from __future__ import annotations

import re

from mcpproxy.search.tokenize import tokenize

__all__ = ["EXPANSION_WEIGHT", "SYNONYM_GROUPS", "VALUE_WEIGHT", "meaning_text", "query_terms", "weighted_terms"]

EXPANSION_WEIGHT = 0.5
"""Weight of a synonym relative to a word of the query."""
VALUE_WEIGHT = 1.0
"""Weight of a term read from a path or URL in the query."""

_PRESENT_QUESTION = re.compile(r"\bwhat(?:'s|\s+is)?\s+(?:the\s+)?\w+\s+(?:is\s+it|it\s+is)\b", re.IGNORECASE)
"""``what time is it``, ``what day is it``, ``what's the date it is``: a question about now."""

_PRESENT_WORDS = frozenset({"now", "currently", "presently", "nowadays"})
"""Words that mean "at present"; tools say "current". ("today" names a date range, which tools
call "today" themselves, so it is not expanded.)"""

_PRESENT_PHRASES = re.compile(r"\b(?:right now|at the moment|at present|as of now)\b", re.IGNORECASE)

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("save", "write", "store"),
    ("create", "make", "generate"),
    ("delete", "remove", "erase"),
    ("search", "find", "lookup"),
    ("fetch", "retrieve", "download"),
    ("picture", "image", "photo"),
    ("chart", "plot", "graph", "visualize", "diagram"),
    ("presentation", "slide", "powerpoint", "ppt", "pptx", "deck"),
    ("spreadsheet", "excel", "xlsx", "workbook"),
    ("document", "docx"),
    ("directory", "folder"),
    ("news", "headline"),
    ("trending", "trend", "popular", "hot", "ranking"),
    ("weather", "forecast"),
    ("stock", "share", "ticker", "equity"),
    ("email", "mail"),
    ("url", "link", "website", "webpage"),
    ("summary", "summarize", "overview"),
    ("translate", "translation"),
    ("calculate", "compute", "calculation", "arithmetic"),
    ("calendar", "schedule"),
    ("recipe", "dish", "meal", "cook"),
    ("crypto", "cryptocurrency"),
    ("convert", "transform"),
    ("route", "directions", "commute", "navigate"),
    ("script", "code"),
)
"""Words that tools and requests use for the same thing. Each word of a group brings the others.
Kept to unambiguous, domain-neutral tool vocabulary: a word with two common senses ("word" the
document and "word" the unit) is left out."""

_EXTENSION_WORDS: dict[str, str] = {
    "md": "markdown",
    "markdown": "markdown",
    "txt": "text",
    "doc": "word document",
    "docx": "word document",
    "odt": "document",
    "ppt": "powerpoint presentation",
    "pptx": "powerpoint presentation",
    "xls": "excel spreadsheet",
    "xlsx": "excel spreadsheet",
    "csv": "csv spreadsheet",
    "pdf": "pdf",
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "gif": "image",
    "svg": "image svg",
    "webp": "image",
    "html": "html page",
    "htm": "html page",
    "json": "json",
    "yaml": "yaml",
    "yml": "yaml",
    "py": "python code",
    "js": "javascript code",
    "ts": "typescript code",
    "mp3": "audio",
    "wav": "audio",
    "mp4": "video",
}
"""File extensions and the words tools use for such files."""

_PATH = re.compile(
    r"(?<![\w/:.])(?:~|\.{1,2})?(?:/[\w.~@+-]+)+/?(?<!\.)"
    r"|(?<![\w])[A-Za-z]:\\(?:[\w.~-]+(?: [\w.~-]+)*\\)*[\w.~-]*(?<!\.)"
)
"""A Unix path with at least one ``/segment`` (``/root/a.md``, ``~/x``, ``./y``), or a Windows path
(``C:\\Program Files\\app\\x.exe``: a folder's name may hold spaces, the last part may not, so the
words after a path are not read as part of it). A path never ends with a dot: in "save it to
/root/a.md." the dot ends the sentence, and read into the path it would hide the extension."""
_URL = re.compile(r"\b(?:https?|ftp)://\S+", re.IGNORECASE)
_SAVE_VERBS = re.compile(r"\b(?:save[sd]?|saving|store[sd]?|storing|export(?:s|ed|ing)?|writ(?:e|es|ing|ten))\b", re.I)

_SYNONYMS: dict[str, tuple[str, ...]] = {}
for _group in SYNONYM_GROUPS:
    _terms = [term for word in _group for term in tokenize(word)]
    for _term in _terms:
        _SYNONYMS.setdefault(_term, tuple(t for t in _terms if t != _term))


def _path_kind(path: str) -> tuple[str, str]:
    """What a path in a request names, read the same way by both channels.

    Returns:
        ``("folder", "")`` for a path that ends with a separator or whose last part has no dot;
        ``("file", extension)`` for a last part with a name and an extension (``q3.docx``);
        ``("path", "")`` for a last part that is a dot name (``.config``, ``.bashrc``), which
        names a folder as often as a file.
    """
    if path.endswith(("/", "\\")):
        return "folder", ""
    leaf = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = leaf.rpartition(".")
    if not dot:
        return "folder", ""
    return ("file", extension.lower()) if stem and extension else ("path", "")


_SAID = {"file": " a file ", "folder": " a folder ", "path": " a path "}


def meaning_text(query: str) -> str:
    """The request as the meaning channel embeds it: each URL, file path or folder path replaced by
    what it is ("a web page", "a file", "a folder"; "a path" for a dot name such as ``~/.config``),
    read as the words channel reads it (``_path_kind``).

    The words channel reads these values (``weighted_terms``); to a sentence model their characters
    are a dozen word pieces of noise each (``/root/excel/Local_Electronic_Sales.xlsx`` is 14), and
    embedding time grows with the word pieces.

    Args:
        query: A user's request.

    Returns:
        The request with its values replaced (the request itself when it has none).
    """

    def value(match: re.Match[str]) -> str:
        path = match.group(0)
        return _SAID[_path_kind(path)[0]] if path.strip("/.~") else path

    return _PATH.sub(value, _URL.sub(" a web page ", query))


def query_terms(query: str) -> list[str]:
    """The query's terms (see ``tokenize``) plus every expansion above, without duplicates."""
    return [term for term, _ in weighted_terms(query)]


def weighted_terms(query: str) -> list[tuple[str, float]]:
    """The query's terms with weight 1, then the expansions with their weights, without duplicates.

    Args:
        query: A user's request.

    Returns:
        ``(term, weight)`` pairs in query order, expansions after the words they come from.
    """
    urls = _URL.findall(query)
    text = _URL.sub(" ", query)
    paths = [p for p in _PATH.findall(text) if p.strip("/.~")]
    out: dict[str, float] = dict.fromkeys(tokenize(query), 1.0)

    def add(words: str, weight: float) -> None:
        for term in tokenize(words):
            if out.get(term, 0.0) < weight:
                out[term] = weight

    words = {w.lower() for w in re.findall(r"[A-Za-z]+", query)}
    if _PRESENT_QUESTION.search(query) or _PRESENT_PHRASES.search(query) or words & _PRESENT_WORDS:
        add("current", 1.0)
    for path in paths:
        add("file path", VALUE_WEIGHT)
        kind, extension = _path_kind(path)
        if kind == "folder":
            add("directory", VALUE_WEIGHT)
        elif extension in _EXTENSION_WORDS:
            add(_EXTENSION_WORDS[extension], VALUE_WEIGHT)
    if paths and _SAVE_VERBS.search(text):
        add("write", VALUE_WEIGHT)
    if urls:
        add("url", VALUE_WEIGHT)
    for term in [t for t, w in out.items() if w == 1.0]:
        for synonym in _SYNONYMS.get(term, ()):
            if synonym not in out:
                out[synonym] = EXPANSION_WEIGHT
    return list(out.items())
