"""The README's configuration reference is generated from the settings table, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

from mcpproxy.config.fields import SETTING_FIELDS, reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_setting_exactly_as_the_settings_table_says() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block == reference_markdown()
    for row in SETTING_FIELDS:
        assert f"`{row.env}`" in block


def test_the_readme_names_the_two_set_up_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "./scripts/serve.sh" in text and "./scripts/test.sh" in text
