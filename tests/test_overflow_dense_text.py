"""The bot's token estimate against a real tokenizer (the scripted server's): a conversation in
dense script (Japanese) fits the estimate, overflows the provider, and the one repair must fit."""

from __future__ import annotations

from pydantic import SecretStr

from bot.backends.chat import ChatBackend
from bot.backends.context import estimate_tokens
from bot.config import LLMConfig
from bot.core.events import Notice, TurnCompleted, TurnEvent
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from tests.fakes.llm import ScriptedLLM, Text
from tests.fakes.llm import tokens as real_tokens
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)
WINDOW = 2000
JAPANESE = "鬱蒼とした森の奥に古い寺がある。"


def history() -> tuple[dict, ...]:
    turns: list[dict] = []
    for n in range(8):
        turns.append({"role": "user", "content": f"dense-{n} " + JAPANESE * 12})
        turns.append({"role": "assistant", "content": JAPANESE * 12})
    return tuple(turns)


async def test_a_dense_conversation_that_fits_the_estimate_is_repaired_in_one_retry(
    llm: ScriptedLLM,
) -> None:
    stored = history()
    # The premise: the estimate says it fits the budget, a real tokenizer says it does not.
    assert estimate_tokens(stored) < WINDOW * 3 // 4 < WINDOW < real_tokens.count(list(stored))
    config = LLMConfig(
        model="openai/test-model",
        base_url=llm.base_url,
        api_key=SecretStr("test"),
        max_context_tokens=WINDOW,
    )
    made = ChatBackend(config, tools=None)
    llm.context_window("k-dense", WINDOW)
    llm.script("k-dense", Text("short answer"))
    request = TurnRequest(key=KEY, user_id=3, user_name="ann", text="k-dense and now?")
    try:
        state = ConversationState(backend="chat", history=stored)
        events: list[TurnEvent] = [e async for e in made.run_turn(state, request)]
    finally:
        await made.aclose()
    assert isinstance(events[-1], TurnCompleted), events[-1]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "earlier messages" in notices[0]
    assert len(llm.requests_for("k-dense")) == 2  # the refused request and one retry
