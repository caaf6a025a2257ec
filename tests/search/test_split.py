"""A whole-task request splits into its steps; a single need stays whole."""

from __future__ import annotations

import pytest

from mcpproxy.search.split import MAX_STEPS, split_steps


def test_a_task_splits_at_sentence_ends_commas_and_step_words() -> None:
    steps = split_steps(
        "Read the sales data under /root/excel/sales.xlsx, plot it as a bar chart by month "
        "and save it in /root/figs/sale.png"
    )
    assert steps == [
        "Read the sales data under /root/excel/sales.xlsx",
        "plot it as a bar chart by month",
        "save it in /root/figs/sale.png",
    ]


def test_then_and_finally_start_new_steps() -> None:
    steps = split_steps("Fetch today's economic news then compare it with stock prices. Finally write a report")
    assert steps == ["Fetch today's economic news", "compare it with stock prices", "write a report"]


@pytest.mark.parametrize(
    "query", ["what time is it in Tokyo", "draw cowboy using canvas", "salt and pepper shakers", ""]
)
def test_a_single_need_does_not_split(query: str) -> None:
    assert split_steps(query) == []


def test_a_dot_inside_a_file_name_or_number_is_not_a_sentence_end() -> None:
    assert split_steps("Open report.final.pdf from /tmp/a.b and count 3.5 pages") == []


def test_pieces_too_short_to_be_steps_join_their_neighbours() -> None:
    steps = split_steps("Hi. Please convert the invoice to PDF, then email it to accounting")
    assert steps == ["Hi Please convert the invoice to PDF", "email it to accounting"]


def test_chinese_sentence_ends_split_too() -> None:
    assert len(split_steps("查询北京的天气。然后生成一个图表")) == 2


def test_a_pasted_document_yields_at_most_max_steps() -> None:
    text = ". ".join(f"step number {i} does something useful" for i in range(50))
    assert len(split_steps(text)) == MAX_STEPS
