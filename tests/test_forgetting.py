"""/forget's rules in the running bot: not while the user's own turn runs, once a minute, and an
operator's request waits for that turn instead; shared conversations are held still meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.config import LimitsConfig
from bot.core.conversations import Conversations
from bot.core.forgetting import OWN_TURN, Forgetting
from bot.core.limits import ERASING, UserLimits
from bot.core.state import ConversationKey

USER = 42
SHARED = ConversationKey(guild_id=1, channel_id=2)


class Store:
    """Records whom it erased; the user spoke in one shared conversation."""

    def __init__(self) -> None:
        self.erased: list[int] = []

    async def forget_user(self, user_id: int) -> Any:
        self.erased.append(user_id)
        return "erased"

    async def users_in_shared_conversations(self, user_id: int) -> list[ConversationKey]:
        return [SHARED]


def build(clock: list[float]) -> tuple[Forgetting, UserLimits, Store, Conversations]:
    limits = UserLimits(
        LimitsConfig(), tokens_since=lambda *_: asyncio.sleep(0, 0), clock=lambda: clock[0]
    )
    store = Store()
    conversations = Conversations(store, backend=None, make_record=dict)  # type: ignore[arg-type]
    forgetting = Forgetting(store, conversations, limits, clock=lambda: clock[0])
    return forgetting, limits, store, conversations


async def test_refused_while_their_own_turn_runs_and_then_once_a_minute() -> None:
    clock = [1000.0]
    forgetting, limits, store, _ = build(clock)
    reservation = limits.reserve(USER)
    assert not isinstance(reservation, str)
    assert await forgetting.forget(USER) == OWN_TURN
    reservation.release()

    assert await forgetting.forget(USER) == "erased"
    clock[0] += 30
    refused = await forgetting.forget(USER)
    assert refused.startswith("You asked me to forget you less than a minute ago")
    clock[0] += 31
    assert await forgetting.forget(USER) == "erased"
    assert store.erased == [USER, USER]


async def test_an_operators_request_waits_for_the_turn_and_keeps_new_ones_out() -> None:
    forgetting, limits, store, conversations = build([0.0])
    reservation = limits.reserve(USER)
    assert not isinstance(reservation, str)
    erasing = asyncio.create_task(forgetting.forget_for_operator(USER))
    await asyncio.sleep(0.05)
    assert store.erased == []  # waiting for the running turn
    assert limits.reserve(USER) == ERASING  # and no new one starts meanwhile
    reservation.release()
    assert await erasing == "erased"
    assert not isinstance(limits.reserve(USER), str)


async def test_a_shared_conversations_running_turn_finishes_before_the_erasure() -> None:
    forgetting, _, store, conversations = build([0.0])
    turn_done = asyncio.Event()

    async def someone_elses_turn() -> str:
        await turn_done.wait()
        return "saved"

    running = asyncio.create_task(conversations.when_idle(SHARED, someone_elses_turn))
    await asyncio.sleep(0)
    erasing = asyncio.create_task(forgetting.forget(USER))
    await asyncio.sleep(0.05)
    assert store.erased == []
    turn_done.set()
    assert await running == "saved"
    assert await erasing == "erased"
