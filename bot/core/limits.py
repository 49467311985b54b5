"""Per-user limits: concurrent turns, turns per minute and tokens per day."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from bot.config import LimitsConfig


class UserLimits:
    def __init__(
        self,
        config: LimitsConfig,
        *,
        tokens_since: Callable[[int, datetime], Awaitable[int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._tokens_since = tokens_since
        self._clock = clock
        self._active: dict[int, int] = defaultdict(int)
        self._recent: dict[int, deque[float]] = defaultdict(deque)

    async def refusal(self, user_id: int) -> str | None:
        """Why this user may not start a turn now, in plain words; None if they may."""
        if self._active[user_id] >= self._config.user_concurrent_turns:
            return "I'm still working on your other questions. Wait for them to finish."
        now = self._clock()
        recent = self._recent[user_id]
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self._config.user_turns_per_minute:
            wait = int(60 - (now - recent[0])) + 1
            return f"You're asking faster than I'm allowed to answer. Try again in {wait} s."
        if self._config.user_daily_tokens is not None:
            since = datetime.now(UTC) - timedelta(days=1)
            if await self._tokens_since(user_id, since) >= self._config.user_daily_tokens:
                return "You've used your token allowance for today. Try again tomorrow."
        return None

    @contextmanager
    def turn(self, user_id: int) -> Iterator[None]:
        """Counts a turn against the user while it runs."""
        self._recent[user_id].append(self._clock())
        self._active[user_id] += 1
        try:
            yield
        finally:
            self._active[user_id] -= 1
            if not self._active[user_id]:
                del self._active[user_id]
