"""Splitting answers into Discord messages: limits, break preference, code fences, rejoining."""

from __future__ import annotations

import random
import re
import string
from itertools import pairwise

import pytest

from bot.discord.streaming.split import (
    Part,
    closing_fence,
    open_fence_at_end,
    split_message,
    split_with_spans,
)


def shown(part: Part) -> str:
    """The part's text without the fence lines the splitter added."""
    text = part.text
    if part.reopened_fence is not None:
        head = part.reopened_fence + "\n"
        assert text.startswith(head)
        text = text[len(head) :]
    if part.closed_fence:
        text, _, closer = text.rpartition("\n")
        assert re.fullmatch(r"`{3,}|~{3,}", closer)
    return text


def rejoin(text: str, parts: list[Part]) -> str:
    """Put the dropped whitespace back between the shown slices: must give `text` again."""
    pieces = [text[: parts[0].start]]
    for i, part in enumerate(parts):
        following = parts[i + 1].start if i + 1 < len(parts) else len(text)
        pieces += [shown(part), text[part.end : following]]
    return "".join(pieces)


def check(text: str, limit: int, *, balanced: bool = True) -> list[Part]:
    """Split `text` and assert the whole contract of split_with_spans."""
    parts = split_with_spans(text, limit)
    assert [p.text for p in parts] == split_message(text, limit)
    if not text.strip():
        assert parts == []
        return parts
    assert parts
    for part in parts:
        assert 0 < len(part.text) <= limit
        assert part.text.strip()
        assert part.start < part.end
        assert shown(part) == text[part.start : part.end]
        if balanced:
            # Each message renders on its own: no block may stay open inside it.
            assert open_fence_at_end(part.text) is None
            # The added lines are exactly the fences the original has open at the cuts.
            assert part.reopened_fence == open_fence_at_end(text[: part.start])
            open_at_end = open_fence_at_end(text[: part.end])
            assert part.closed_fence == (open_at_end is not None)
            if open_at_end is not None:
                assert part.text.endswith("\n" + closing_fence(open_at_end))
    assert not text[: parts[0].start].strip()
    for part, following in pairwise(parts):
        assert part.end <= following.start
        assert not text[part.end : following.start].strip()
    assert not text[parts[-1].end :].strip()
    assert rejoin(text, parts) == text
    return parts


# --- sizes ---


def test_short_text_is_one_part_unchanged() -> None:
    text = "Hello there.\n\nA **short** answer with `code`."
    assert split_message(text) == [text]
    check(text, 2000)


def test_exactly_the_limit_is_one_part() -> None:
    text = "abcd " * 399 + "abcde"
    assert len(text) == 2000
    assert split_message(text) == [text]


def test_one_over_the_limit_is_two_parts() -> None:
    text = "abcd " * 399 + "abcdef"
    assert len(text) == 2001
    parts = check(text, 2000)
    assert [p.text for p in parts] == [text[:1994], "abcdef"]
    assert split_message("x" * 2001) == ["x" * 2000, "x"]


def test_surrounding_whitespace_is_dropped_but_first_indentation_kept() -> None:
    assert split_message("\n\n  hello\n\n") == ["  hello"]
    assert split_message("   \n\t\n") == []
    assert split_message("") == []


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_message("text", 0)


# --- break preference ---


def test_paragraph_break_beats_later_line_and_word_breaks() -> None:
    text = "a" * 20 + "\n\n" + "b" * 20 + "\n" + "c" * 20 + " " + "d" * 20 + " " + "e" * 60
    parts = check(text, 100)
    assert parts[0].text == "a" * 20


def test_line_break_beats_later_word_break() -> None:
    text = "b" * 30 + "\n" + "c" * 30 + " " + "d" * 30 + " " + "e" * 30
    assert split_message(text, 100)[0] == "b" * 30


