"""A bot with tight per-user limits, `scope: thread`, a short history and its own LLM__API_KEY."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall, UsageReport
from tests.fakes.mcp_server import stdio_params

PER_MINUTE = 3
DAILY_TOKENS = 5000
HISTORY = 4
API_KEY = "sk-from-llm-api-key"  # OPENAI_API_KEY is sk-test in every bot's environment


@dataclass
class Limited:
    discord: FakeDiscord
    llm: ScriptedLLM


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def limited(
    llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Limited]:
    # Chat backend only: limits, scope and LLM__API_KEY are the same code for both backends;
    # trimming the stored history is what the chat backend sends every turn.
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    workdir = tmp_path_factory.mktemp("limited")
    call_log = workdir / "calls.jsonl"
    auto = {**stdio_params(call_log, name="auto"), "require_approval": "never"}
    config = bot_config(llm, workdir, call_log, "chat", mcp={"servers": {"auto": auto}})
    config["llm"]["max_history_messages"] = HISTORY
    config["discord"]["scope"] = "thread"
    config["limits"] = {
        "user_concurrent_turns": 5,
        "user_turns_per_minute": PER_MINUTE,
        "user_daily_tokens": DAILY_TOKENS,
    }
    async with bot_running(discord, config, workdir, env={"LLM__API_KEY": API_KEY}):
        yield Limited(discord, llm)


async def ask(chat: Chat, text: str, user: int | None = None) -> str:
    asked = await chat.say(text, user=user)
    parts = await chat.answer(int(asked["id"]))
    return "\n".join(p["content"] for p in parts)


async def test_a_user_over_the_per_minute_limit_is_told_when_to_retry(limited: Limited) -> None:
    chat = Chat(limited.discord, "per-minute")
    key = "k-per-minute"
    limited.llm.script(key)
    limited.llm.script(f"{key}-over")
    for i in range(PER_MINUTE):
        assert "echo" in await ask(chat, f"{key} question {i}")
    refused = await ask(chat, f"{key}-over one more")
    assert refused.startswith("You're asking faster than I'm allowed to answer. Try again in ")
    assert len(limited.llm.requests_for(key)) == PER_MINUTE
    assert limited.llm.requests_for(f"{key}-over") == []
    # Someone else in the same channel is not slowed down.
    other = limited.discord.add_user("per-minute-other")
    assert "echo" in await ask(chat, f"{key}-over from someone else", user=other)


async def test_a_user_over_the_daily_tokens_gets_one_line_and_no_llm_call(
    limited: Limited,
) -> None:
    chat = Chat(limited.discord, "daily-tokens")
    key = "k-daily-tokens"
    limited.llm.report_usage(key, UsageReport(DAILY_TOKENS, 1))
    assert "echo" in await ask(chat, f"{key} spend it all")
    refused = await ask(chat, f"{key} and more")
    assert refused == "You've used your token allowance for today. Try again tomorrow."
    assert len(limited.llm.requests_for(key)) == 1
    other = limited.discord.add_user("daily-tokens-other")
    assert "echo" in await ask(chat, f"{key} someone else", user=other)
    assert len(limited.llm.requests_for(key)) == 2


async def test_scope_thread_is_one_conversation_per_user_outside_threads(
    limited: Limited,
) -> None:
    chat = Chat(limited.discord, "per-user")
    other = limited.discord.add_user("per-user-other")
    key = "k-per-user"
    limited.llm.script(key)
    await ask(chat, f"{key} my word is marigold-per-user")
    await ask(chat, f"{key} and what is yours?", user=other)
    await ask(chat, f"{key} what was my word?")
    first, theirs, again = (r.body for r in limited.llm.requests_for(key))
    assert "marigold-per-user" not in str(theirs["messages"])
    assert "marigold-per-user" in str(again["messages"])
    assert "what is yours" not in str(again["messages"])


async def test_history_is_cut_at_a_user_message_never_between_a_call_and_its_result(
    limited: Limited,
) -> None:
    """Three turns: one with a tool call (question, call, result, answer), then two plain ones.
    The third may carry only HISTORY stored messages; the newest four would start at the tool
    result, whose call was cut away (the scripted LLM refuses that, as OpenAI does)."""
    chat = Chat(limited.discord, "history")
    key = "k-history-cut"
    limited.llm.script(
        key,
        [ToolCall("auto__echo", {"text": "tool-said-hi"})],
        Text("first answer"),
        Text("second answer"),
        Text("third answer"),
    )
    assert "first answer" in await ask(chat, f"{key} one-with-a-tool")
    assert "second answer" in await ask(chat, f"{key} two-plain")
    assert "third answer" in await ask(chat, f"{key} three-plain")
    last = limited.llm.requests_for(key)[-1].body["messages"]
    sent = [m for m in last if m["role"] != "system"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "two-plain" in sent[0]["content"] and "three-plain" in sent[-1]["content"]
    assert "one-with-a-tool" not in str(sent) and "tool-said-hi" not in str(sent)


async def test_llm_api_key_is_sent_instead_of_the_providers_variable(limited: Limited) -> None:
    chat = Chat(limited.discord, "api-key")
    key = "k-api-key"
    limited.llm.script(key)
    await ask(chat, f"{key} hello")
    (request,) = limited.llm.requests_for(key)
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
