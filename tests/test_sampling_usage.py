"""Tokens the bot's model spent on an MCP server's sampling request count (and cost) with the turn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.conversations import Conversations
from bot.core.events import SamplingUsed, TextDelta, TurnCompleted, TurnEvent, Usage
from bot.core.state import ConversationKey, ConversationState, TurnRequest

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)


class Backend:
    name = "chat"

    async def run_turn(
        self, state: ConversationState, request: TurnRequest
    ) -> AsyncIterator[TurnEvent]:
        yield SamplingUsed(model="m", usage=Usage(input_tokens=7, output_tokens=3))
        yield TextDelta(text="ok")
        yield TurnCompleted(
            state=ConversationState(backend="chat"),
            usage=Usage(input_tokens=100, output_tokens=20),
            model="m",
        )

    async def aclose(self) -> None:
        return None


class Store:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def load_conversation(self, key: ConversationKey) -> ConversationState | None:
        return None

    async def save_turn(self, key: ConversationKey, state: ConversationState, turn: Any) -> None:
        self.records.append(turn)


async def test_sampling_tokens_are_recorded_with_the_turn() -> None:
    store = Store()
    conversations = Conversations(store, Backend(), make_record=lambda **kw: kw)  # type: ignore[arg-type]
    request = TurnRequest(key=KEY, user_id=3, user_name="u", text="hi")
    events = [e async for e in conversations.run_turn(request)]
    assert isinstance(events[-1], TurnCompleted)
    (record,) = store.records
    assert record["usage"] == Usage(input_tokens=107, output_tokens=23)


async def test_sampling_is_priced_by_the_model_that_answered_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prices = {"m": 0.01, "sampler": 0.001}  # USD per token, input and output alike

    def cost_of(model: str, usage: Usage) -> float | None:
        rate = prices.get(model)
        return None if rate is None else rate * (usage.input_tokens + usage.output_tokens)

    class SamplingElsewhere(Backend):
        async def run_turn(
            self, state: ConversationState, request: TurnRequest
        ) -> AsyncIterator[TurnEvent]:
            yield SamplingUsed(model="sampler", usage=Usage(input_tokens=7, output_tokens=3))
            yield SamplingUsed(model="unpriced", usage=Usage(input_tokens=5, output_tokens=5))
            yield TurnCompleted(
                state=ConversationState(backend="chat"),
                usage=Usage(input_tokens=100, output_tokens=20),
                model="m",
            )

    store = Store()
    conversations = Conversations(
        store,
        SamplingElsewhere(),  # type: ignore[arg-type]
        make_record=lambda **kw: kw,
        cost_of=cost_of,
    )
    request = TurnRequest(key=KEY, user_id=3, user_name="u", text="hi")
    with caplog.at_level(logging.INFO, logger="bot.turn"):
        [e async for e in conversations.run_turn(request)]
    (record,) = store.records
    assert record["cost_usd"] == pytest.approx(120 * 0.01 + 10 * 0.001)
    # The turn's log line says what was stored.
    (line,) = [r for r in caplog.records if r.name == "bot.turn"]
    fields = line.turn  # type: ignore[attr-defined]
    assert fields["input_tokens"] == 112 and fields["output_tokens"] == 28
    assert fields["cost_usd"] == pytest.approx(120 * 0.01 + 10 * 0.001)
