"""absorb's fast path for the lean reader's text-only chunks folds exactly what the full path
(every field read by attribute, as for litellm's objects) folds, and leaves every other chunk
to the full path."""

from __future__ import annotations

from typing import Any

import pytest

from bot.backends.chat_round import ChatRound, absorb
from bot.backends.sse import Fields


class FullPath(Fields):
    """The same chunk, read by attribute, but not the lean reader's own type: the full path."""

    __slots__ = ()


def chunk(delta: dict[str, Any] | None, finish: str | None = None, **top: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [choice], **top}


STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": ", world"}),
    chunk({"content": None, "refusal": "no"}),
    chunk({"reasoning_content": "hmm", "content": "!"}),
    chunk(
        {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}),
    chunk({"content": " done"}, finish="stop"),
    chunk({}),
    {"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}},
    chunk({"content": "late"}, usage={"prompt_tokens": 9, "completion_tokens": 4}),
]


@pytest.mark.parametrize("n", range(len(STREAM)))
def test_each_chunk_folds_the_same_through_either_path(n: int) -> None:
    fast, full = ChatRound(), ChatRound()
    for raw in STREAM[: n + 1]:
        shown_fast = absorb(Fields(raw), fast)
        shown_full = absorb(FullPath(raw), full)
        assert shown_fast == shown_full
    assert fast == full
    assert fast.text == "Hello, worldno! donelate"[: len(fast.text)]
