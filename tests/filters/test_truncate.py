"""Large results are cut, the rest is kept in a bounded cache and read back page by page."""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types
import pytest

from mcpproxy.errors import CacheMiss
from mcpproxy.filters.truncate import Page, ResponseCache, truncate_result


class Clock:
    """A stand-in for ``time.monotonic`` that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("mcpproxy.filters.truncate.time.monotonic", fake)
    return fake


def text_result(*texts: str, structured: dict[str, Any] | None = None, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=t) for t in texts],
        structured_content=structured,
        is_error=is_error,
    )


def texts_of(result: types.CallToolResult) -> list[str]:
    return [b.text for b in result.content if isinstance(b, types.TextContent)]


def truncated_meta(result: types.CallToolResult) -> dict[str, Any]:
    assert result.meta is not None
    meta = result.meta["mcpproxy/truncated"]
    assert isinstance(meta, dict)
    return meta


def read_all(cache: ResponseCache, key: str, page_size: int, start: int = 0) -> str:
    parts: list[str] = []
    offset: int | None = start
    pages = 0
    while offset is not None:
        page = cache.read(key, offset=offset, limit=page_size)
        parts.append(page.text)
        offset = page.next_offset
        pages += 1
        assert pages < 10_000
    return "".join(parts)


# --- under the limit --------------------------------------------------------------------


def test_a_result_under_the_limit_is_returned_unchanged() -> None:
    cache = ResponseCache()
    result = text_result("hello", "world")
    assert truncate_result(result, tool="s:t", limit=100, cache=cache, keep_structured=False) is result


def test_a_result_of_exactly_the_limit_is_returned_unchanged() -> None:
    result = text_result("x" * 50)
    assert truncate_result(result, tool="s:t", limit=50, cache=ResponseCache(), keep_structured=False) is result


def test_a_limit_of_zero_disables_truncation() -> None:
    result = text_result("x" * 10_000)
    assert truncate_result(result, tool="s:t", limit=0, cache=ResponseCache(), keep_structured=False) is result


def test_a_result_with_structured_content_under_the_limit_keeps_it() -> None:
    result = text_result('{"a": 1}', structured={"a": 1})
    out = truncate_result(result, tool="s:t", limit=1000, cache=ResponseCache(), keep_structured=False)
    assert out is result


# --- over the limit ---------------------------------------------------------------------


def test_an_oversized_text_keeps_exactly_the_first_limit_characters() -> None:
    original = "".join(chr(ord("a") + i % 26) for i in range(1000))
    out = truncate_result(text_result(original), tool="s:t", limit=300, cache=ResponseCache(), keep_structured=False)
    shown, notice = texts_of(out)
    assert shown == original[:300]
    assert notice.startswith("[mcpproxy: result truncated: showing characters 0-300 of 1000.")


def test_the_notice_says_exactly_how_to_read_on() -> None:
    cache = ResponseCache()
    out = truncate_result(text_result("y" * 1000), tool="s:t", limit=300, cache=cache, keep_structured=False)
    notice = texts_of(out)[-1]
    match = re.search(r'read_cache\(key="([^"]+)", offset=(\d+), limit=(\d+)\)', notice)
    assert match is not None
    key, offset, limit = match.group(1), int(match.group(2)), int(match.group(3))
    assert (offset, limit) == (300, 300)
    assert truncated_meta(out) == {"key": key, "total": 1000, "shown": 300}
    page = cache.read(key, offset=offset, limit=limit)
    assert page.text == "y" * 300
    assert page.tool == "s:t"
    assert page.total == 1000


def test_several_text_blocks_are_joined_with_newlines_before_cutting() -> None:
    cache = ResponseCache()
    out = truncate_result(text_result("a" * 40, "b" * 40), tool="s:t", limit=50, cache=cache, keep_structured=False)
    assert texts_of(out)[0] == "a" * 40 + "\n" + "b" * 9
    key = truncated_meta(out)["key"]
    assert read_all(cache, key, 7) == "a" * 40 + "\n" + "b" * 40


def test_paging_from_the_notice_offset_reassembles_the_original_exactly() -> None:
    original = "".join(f"line {i}: é ß 漢字 🙂 \u0301 end\n" for i in range(500))
    cache = ResponseCache()
    out = truncate_result(text_result(original), tool="s:t", limit=1234, cache=cache, keep_structured=False)
    key = truncated_meta(out)["key"]
    shown = texts_of(out)[0]
    assert shown + read_all(cache, key, 997, start=1234) == original


@pytest.mark.parametrize("page_size", [1, 3, 1000, 10**6])
def test_paging_with_any_page_size_reassembles_multibyte_text(page_size: int) -> None:
    original = "🙂漢字é" * 700 + "tail"
    cache = ResponseCache()
    out = truncate_result(text_result(original), tool="s:t", limit=100, cache=cache, keep_structured=False)
    assert read_all(cache, truncated_meta(out)["key"], page_size) == original


def test_the_last_page_has_no_next_offset() -> None:
    cache = ResponseCache()
    key = cache.put("s:t", "0123456789")
    first = cache.read(key, offset=0, limit=6)
    assert (first.text, first.next_offset) == ("012345", 6)
    last = cache.read(key, offset=6, limit=6)
    assert (last.text, last.next_offset) == ("6789", None)
    assert last.to_dict() == {
        "key": key,
        "tool": "s:t",
        "offset": 6,
        "limit": 6,
        "total": 10,
        "next_offset": None,
        "content": "6789",
    }


def test_reading_past_the_end_gives_an_empty_last_page() -> None:
    cache = ResponseCache()
    key = cache.put("s:t", "abc")
    page = cache.read(key, offset=99, limit=5)
    assert page == Page(key, "s:t", 99, 5, 3, "")
    assert page.next_offset is None


def test_a_negative_offset_or_a_zero_limit_is_clamped() -> None:
    cache = ResponseCache()
    key = cache.put("s:t", "abc")
    page = cache.read(key, offset=-5, limit=0)
    assert (page.offset, page.limit, page.text) == (0, 1, "a")


def test_image_blocks_are_kept_after_the_cut_text() -> None:
    image = types.ImageContent(type="image", data="aGVsbG8=", mime_type="image/png")
    result = types.CallToolResult(content=[types.TextContent(type="text", text="z" * 500), image])
    out = truncate_result(result, tool="s:t", limit=100, cache=ResponseCache(), keep_structured=False)
    assert out.content[0] == types.TextContent(type="text", text="z" * 100)
    assert out.content[1] == image
    assert isinstance(out.content[2], types.TextContent)
    assert out.content[2].text.startswith("[mcpproxy: result truncated")


def test_an_image_only_result_is_never_cut() -> None:
    image = types.ImageContent(type="image", data="A" * 10_000, mime_type="image/png")
    result = types.CallToolResult(content=[image])
    assert truncate_result(result, tool="s:t", limit=10, cache=ResponseCache(), keep_structured=False) is result


def test_the_error_flag_and_existing_meta_survive_truncation() -> None:
    result = types.CallToolResult(
        content=[types.TextContent(type="text", text="e" * 500)], is_error=True, _meta={"trace": "abc"}
    )
    out = truncate_result(result, tool="s:t", limit=100, cache=ResponseCache(), keep_structured=False)
    assert out.is_error is True
    assert out.meta is not None
    assert out.meta["trace"] == "abc"
    assert "mcpproxy/truncated" in out.meta
    assert result.meta == {"trace": "abc"}


# --- structured content -----------------------------------------------------------------


def test_structured_content_is_dropped_with_the_text_when_not_kept() -> None:
    data = {"rows": list(range(200))}
    result = text_result(json.dumps(data), structured=data)
    out = truncate_result(result, tool="s:t", limit=100, cache=ResponseCache(), keep_structured=False)
    assert out.structured_content is None
    assert texts_of(out)[0] == json.dumps(data)[:100]


def test_structured_content_is_kept_when_the_tool_declares_an_output_schema() -> None:
    data = {"rows": list(range(200))}
    result = text_result(json.dumps(data), structured=data)
    out = truncate_result(result, tool="s:t", limit=100, cache=ResponseCache(), keep_structured=True)
    assert out.structured_content == data
    assert texts_of(out)[0] == json.dumps(data)[:100]


def test_structured_only_content_is_rendered_as_text_and_cut_when_not_kept() -> None:
    data = {"rows": [{"id": i, "name": "ü" * 3} for i in range(100)]}
    cache = ResponseCache()
    result = types.CallToolResult(content=[], structured_content=data)
    out = truncate_result(result, tool="s:t", limit=200, cache=cache, keep_structured=False)
    assert out.structured_content is None
    full = read_all(cache, truncated_meta(out)["key"], 333)
    assert json.loads(full) == data
    assert texts_of(out)[0] == full[:200]


def test_structured_only_content_is_left_alone_when_kept() -> None:
    data = {"rows": list(range(500))}
    result = types.CallToolResult(content=[], structured_content=data)
    assert truncate_result(result, tool="s:t", limit=10, cache=ResponseCache(), keep_structured=True) is result


def test_a_short_text_with_large_structured_content_is_left_alone_when_kept() -> None:
    data = {"rows": list(range(500))}
    result = text_result("500 rows", structured=data)
    assert truncate_result(result, tool="s:t", limit=100, cache=ResponseCache(), keep_structured=True) is result


# --- the cache --------------------------------------------------------------------------


def test_an_unknown_key_is_a_cache_miss_with_a_hint() -> None:
    with pytest.raises(CacheMiss) as info:
        ResponseCache().read("nope")
    assert info.value.message == "no cached result with key 'nope'"
    assert info.value.hint is not None and "call the tool again" in info.value.hint
    assert info.value.data == {"key": "nope"}


def test_keys_are_distinct_and_not_guessable_sequence_numbers() -> None:
    cache = ResponseCache()
    keys = {cache.put("s:t", "x") for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) >= 16 for k in keys)


def test_the_oldest_entries_are_evicted_when_the_cache_is_full(clock: Clock) -> None:
    cache = ResponseCache(ttl=3600, max_chars=10)
    first = cache.put("s:t", "aaaa")
    second = cache.put("s:t", "bbbb")
    third = cache.put("s:t", "cccc")
    with pytest.raises(CacheMiss):
        cache.read(first)
    assert cache.read(second).text == "bbbb"
    assert cache.read(third).text == "cccc"


def test_an_entry_that_fits_exactly_is_kept(clock: Clock) -> None:
    cache = ResponseCache(ttl=3600, max_chars=8)
    first = cache.put("s:t", "aaaa")
    second = cache.put("s:t", "bbbb")
    assert cache.read(first).text == "aaaa"
    assert cache.read(second).text == "bbbb"


def test_eviction_frees_room_for_later_entries(clock: Clock) -> None:
    cache = ResponseCache(ttl=3600, max_chars=10)
    keys = [cache.put("s:t", str(i) * 5) for i in range(6)]
    for key in keys[:4]:
        with pytest.raises(CacheMiss):
            cache.read(key)
    assert [cache.read(key).text for key in keys[4:]] == ["44444", "55555"]


def test_an_entry_expires_after_the_ttl(clock: Clock) -> None:
    cache = ResponseCache(ttl=60, max_chars=1000)
    key = cache.put("s:t", "data")
    clock.now += 60
    assert cache.read(key).text == "data"
    clock.now += 0.001
    with pytest.raises(CacheMiss):
        cache.read(key)


def test_expiry_removes_only_entries_older_than_the_ttl(clock: Clock) -> None:
    cache = ResponseCache(ttl=60, max_chars=1000)
    old = cache.put("s:t", "old")
    clock.now += 30
    young = cache.put("s:t", "young")
    clock.now += 31
    with pytest.raises(CacheMiss):
        cache.read(old)
    assert cache.read(young).text == "young"


def test_expired_entries_no_longer_count_against_the_size_bound(clock: Clock) -> None:
    cache = ResponseCache(ttl=10, max_chars=10)
    cache.put("s:t", "aaaaaaaa")
    clock.now += 11
    fresh = cache.put("s:t", "bbbbbbbb")
    other = cache.put("s:t", "cc")
    assert cache.read(fresh).text == "bbbbbbbb"
    assert cache.read(other).text == "cc"


def test_a_truncated_result_stays_readable_until_its_ttl(clock: Clock) -> None:
    cache = ResponseCache(ttl=1800, max_chars=10_000)
    out = truncate_result(text_result("q" * 500), tool="s:t", limit=100, cache=cache, keep_structured=False)
    key = truncated_meta(out)["key"]
    clock.now += 1799
    assert read_all(cache, key, 100) == "q" * 500
    clock.now += 2
    with pytest.raises(CacheMiss):
        cache.read(key)
