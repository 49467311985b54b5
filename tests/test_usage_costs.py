"""Per-turn cost and channel in the usage table, the totals /status shows, the daily cost limit,
and /system prompts (with the thread rule), against a real SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.config import LimitsConfig, Settings
from bot.core.conversations import Conversations
from bot.core.events import TurnCompleted, Usage
from bot.core.limits import COST, UserLimits
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from bot.discord.channel_prompt import effective_prompt
from bot.logs import turn_cost
from bot.store.migrations import MIGRATIONS
from bot.store.records import TurnRecord, UsageTotals
from bot.store.sqlite import Store

ALICE, BOB = 100, 200
HERE = ConversationKey(guild_id=1, channel_id=10, user_id=ALICE)
THERE = ConversationKey(guild_id=1, channel_id=20, user_id=ALICE)
SHARED = ConversationKey(guild_id=1, channel_id=10, user_id=0)


def record(user_id: int, usage: Usage, cost: float | None, model: str = "m") -> TurnRecord:
    return TurnRecord(user_id=user_id, model=model, usage=usage, duration_s=0.1, cost_usd=cost)


async def test_old_usage_rows_get_their_channel_from_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    before = [m.name for m in MIGRATIONS].index("m007_usage_channel_and_cost")
    async with Store.open(path, migrations=MIGRATIONS[:before]):
        pass
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "INSERT INTO usage (conversation_key, user_id, model, input_tokens, output_tokens,"
            " duration_s, created_at) VALUES ('123:4567:89', 89, 'm', 3, 1, 0.1, '2026-01-01')"
        )
        db.commit()
    async with Store.open(path):
        pass
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT guild_id, channel_id, cost_usd FROM usage").fetchall()
    assert rows == [(123, 4567, None)]


async def test_totals_per_user_and_per_channel_with_cost_where_known(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "bot.db") as store:
        priced = Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=100)
        await store.save_turn(HERE, ConversationState(backend="chat"), record(ALICE, priced, 0.25))
        unpriced = Usage(input_tokens=10, output_tokens=5, reasoning_tokens=2)
        await store.save_usage(THERE, record(ALICE, unpriced, None))
        await store.save_usage(SHARED, record(BOB, Usage(input_tokens=7, output_tokens=3), 0.5))
        since = datetime.now(UTC) - timedelta(days=1)

        assert await store.user_usage_since(ALICE, since) == UsageTotals(
            turns=2,
            input_tokens=1010,
            cached_input_tokens=100,
            output_tokens=205,
            reasoning_tokens=2,
            cost_usd=0.25,
            unpriced_turns=1,
        )
        channel = await store.channel_usage_since(1, 10, since)
        assert (channel.turns, channel.input_tokens, channel.output_tokens) == (2, 1007, 203)
        assert channel.cost_usd == pytest.approx(0.75) and channel.unpriced_turns == 0
        assert await store.cost_used_since(ALICE, since) == pytest.approx(0.25)
        assert await store.cost_used_since(BOB, since) == pytest.approx(0.5)
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert await store.user_usage_since(ALICE, later) == UsageTotals()


class _Answers:
    """A backend that answers every turn with fixed usage on a model the price map knows."""

    name = "chat"

    def __init__(self, model: str, usage: Usage) -> None:
        self.model, self.usage = model, usage

    async def run_turn(self, state: ConversationState, request: TurnRequest):  # type: ignore[no-untyped-def]
        yield TurnCompleted(
            usage=self.usage, model=self.model, state=ConversationState(backend="chat")
        )

    async def aclose(self) -> None:
        pass


async def test_a_turn_is_stored_with_its_price_and_the_cost_limit_refuses_after_it(
    tmp_path: Path,
) -> None:
    usage = Usage(input_tokens=100_000, output_tokens=20_000)
    expected = turn_cost("openai/gpt-4o-mini", usage)
    assert expected is not None and expected > 0.01  # the map knows the model
    async with Store.open(tmp_path / "bot.db") as store:
        conversations = Conversations(
            store,
            _Answers("openai/gpt-4o-mini", usage),  # type: ignore[arg-type]
            make_record=TurnRecord,
            cost_of=turn_cost,
        )
        limits = UserLimits(
            LimitsConfig(user_daily_cost_usd=0.01),
            tokens_since=store.tokens_used_since,
            cost_since=store.cost_used_since,
        )
        assert await limits.daily_refusal(ALICE) is None
        request = TurnRequest(key=HERE, user_id=ALICE, user_name="alice", text="hi")
        events = [event async for event in conversations.run_turn(request)]
        assert isinstance(events[-1], TurnCompleted)
        since = datetime.now(UTC) - timedelta(days=1)
        assert await store.cost_used_since(ALICE, since) == pytest.approx(expected)
        assert await limits.daily_refusal(ALICE) == COST
        assert await limits.daily_refusal(BOB) is None
        # A model without a price stores NULL, not a made-up zero.
        unknown = Conversations(
            store,
            _Answers("no-such-model-xyz", usage),  # type: ignore[arg-type]
            make_record=TurnRecord,
            cost_of=turn_cost,
        )
        bob = TurnRequest(key=SHARED, user_id=BOB, user_name="bob", text="hi")
        [event async for event in unknown.run_turn(bob)]
        totals = await store.user_usage_since(BOB, since)
        assert (totals.turns, totals.unpriced_turns, totals.cost_usd) == (1, 1, 0.0)


async def test_channel_prompts_are_set_replaced_cleared_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with Store.open(path) as store:
        assert await store.channel_prompts([10, 11]) == {}
        await store.set_channel_prompt(1, 10, "first", ALICE)
        await store.set_channel_prompt(1, 10, "second", BOB)
        await store.set_channel_prompt(1, 11, "thread's own", ALICE)
        assert await store.channel_prompts([11, 10]) == {10: "second", 11: "thread's own"}
        assert await store.clear_channel_prompt(11) is True
        assert await store.clear_channel_prompt(11) is False
    async with Store.open(path) as reopened:
        assert await reopened.channel_prompts([10, 11]) == {10: "second"}


async def test_a_thread_follows_its_parents_prompt_unless_it_has_its_own(tmp_path: Path) -> None:
    settings = Settings(
        llm={"system_prompt": "default"},
        discord={"channels": {10: {"system_prompt": "configured"}, 12: {"model": "m"}}},
    )
    channel = SimpleNamespace(id=10)
    thread = SimpleNamespace(id=11, parent_id=10)
    listed_thread = SimpleNamespace(id=12, parent_id=10)  # listed: does not follow its parent
    async with Store.open(tmp_path / "bot.db") as store:

        async def texts() -> list[str]:
            found = [await effective_prompt(store, settings, c) for c in (channel, thread)]
            found.append(await effective_prompt(store, settings, listed_thread))
            return [p.text for p in found]

        assert await texts() == ["configured", "configured", "default"]
        await store.set_channel_prompt(1, 10, "set for the channel", ALICE)
        assert await texts() == ["set for the channel", "set for the channel", "default"]
        await store.set_channel_prompt(1, 11, "set for the thread", ALICE)
        assert await texts() == ["set for the channel", "set for the thread", "default"]
        here = await effective_prompt(store, settings, thread)
        assert here.set_here and here.source == "set with /system for this thread"
        await store.clear_channel_prompt(10)
        assert await texts() == ["configured", "set for the thread", "default"]
