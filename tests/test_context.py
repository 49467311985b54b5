"""Fitting history into a token budget, tool-call assembly, and the reasoning display."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from bot.backends.chat_round import ChatRound
from bot.backends.context import SHORTENED, Trimmed, budget_for, estimate_tokens, fit
from bot.core.events import ReasoningDelta, TextDelta
from bot.discord.streaming.reasoning import ReasoningView


def turn(n: int, tool_output: str = "") -> list[dict]:
    items: list[dict] = [{"role": "user", "content": f"question {n}"}]
    if tool_output:
        call = {"id": f"c{n}", "type": "function", "function": {"name": "t", "arguments": "{}"}}
        items += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{n}", "content": tool_output},
        ]
    return [*items, {"role": "assistant", "content": f"answer {n}"}]


def test_within_budget_nothing_changes() -> None:
    items = turn(1) + turn(2)
    assert fit(items, None, 2) == (items, Trimmed())
    assert fit(items, 10_000, 2) == (items, Trimmed())


def test_old_tool_outputs_are_shortened_before_turns_are_dropped() -> None:
    items = turn(1, "x" * 20_000) + turn(2) + turn(3)
    budget = estimate_tokens(items) - 1000
    fitted, trimmed = fit(items, budget, 2)
    assert trimmed == Trimmed(dropped=0, shortened=1)
    assert len(fitted) == len(items)
    assert fitted[2]["content"].endswith(SHORTENED) and len(fitted[2]["content"]) < 500
    assert items[2]["content"] == "x" * 20_000  # the input is not changed


def test_oldest_turns_go_first_and_a_call_keeps_its_result() -> None:
    items = turn(1, "a" * 300) + turn(2, "b" * 300) + turn(3)
    current = 2  # the newest turn's user message and answer
    fitted, trimmed = fit(items, estimate_tokens(turn(2, "b" * 300) + turn(3)), current)
    assert trimmed.dropped == 4
    assert fitted[0] == {"role": "user", "content": "question 2"}
    ids = [m["tool_call_id"] for m in fitted if m["role"] == "tool"]
    calls = [c["id"] for m in fitted for c in m.get("tool_calls", [])]
    assert ids == calls == ["c2"]
    assert "left out 4 earlier messages" in trimmed.describe()


def test_one_huge_turn_shortens_its_own_tool_outputs_last() -> None:
    items = turn(1) + turn(2, "z" * 50_000)
    fitted, trimmed = fit(items, 500, 4)
    assert trimmed.dropped == 2 and trimmed.shortened == 1
    assert fitted[0]["content"] == "question 2"
    assert estimate_tokens(fitted) <= 500


def test_responses_function_call_outputs_are_shortened_too() -> None:
    items = [
        {"role": "user", "content": "q1"},
        {"type": "function_call", "call_id": "c", "name": "t", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "o" * 5000},
        {"role": "user", "content": "q2"},
    ]
    fitted, trimmed = fit(items, estimate_tokens(items) - 500, 1)
    assert trimmed.shortened == 1 and fitted[2]["output"].endswith(SHORTENED)


def test_budget_leaves_room_for_the_answer() -> None:
    assert budget_for(None, {}) is None
    assert budget_for(128_000, {}) == 128_000 - 4096
    assert budget_for(8000, {"max_tokens": 1000}) == 7000
    assert budget_for(8000, {}) == 6000  # never more than a quarter kept back


def fragment(index: int | None, call_id: str | None, name: str | None, args: str) -> object:
    return SimpleNamespace(
        index=index, id=call_id, function=SimpleNamespace(name=name, arguments=args)
    )


def test_tool_calls_are_keyed_by_id_and_index() -> None:
    result = ChatRound()
    for piece in [
        fragment(0, "call_a", "left", ""),
        fragment(0, None, None, '{"x": '),
        fragment(0, None, None, "1}"),
        fragment(0, "call_b", "right", ""),  # a new id at a used index: a new call
        fragment(None, None, None, '{"y": 2}'),  # no index, no id: joins the open call
        fragment(1, None, "third", '{"z": 3}'),  # an id-less call at a new index
    ]:
        result.add_call_fragment(piece)
    result.finalize()
    calls = [(c.name, json.loads(c.arguments)) for c in result.tool_calls()]
    assert calls == [("left", {"x": 1}), ("right", {"y": 2}), ("third", {"z": 3})]
    ids = [c.call_id for c in result.tool_calls()]
    assert ids[:2] == ["call_a", "call_b"] and ids[2].startswith("call_")


def test_thinking_blocks_are_joined_with_their_signature() -> None:
    result = ChatRound()
    for block in [
        {"type": "thinking", "thinking": "Let me "},
        {"type": "thinking", "thinking": "see."},
        {"type": "thinking", "thinking": "", "signature": "s1"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]:
        result.add_thinking(block)
    assert result.thinking == [
        {"type": "thinking", "thinking": "Let me see.", "signature": "s1"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    assert result.assistant_message() is None  # nothing said, nothing called: not stored


def test_reasoning_view_modes() -> None:
    now = [100.0]
    status = ReasoningView("status", clock=lambda: now[0])
    assert status.apply(ReasoningDelta(text="secret plan"))
    now[0] = 112.4
    assert status.frame("", final=False) == "-# thinking… 12 s"
    status.apply(TextDelta(text="Hi"))
    assert status.frame("Hi", final=False) == "Hi"
    assert not status.apply(ReasoningDelta(text="more"))  # the answer replaced the status line

    summary = ReasoningView("summary")
    summary.apply(ReasoningDelta(text="First I look.\nThen I answer."))
    assert summary.frame("Hi", final=True) == "-# First I look.\n-# Then I answer.\nHi"

    pages = ReasoningView("summary")
    pages.apply(ReasoningDelta(text="word " * 2000))
    framed = pages.frame("Hi", final=True)
    assert len(framed) < 1400 and framed.endswith("…\nHi")

    hide = ReasoningView("hide")
    assert not hide.apply(ReasoningDelta(text="x"))
    assert hide.frame("", final=False) == ""


async def test_a_silent_reasoner_still_gets_its_seconds_counted() -> None:
    wakes: list[int] = []
    done = asyncio.Event()

    def wake() -> None:
        wakes.append(1)
        if len(wakes) >= 3:
            done.set()

    view = ReasoningView("status", wake=wake, tick_s=0.01)
    view.apply(ReasoningDelta(text=""))  # one event, then nothing for a long time
    await asyncio.wait_for(done.wait(), 5)
    view.frame("answer", final=True)
    count = len(wakes)
    await asyncio.sleep(0.05)
    assert len(wakes) == count  # the final frame stopped the ticking


def test_image_urls_in_older_stored_history_become_notes() -> None:
    from bot.backends.history import without_image_urls

    cdn = "https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3"
    stored = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": cdn}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": cdn},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
        },
        {"role": "assistant", "content": "a cat"},
    ]
    cleaned = without_image_urls(stored)
    assert cdn not in json.dumps(cleaned)
    assert cleaned[0]["content"][1] == {"type": "text", "text": "[an image was attached here]"}
    assert cleaned[1]["content"][1]["type"] == "input_text"
    assert cleaned[2:] == stored[2:]


def test_an_inline_image_counts_as_an_image_not_as_its_base64() -> None:
    image = "data:image/png;base64," + "A" * 3_000_000
    items = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}]
    assert 1000 <= estimate_tokens(items) < 1100
