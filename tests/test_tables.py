"""Markdown tables in answers, shown as Discord can show them: aligned in a code block, or as
one short block per row when too wide for a phone."""

from __future__ import annotations

import re

from bot.discord.streaming.split import split_message
from bot.discord.streaming.tables import render_tables

FENCE = "```"


def block_lines(rendered: str) -> list[str]:
    """The lines inside the (single) code block of `rendered`."""
    inside = re.search(r"```\n(.*?)\n```", rendered, re.S)
    assert inside, rendered
    return inside.group(1).split("\n")


def test_a_table_is_aligned_in_a_code_block_without_its_separator_row() -> None:
    text = "Prices:\n\n| Fruit | Price |\n|:---|---:|\n| apple | 1.5 |\n| kiwi | 12 |\n\nCheap."
    rendered = render_tables(text)
    assert rendered.startswith("Prices:\n\n```\n") and rendered.endswith("\n```\n\nCheap.")
    assert block_lines(rendered) == [
        "Fruit | Price",
        "------+------",
        "apple |   1.5",
        "kiwi  |    12",
    ]
    assert "|:---|" not in rendered and "---:" not in rendered


def test_columns_align_by_display_cells_with_wide_characters_and_emoji() -> None:
    text = "| City | Mood |\n|---|---|\n| 東京 | 😀 |\n| Paris | ok |"
    lines = block_lines(render_tables(text))
    assert lines[2] == "東京  | 😀"  # 東京 is 4 cells wide, 😀 is 2: padded like "Paris"
    assert lines[3] == "Paris | ok"


def test_inline_code_and_escaped_pipes_in_cells() -> None:
    text = "| Flag | Means |\n|---|---|\n| `-v` | verbose |\n| a \\| b | either |"
    lines = block_lines(render_tables(text))
    assert lines == ["Flag  | Means", "------+--------", "-v    | verbose", "a | b | either"]


def test_a_wide_table_becomes_one_block_per_row() -> None:
    text = (
        "| Name | Role | Notes |\n|---|---|---|\n"
        "| Alice | Maintainer | Reviews every pull request touching the renderer |\n"
        "| Bob | Contributor | Wrote the `split` module |\n"
    )
    rendered = render_tables(text)
    assert FENCE not in rendered and "|" not in rendered
    assert rendered.strip().split("\n\n") == [
        "Name: Alice\nRole: Maintainer\nNotes: Reviews every pull request touching the renderer",
        "Name: Bob\nRole: Contributor\nNotes: Wrote the `split` module",
    ]


def test_tables_in_code_fences_and_plain_text_are_left_alone() -> None:
    text = "a | b\nno table here\n\n```md\n| x | y |\n|---|---|\n| 1 | 2 |\n```\ndone"
    assert render_tables(text) == text


def test_a_streaming_table_never_shows_its_raw_separator_row() -> None:
    full = "Here:\n| Key | Value |\n|-----|-------|\n| a | 1 |\n| bb | 22 |"
    for end in range(len(full) + 1):
        shown = render_tables(full[:end])
        assert "|---" not in shown and "|--" not in shown, (end, shown)
    assert block_lines(render_tables(full)) == ["Key | Value", "----+------", "a   | 1", "bb  | 22"]


def test_a_long_table_is_split_between_rows_and_each_part_is_a_code_block() -> None:
    rows = "".join(f"| row-{n:03} | {'x' * (n % 17)} |\n" for n in range(150))
    rendered = render_tables(f"Intro.\n\n| Id | Data |\n|---|---|\n{rows}\nOutro.")
    all_rows = set(block_lines(rendered))
    parts = split_message(rendered)
    assert len(parts) > 1
    for part in parts:
        assert part.count(FENCE) % 2 == 0, part
        for line in part.split("\n"):
            if line and line != FENCE and line not in ("Intro.", "Outro."):
                assert line in all_rows, line  # a whole row, never half of one


def test_a_long_wide_table_is_split_between_row_blocks() -> None:
    long = "a fairly long description of this particular row"
    rows = "".join(f"| item-{n:03} | {long} | {n} |\n" for n in range(120))
    rendered = render_tables(f"| Name | Description | Count |\n|---|---|---|\n{rows}")
    blocks = set(rendered.strip().split("\n\n"))
    for part in split_message(rendered):
        for block in part.split("\n\n"):
            assert block in blocks, block
