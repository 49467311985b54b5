"""The chat backend in-process against the scripted server: state that later turns can use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.backends.chat import ChatBackend
from bot.config import LLMConfig
from bot.core.events import Notice, TextDelta, ToolCallFinished, TurnCompleted, TurnEvent
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from tests.fakes.llm import Finish, ScriptedLLM, Text, ToolCall
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)


@pytest.fixture
async def made(llm: ScriptedLLM) -> AsyncIterator[ChatBackend]:
    config = LLMConfig(model="openai/test-model", base_url=llm.base_url, api_key=SecretStr("test"))
    backend = ChatBackend(config, tools=None)
    yield backend
    await backend.aclose()  # its HTTP client's connections


async def turn(made: ChatBackend, text: str, state: ConversationState) -> list[TurnEvent]:
    request = TurnRequest(key=KEY, user_id=3, user_name="ann", text=text)
    return [e async for e in made.run_turn(state, request)]


async def test_a_tool_call_without_tools_is_answered_so_history_stays_valid(
    llm: ScriptedLLM, made: ChatBackend
) -> None:
    llm.script("notools", [ToolCall("lookup", {"q": "x"}, "call_x")], Text("no tool then"))
    first = await turn(made, "notools please", ConversationState(backend="chat"))
    finished = [e for e in first if isinstance(e, ToolCallFinished)]
    assert finished and finished[0].outcome == "failed"
    done = first[-1]
    assert isinstance(done, TurnCompleted)
    second = await turn(made, "notools again", done.state)
    assert isinstance(second[-1], TurnCompleted), second[-1]  # the fake refuses broken history
    assert "".join(e.text for e in second if isinstance(e, TextDelta)).startswith("echo")


async def test_a_filtered_answer_ends_with_a_notice_and_an_empty_one_is_not_stored(
    llm: ScriptedLLM, made: ChatBackend
) -> None:
    llm.script("filtered", [Finish("content_filter")], [Text("half"), Finish("length")])
    first = await turn(made, "filtered one", ConversationState(backend="chat"))
    assert [e.text for e in first if isinstance(e, Notice)] == [
        "The model service's content filter cut the answer short."
    ]
    done = first[-1]
    assert isinstance(done, TurnCompleted)
    assert [m["role"] for m in done.state.history] == ["user"]
    second = await turn(made, "filtered two", done.state)
    assert isinstance(second[-1], TurnCompleted)
    assert "length limit" in [e for e in second if isinstance(e, Notice)][0].text


async def test_old_tool_output_is_shortened_to_fit_the_budget_before_sending(
    llm: ScriptedLLM,
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}
    history = (
        {"role": "user", "content": "budget fetch the page"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "page text " * 2000},
        {"role": "assistant", "content": "It says a lot."},
    )
    config = LLMConfig(
        model="openai/test-model",
        base_url=llm.base_url,
        api_key=SecretStr("test"),
        max_context_tokens=2000,
    )
    made = ChatBackend(config, tools=None)
    llm.script("budget")  # echo replies, but requests are tagged
    try:
        events = await turn(
            made, "budget summarise it", ConversationState(backend="chat", history=history)
        )
    finally:
        await made.aclose()
    assert isinstance(events[-1], TurnCompleted)
    assert not [e for e in events if isinstance(e, Notice)]  # routine fitting is silent
    sent = llm.requests_for("budget")[-1].body["messages"]
    tool = next(m for m in sent if m["role"] == "tool")
    assert len(tool["content"]) < 1000 and "shortened" in tool["content"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
