"""History trimming: at most `limit` items, and never between a tool call and its results."""

from __future__ import annotations

from bot.backends.history import trim_history
from tests.fakes.llm.history import chat_problem


def turn(n: int, tools: int) -> list[dict]:
    calls = [
        {"id": f"c{n}-{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in range(tools)
    ]
    items: list[dict] = [{"role": "user", "content": f"question {n}"}]
    if tools:
        items.append({"role": "assistant", "content": None, "tool_calls": calls})
        items += [{"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls]
    items.append({"role": "assistant", "content": f"answer {n}"})
    return items


def test_trimming_keeps_whole_turns_within_the_limit() -> None:
    history = [item for n in range(6) for item in turn(n, tools=n % 3)]
    for limit in range(2, len(history) + 1):
        kept = trim_history(history, limit)
        assert kept == history[len(history) - len(kept) :]  # the newest items
        assert kept[0]["role"] == "user"
        # what OpenAI would say of it: no tool result without its call, no call unanswered
        assert chat_problem({"messages": kept}) is None, (limit, kept[:3])
        assert len(kept) <= limit or kept == turn(5, tools=2)


def test_a_turn_longer_than_the_limit_is_kept_whole() -> None:
    history = turn(0, tools=0) + turn(1, tools=4)
    assert trim_history(history, 3) == turn(1, tools=4)