def test_word_break_when_no_line_break_fits() -> None:
    text = "c" * 30 + " " + "d" * 30 + " " + "e" * 50
    assert split_message(text, 100) == ["c" * 30 + " " + "d" * 30, "e" * 50]


def test_word_longer_than_the_limit_is_hard_cut() -> None:
    assert split_message("x" * 3000) == ["x" * 2000, "x" * 1000]
    parts = split_message("some intro words " + "y" * 3000 + " outro")
    assert parts == ["some intro words", "y" * 2000, "y" * 1000 + " outro"]


def test_next_line_keeps_its_indentation() -> None:
    text = "- item one\n\n  - nested item two\n  - nested three"
    assert split_message(text, 40) == ["- item one", "  - nested item two\n  - nested three"]


def _words(rng: random.Random, limit: int) -> str:
    seps = [" ", " ", " ", " ", "  ", "\n", "\n", "\n\n", " \n", "\n \n", "\n  "]
    pieces = []
    for _ in range(rng.randint(0, 120)):
        long_word = rng.random() < 0.03
        size = rng.randint(limit // 2, limit * 3) if long_word else rng.randint(1, 12)
        pieces.append("".join(rng.choices(string.ascii_letters, k=size)))
        pieces.append(rng.choice(seps))
    return "".join(pieces)


def test_random_prose_never_cuts_inside_a_word_that_fits() -> None:
    rng = random.Random(20240601)
    for _ in range(400):
        limit = rng.randint(8, 150)
        text = _words(rng, limit)
        parts = check(text, limit)
        for part, following in pairwise(parts):
            gap = text[part.end : following.start]
            content = text[part.start : part.end].strip()
            if gap == "":
                # Cut inside a word: only when the word (after at most two spaces of
                # indentation) cannot fit, so the part holds nothing but that word.
                assert not re.search(r"\s", content)
                word = re.search(r"\S+", text[part.start :])
                assert word is not None and len(word[0]) > limit - 2
            elif "\n" not in gap:
                # A space was chosen: no line break fitted.
                assert "\n" not in content
            elif gap.count("\n") == 1:
                # A line break was chosen: no paragraph break fitted.
                assert not re.search(r"\n[^\S\n]*\n", content)


# --- code fences ---


def _prose(rng: random.Random, size: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))))
    return " ".join(words)


def test_code_block_crossing_a_split_is_closed_and_reopened() -> None:
    rng = random.Random(7)
    code_lines = []
    for i in range(60):
        code_lines.append(f"    value_{i} = compute({i}, 'x' * {i % 7})")
        if i % 8 == 7:
            code_lines.append("")
    code = "\n".join(code_lines)
    text = (
        _prose(rng, 900)
        + "\n\n```python\n"
        + code
        + "\n```\n\n"
        + _prose(rng, 1200)
        + "\n\n"
        + _prose(rng, 1000)
    )
    assert 4500 < len(text) < 5500
    assert 1400 < len(code) < 2600

    parts = check(text, 2000)
    texts = [p.text for p in parts]
    assert all(len(t) <= 2000 for t in texts)
    for t in texts:
        fence_lines = [line for line in t.split("\n") if line.startswith("```")]
        assert len(fence_lines) % 2 == 0
    assert parts[0].closed_fence and texts[0].endswith("\n```")
    assert parts[1].reopened_fence == "```python"
    assert texts[1].startswith("```python\n    value_")
    assert rejoin(text, parts) == text


def test_tilde_and_long_fences_close_with_their_own_run() -> None:
    body = "\n".join(f"line number {i}" for i in range(20))
    for fence, closer in [("~~~text", "~~~"), ("````md", "````"), ("  ```sh", "```")]:
        parts = check(f"{fence}\n{body}\n{closer}", 80)
        assert len(parts) > 1
        assert parts[0].text.endswith("\n" + closer)
        assert all(p.text.startswith(fence + "\n") for p in parts)


