"""The scripted LLM refuses histories that OpenAI refuses, in OpenAI's error format."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.llm import ScriptedLLM
from tests.fakes.llm.history import chat_problem, responses_problem

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_chat_histories() -> None:
    ok = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        {"role": "assistant", "content": "fine"},
    ]
    assert chat_problem({"messages": ok}) is None
    orphan = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "x", "content": ""},
    ]
    assert "preceding message with 'tool_calls'" in (chat_problem({"messages": orphan}) or "")
    unanswered = ok[:2] + [{"role": "user", "content": "again"}]
    assert "call_1" in (chat_problem({"messages": unanswered}) or "")
    assert "call_1" in (chat_problem({"messages": ok[:2]}) or "")
    null = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]
    assert "got null" in (chat_problem({"messages": null}) or "")


def test_responses_inputs() -> None:
    previous = [{"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}]
    answer = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    assert responses_problem({"input": [answer]}, previous) is None
    assert (
        responses_problem({"input": [{"role": "user", "content": "next"}]}, previous)
        == "No tool output found for function call call_9."
    )
    stray = {"type": "function_call_output", "call_id": "call_404", "output": "x"}
    assert "call_404" in (responses_problem({"input": [stray]}, []) or "")
    local = [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]
    assert responses_problem({"input": local}, []) == "No tool output found for function call c."
    assert responses_problem({"input": "plain text"}, []) is None


async def test_a_bad_history_is_a_400_the_sdk_raises(llm: ScriptedLLM) -> None:
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="got null"):
        await client.chat.completions.create(
            model="test-model",
            messages=[
                {"role": "user", "content": "k-history-null"},
                {"role": "assistant", "content": None},  # type: ignore[list-item]
            ],
        )
