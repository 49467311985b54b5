"""Per-user limits: concurrent turns, turns per minute, tokens and dollars per day."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol

from bot.config import LimitsConfig

BUSY = "I'm still working on your other questions. Wait for them to finish."
TOKENS = "You've used your token allowance for today. Try again tomorrow."
COST = "You've used your spending allowance for today. Try again tomorrow."
ERASING = "I'm erasing what I stored about you. Ask again in a moment."


def too_fast(wait_s: int) -> str:
    return f"You're asking faster than I'm allowed to answer. Try again in {wait_s} s."


class SharedCounts(Protocol):
    """The same limits counted with every other process of the bot (coordination); each method
    returns None while the shared counts cannot be reached, and this process decides alone."""

    async def admit(
        self, user_id: int, *, concurrent: int, per_minute: int
    ) -> str | Callable[[], None] | None:
        """A refusal in plain words, or the release of the turn's lease (it expires by itself if
        this process dies)."""
        ...

    async def used_today(self, user_id: int) -> tuple[int, float] | None:
        """Tokens and USD the user spent in the last 24 hours, all processes together."""
        ...


class Reservation:
    """A turn counted against its user from the moment it was reserved until released.
    Use it as a context manager so every path releases it; releasing twice is harmless."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._also: list[Callable[[], None]] = []

    def also(self, release: Callable[[], None]) -> None:
        """Another count to give back with this one (the shared lease)."""
        self._also.append(release)

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None
            for release in self._also:
                release()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class UserLimits:
    def __init__(
        self,
        config: LimitsConfig,
        *,
        tokens_since: Callable[[int, datetime], Awaitable[int]],
        cost_since: Callable[[int, datetime], Awaitable[float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._tokens_since = tokens_since
        self._cost_since = cost_since
        self._clock = clock
        self._active: dict[int, int] = defaultdict(int)
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        self._paused: set[int] = set()
        self._idle: dict[int, asyncio.Event] = {}  # set when that user's last turn ends
        self._shared: SharedCounts | None = None

    def share(self, shared: SharedCounts) -> None:
        """Count with the other processes of the bot too (coordination.redis_url)."""
        self._shared = shared

    def reconfigure(self, config: LimitsConfig) -> None:
        """After a reload: new numbers, same counts of running and recent turns."""
        self._config = config

    def reserve(self, user_id: int) -> Reservation | str:
        """Checks the concurrent and per-minute limits and counts the turn at once, with no await
        in between, so a burst of messages cannot all pass. Returns why not, in plain words."""
        if user_id in self._paused:
            return ERASING
        if self._active[user_id] >= self._config.user_concurrent_turns:
            return BUSY
        now = self._clock()
        recent = self._recent[user_id]
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self._config.user_turns_per_minute:
            return too_fast(int(60 - (now - recent[0])) + 1)
        recent.append(now)
        self._active[user_id] += 1
        return Reservation(lambda: self._finish(user_id))

    def running(self, user_id: int) -> bool:
        """Whether a turn of this user is reserved (waiting or running)."""
        return self._active.get(user_id, 0) > 0

    async def until_idle(self, user_id: int) -> None:
        """Return once no turn of this user is reserved."""
        while self.running(user_id):
            await self._idle.setdefault(user_id, asyncio.Event()).wait()

    @contextmanager
    def paused(self, user_id: int) -> Iterator[None]:
        """No new turn of this user starts inside the block (their data is being erased)."""
        self._paused.add(user_id)
        try:
            yield
        finally:
            self._paused.discard(user_id)

    async def admit(self, user_id: int, reservation: Reservation) -> str | None:
        """After `reserve`: the counts shared with other processes, then the daily allowances.
        A refusal in plain words, or None to go on (the reservation then holds the lease)."""
        if self._shared is not None:
            config = self._config
            shared = await self._shared.admit(
                user_id,
                concurrent=config.user_concurrent_turns,
                per_minute=config.user_turns_per_minute,
            )
            if isinstance(shared, str):
                return shared
            if shared is not None:
                reservation.also(shared)
        return await self.daily_refusal(user_id)

    async def daily_refusal(self, user_id: int, unstored_tokens: int = 0) -> str | None:
        """The daily token and cost allowances (store queries), checked once a turn is reserved
        and before each sampling request; `unstored_tokens`: spent by the running turn so far."""
        config = self._config
        since = datetime.now(UTC) - timedelta(days=1)
        tokens, dollars = config.user_daily_tokens, config.user_daily_cost_usd
        if tokens is None and dollars is None:
            return None
        # Other processes' turns are in their own databases: the shared sums hold them too.
        shared = await self._shared.used_today(user_id) if self._shared is not None else None
        shared_tokens, shared_cost = shared or (0, 0.0)
        used = await self._tokens_since(user_id, since) if tokens is not None else 0
        if tokens is not None and max(used, shared_tokens) + unstored_tokens >= tokens:
            return TOKENS
        spent = self._cost_since
        if (
            dollars is not None
            and spent is not None
            and max(await spent(user_id, since), shared_cost) >= dollars
        ):
            return COST
        return None

    def _finish(self, user_id: int) -> None:
        self._active[user_id] -= 1
        if not self._active[user_id]:
            del self._active[user_id]
            idle = self._idle.pop(user_id, None)
            if idle is not None:
                idle.set()