def test_part_never_ends_on_a_bare_opening_fence() -> None:
    text = "x" * 50 + "\n```python\n" + "y" * 100 + "\n```"
    parts = check(text, 70)
    assert parts[0].text == "x" * 50
    assert parts[1].text == "```python\n" + "y" * 56 + "\n```"


def test_code_indentation_survives_a_cut() -> None:
    code = "\n".join(f"        step_{i}()" for i in range(12))
    parts = check(f"```py\ndef f():\n{code}\n```", 100)
    assert len(parts) > 1
    assert all(p.text.split("\n")[1].startswith(("def", "        step_")) for p in parts)


def test_inline_backticks_are_not_fences() -> None:
    text = " ".join(["use ``` to start a block and ~~~ too"] * 20)
    parts = check(text, 50)
    assert all(p.reopened_fence is None and not p.closed_fence for p in parts)
    # Cutting before an inline ``` would make it open a block in the next message.
    assert not any(p.text.startswith(("```", "~~~")) for p in parts)


def test_block_left_open_at_the_end_is_closed() -> None:
    assert split_message("Here:\n```py\nprint(1)") == ["Here:\n```py\nprint(1)\n```"]


_FENCES = ["```", "```python", "```js", "~~~", "~~~text", "````md", "  ```sh"]
_CODE_WORDS = ["x", "=", "call()", "if", "return", "```", "~~~", "a```b", "```x```", "`"]


def _code_line(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return " " * rng.randint(0, 4)
    indent = " " * rng.choice([0, 0, 2, 4, 8])
    words = rng.choices(_CODE_WORDS, k=rng.randint(1, 12))
    if rng.random() < 0.05:
        words.append("q" * rng.randint(40, 120))
    return indent + " ".join(words)


def _fenced_doc(rng: random.Random) -> str:
    chunks = []
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.45:
            chunks.append(_prose(rng, rng.randint(1, 300)))
            continue
        fence = rng.choice(_FENCES)
        lines = [_code_line(rng) for _ in range(rng.randint(0, 25))]
        chunks.append("\n".join([fence, *lines, closing_fence(fence)]))
    if rng.random() < 0.2:
        chunks.append(rng.choice(_FENCES) + "\n" + _code_line(rng))  # still streaming
    doc = ""
    for chunk in chunks:
        doc += chunk + rng.choice(["\n", "\n\n", "\n\n\n", " \n"])
    return doc


def test_random_documents_with_fences_keep_every_part_balanced() -> None:
    rng = random.Random(99)
    for _ in range(300):
        limit = rng.randint(60, 400)
        check(_fenced_doc(rng), limit)


def test_tiny_limits_still_respect_length_and_rejoin() -> None:
    rng = random.Random(5)
    for _ in range(60):
        check(_fenced_doc(rng), rng.randint(1, 20), balanced=False)


# --- open_fence_at_end ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("just prose, no code", None),
        ("intro\n```js\nconsole.log(1)", "```js"),
        ("intro\n```js", "```js"),
        ("```js\nconsole.log(1)\n```", None),
        ("```js\nx\n```  ", None),
        ("```js\nx\n``` not a closer", "```js"),
        ("~~~\ncode", "~~~"),
        ("~~~py\ncode\n~~~", None),
        ("~~~\ncode\n```", "~~~"),
        ("~~~\n```py\n~~~", None),
        ("````\ncode\n```", "````"),
        ("```\ncode\n`````", None),
        ("   ```py\ncode", "   ```py"),
        ("    ```py\ncode", None),
        ("use ```inline``` here", None),
        ("text ```py\nmore", None),
        ("```inline code```\nmore", None),
        ("a\n```py\nb\n```\nc\n~~~\nd", "~~~"),
    ],
)
def test_open_fence_at_end(text: str, expected: str | None) -> None:
    assert open_fence_at_end(text) == expected


def test_closing_fence_repeats_the_opening_run() -> None:
    assert closing_fence("```python") == "```"
    assert closing_fence("  ~~~~ text") == "~~~~"
    assert closing_fence("````") == "````"
