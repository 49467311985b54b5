"""Erasing a user while the bot runs: none of their turns runs meanwhile, none saves their words back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bot.core.conversations import Conversations
from bot.core.limits import UserLimits
from bot.core.state import ConversationKey

ONCE_A_MINUTE = "You asked me to forget you less than a minute ago. Try again in {wait} s."
OWN_TURN = "I'm still answering you. Try /forget again when I'm done."
EVERY_S = 60.0


class ForgetStore(Protocol):
    async def forget_user(self, user_id: int) -> Any: ...
    async def users_in_shared_conversations(self, user_id: int) -> list[ConversationKey]: ...


class Forgetting:
    def __init__(
        self,
        store: ForgetStore,
        conversations: Conversations,
        limits: UserLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._limits = limits
        self._clock = clock
        # Only for the once-a-minute rule, in memory: nothing durable says who was erased.
        self._last: dict[int, float] = {}

    def refusal(self, user_id: int) -> str | None:
        """Why this user may not erase their data now, in plain words; None when they may."""
        now = self._clock()
        self._last = {u: t for u, t in self._last.items() if now - t < EVERY_S}
        if user_id in self._last:
            return ONCE_A_MINUTE.format(wait=int(EVERY_S - (now - self._last[user_id])) + 1)
        if self._limits.running(user_id):
            return OWN_TURN
        return None

    async def forget(self, user_id: int) -> Any:
        """A user's own request (/forget): refused (a str) while their turn runs or within a
        minute of the last one; otherwise what the store erased."""
        refused = self.refusal(user_id)
        if refused:
            return refused
        self._last[user_id] = self._clock()
        return await self._erase(user_id)

    async def forget_for_operator(self, user_id: int) -> Any:
        """`python -m bot forget-user`: waits for the user's running turns instead of refusing."""
        return await self._erase(user_id, wait=True)

    async def _erase(self, user_id: int, *, wait: bool = False) -> Any:
        with self._limits.paused(user_id):
            if wait:
                await self._limits.until_idle(user_id)
            elif self._limits.running(user_id):
                return OWN_TURN
            # Other people's turns in the shared conversations they spoke in finish first, and
            # the next ones load the history without their words.
            shared = await self._store.users_in_shared_conversations(user_id)
            async with self._conversations.holding(shared):
                return await self._store.forget_user(user_id)
